//! Cross-thread wakeups: an eventfd whose multishot poll lives in the ring, and a queue of
//! fibers that other threads asked to resume. Everything here is safe to call off the GVL.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rb_sys::VALUE;

use crate::ruby::value::mark;

/// A fiber another thread wants resumed with `value`; `is_exception` is decided by the sender
/// so that handling it later needs no Ruby call.
#[derive(Clone, Copy)]
pub struct Remote {
    pub fiber: VALUE,
    pub value: VALUE,
    pub is_exception: bool,
}

pub struct Wakeup {
    pub fd: i32,
    queue: Mutex<Vec<Remote>>,
    /// Set by `push`, cleared by `take`: lets a machine that never waits (its fibers keep
    /// snoozing) see that another thread wants a fiber resumed.
    pending: AtomicBool,
}

impl Wakeup {
    pub fn new() -> std::io::Result<Wakeup> {
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Wakeup {
            fd,
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
        })
    }

    /// Makes the ring's wait return; callable from any thread, and from an unblocking function.
    pub fn signal(&self) {
        let one: u64 = 1;
        unsafe { libc::write(self.fd, &one as *const u64 as *const libc::c_void, 8) };
    }

    pub fn drain_signal(&self) {
        let mut count: u64 = 0;
        unsafe { libc::read(self.fd, &mut count as *mut u64 as *mut libc::c_void, 8) };
    }

    pub fn push(&self, remote: Remote) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(remote);
        self.pending.store(true, Ordering::Release);
        self.signal();
    }

    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    pub fn take(&self) -> Vec<Remote> {
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn mark(&self) {
        for r in self.queue.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            mark(r.fiber);
            mark(r.value);
        }
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// The unblocking function Ruby calls (from another thread) to interrupt a ring wait.
pub unsafe extern "C" fn unblock_ring_wait(data: *mut libc::c_void) {
    let wakeup = &*(data as *const Wakeup);
    wakeup.signal();
}
