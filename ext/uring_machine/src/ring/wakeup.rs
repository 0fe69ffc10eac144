//! Cross-thread wakeups: an eventfd whose multishot poll lives in the ring, and a queue of
//! fibers that other threads asked to resume. Everything here is safe to call off the GVL.
//! The eventfd is a private descriptor (private_fds.rs): closed by a forked child at once, and
//! by `close` when the machine's thread ends; after either, signals go nowhere.
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

use rb_sys::VALUE;

use crate::ruby::value::mark;

/// What a wake-up does to its fiber (see machine/waits.rs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// `Machine#schedule(fiber, value)`: `Resume`, and a fiber in no wait (a new one) is
    /// started with the value.
    Schedule,
    /// `unblock`, a mailbox, a join: resumes the fiber's suspension, the one it is in or, when
    /// it is not suspended, its next one.
    Resume,
    /// An exception raised in the fiber, interrupting whatever it waits on.
    Raise,
}

/// A wake-up for `fiber`, from another thread or from the machine's own. Its `wake` is decided
/// by the sender, so that handling it later needs no Ruby call; `stamp` is the machine's clock
/// when it was sent (see `Wakeup::tick`): a wake-up sent before the fiber's last suspension
/// ended was meant for that one, or an earlier one.
#[derive(Clone, Copy)]
pub struct Remote {
    pub fiber: VALUE,
    pub value: VALUE,
    pub wake: Wake,
    pub stamp: u64,
}

impl Remote {
    /// A wake-up sent now, on the machine's own thread.
    pub fn new(fiber: VALUE, value: VALUE, wake: Wake) -> Remote {
        Remote {
            fiber,
            value,
            wake,
            stamp: u64::MAX,
        }
    }

    /// `Machine#schedule` semantics: an Exception is raised, any other value resumes.
    pub fn schedule(fiber: VALUE, value: VALUE, is_exception: bool) -> Remote {
        Remote::new(fiber, value, if is_exception { Wake::Raise } else { Wake::Schedule })
    }
}

pub struct Wakeup {
    /// -1 once closed.
    fd: AtomicI32,
    /// The fork generation it was made in.
    generation: u64,
    queue: Mutex<Vec<Remote>>,
    /// Set by `push`, cleared by `take`: lets a machine that never waits (its fibers keep
    /// snoozing) see that another thread wants a fiber resumed.
    pending: AtomicBool,
    /// The machine's clock: it ticks as each wait begins and each suspension ends. Only the
    /// machine's thread advances it; other threads read it, under the GVL, to stamp their
    /// wake-ups.
    clock: AtomicU64,
}

impl Wakeup {
    pub fn new() -> std::io::Result<Wakeup> {
        // SAFETY: eventfd takes two integers and returns a new descriptor (or -1).
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        crate::ring::private_fds::track(fd);
        Ok(Wakeup {
            fd: AtomicI32::new(fd),
            generation: crate::ring::private_fds::generation(),
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            clock: AtomicU64::new(1),
        })
    }

    /// The eventfd, unless it was closed (here, or by a fork: the number may be another file's).
    pub fn fd(&self) -> Option<i32> {
        let fd = self.fd.load(Ordering::Acquire);
        (fd >= 0 && self.generation == crate::ring::private_fds::generation()).then_some(fd)
    }

    /// Makes the ring's wait return; callable from any thread, and from an unblocking function.
    pub fn signal(&self) {
        let Some(fd) = self.fd() else {
            return;
        };
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of a local u64 to our own eventfd (fd() answers only while
        // it is open and of this process); async-signal-safe, as an unblocking function needs.
        // A full counter (EAGAIN) still leaves the fd readable: the wake-up is not lost.
        unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
    }

    pub fn drain_signal(&self) {
        let Some(fd) = self.fd() else {
            return;
        };
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own eventfd.
        unsafe { libc::read(fd, &mut count as *mut u64 as *mut libc::c_void, 8) };
    }

    /// Closes the eventfd (its machine's thread is ending; in a forked child it is only
    /// forgotten). Signals from then on go nowhere. Idempotent. Called by the owner thread with
    /// the GVL, so no other thread signals meanwhile (they need the GVL, and the unblocking
    /// function runs only while the owner waits on the ring).
    pub fn close(&self) {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 && self.generation == crate::ring::private_fds::generation() {
            crate::ring::private_fds::untrack(fd);
            // SAFETY: our own eventfd, which nothing uses once `fd` reads -1.
            unsafe { libc::close(fd) };
        }
    }

    /// Advances the clock (machine's thread only): the time of an event, earlier than the
    /// stamp of every wake-up sent after it, and not earlier than any sent before.
    pub fn tick(&self) -> u64 {
        let now = self.clock.load(Ordering::Relaxed);
        self.clock.store(now + 1, Ordering::Release);
        now
    }

    /// Queues `remote` for the machine's thread, stamped with the clock.
    pub fn push(&self, mut remote: Remote) {
        remote.stamp = self.clock.load(Ordering::Acquire);
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
        self.close();
    }
}

/// The unblocking function Ruby calls (from another thread) to interrupt a ring wait.
///
/// # Safety
///
/// `data` must point at a live `Wakeup` for the whole call: the machine passes its own, which
/// outlives the GVL-released wait this function interrupts.
pub unsafe extern "C" fn unblock_ring_wait(data: *mut libc::c_void) {
    // SAFETY: the caller's contract: `data` is the machine's Arc'd Wakeup, alive while the
    // wait lasts; signal() only writes to its eventfd.
    let wakeup = unsafe { &*(data as *const Wakeup) };
    wakeup.signal();
}
