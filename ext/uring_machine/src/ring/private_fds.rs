//! Descriptors the extension opens for its own use: each ring and its eventfd, the pidfd a
//! process wait holds, the pipes of a splice loop. A forked child closes all of them the moment
//! it starts (pthread_atfork): nothing of the parent's that uses them ever runs there, and a
//! child that never lets GC free the parent's machines (a fiber or a Thread object keeps them
//! reachable) would otherwise keep the parent's rings, eventfds and children's pidfds open for
//! its whole life. Their owners leave them alone in the child: by then the numbers may belong
//! to new files.
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many forks separate this process from the one that loaded the extension: an object made
/// in another generation was inherited from an ancestor.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The private descriptors open in this process.
static OPEN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Records `fd` as one a forked child must close.
pub fn track(fd: i32) {
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).insert(fd);
}

/// Forgets `fd`: its owner closes it now, or hands it over to something that outlives a fork.
pub fn untrack(fd: i32) {
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).remove(&fd);
}

/// In the child, before fork returns: every private descriptor is the parent's.
extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    // Changes happen with the GVL held, and so does fork: the lock is free. Should it not be,
    // the descriptors stay open rather than the child deadlocking.
    let mut open = match OPEN.try_lock() {
        Ok(open) => open,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for fd in open.iter() {
        // SAFETY: closing a descriptor number touches no memory; the owners of these numbers
        // never use or close them in this process (they see another generation).
        unsafe { libc::close(*fd) };
    }
    open.clear();
}

/// Called once at load.
pub fn init() {
    // SAFETY: registers a plain extern "C" function that lives as long as the process.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
}

/// A private descriptor, closed when dropped, unless a fork made it the parent's (then the
/// child closed it when it started).
pub struct PrivateFd {
    fd: i32,
    generation: u64,
}

impl PrivateFd {
    /// Takes ownership of the open descriptor `fd`.
    pub fn new(fd: i32) -> PrivateFd {
        track(fd);
        PrivateFd {
            fd,
            generation: generation(),
        }
    }

    pub fn raw(&self) -> i32 {
        self.fd
    }

    /// True in a forked child: the descriptor was the parent's, and is closed here.
    pub fn is_inherited(&self) -> bool {
        self.generation != generation()
    }

    /// Hands the descriptor over to the caller, who closes it (and whose children keep it).
    pub fn into_raw(self) -> i32 {
        let fd = self.fd;
        if !self.is_inherited() {
            untrack(fd);
        }
        std::mem::forget(self);
        fd
    }
}

impl Drop for PrivateFd {
    fn drop(&mut self) {
        if !self.is_inherited() {
            untrack(self.fd);
            // SAFETY: we own this open descriptor and nothing uses it after the drop.
            unsafe { libc::close(self.fd) };
        }
    }
}
