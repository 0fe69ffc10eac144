//! The rest of a file to file copy on a thread of its own. copy_file_range has no io_uring
//! opcode: run on the ring's thread, each piece holds every other fiber back while the kernel
//! copies it, and each fiber that runs between pieces costs the copy that time (a ticker fiber
//! waking every millisecond made a 256 MiB copy 3-5% slower than CRuby's). The thread touches
//! no Ruby object: it copies between duplicates of the two descriptors (sharing their file
//! positions, and never some other file's should the IOs be closed meanwhile) and signals an
//! eventfd the fiber waits on in the ring, so the other fibers run the whole time, on another
//! core. A wait ended by an exception stops the thread after its current piece.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use magnus::Error;

use super::copy_range::{copy_piece, PIECE};
use super::reserve::Reservation;
use super::Plan;
use crate::machine::Machine;
use crate::ring::private_fds::PrivateFd;
use crate::ruby::value as rb;

/// At most this many copying threads at once in the process; more copies go on in pieces on
/// their fibers' threads.
const THREADS: usize = 16;
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How the thread's copy ended: the bytes it copied, the pieces, and the last result (0: the
/// end of the copy or of the source; -errno: the error that stopped it).
#[derive(Clone, Copy, Default)]
pub(super) struct Copied {
    pub bytes: u64,
    pub pieces: u64,
    pub end: i64,
}

/// The copying thread; dropped, it is told to stop and waited for.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Copied>>,
}

impl Running {
    fn join(&mut self) -> Copied {
        let copied = self.thread.take().map(|t| t.join());
        // The thread's body cannot panic; were it to, the copy counts as failed with EIO.
        copied.map_or(Copied::default(), |r| {
            r.unwrap_or(Copied {
                end: -(libc::EIO as i64),
                ..Copied::default()
            })
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.join();
    }
}

/// A new descriptor for `fd`'s open file (close-on-exec, private: a forked child closes it).
fn duplicate(fd: i32) -> Option<PrivateFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int and returns a new descriptor or -1.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    (dup >= 0).then(|| PrivateFd::new(dup))
}

impl Machine {
    /// Copies the rest of `plan`, after `done` bytes, on a thread while the fiber waits in the
    /// ring; None when no thread could be had (too many descriptors or threads): the caller
    /// goes on on the ring's thread. Err: the exception that ended the wait (the thread
    /// stopped), and what the thread copied by then.
    pub(super) fn copy_off_loop(&self, plan: Plan, done: u64) -> Result<Option<Copied>, (Error, Copied)> {
        if RUNNING.fetch_add(1, Ordering::Relaxed) >= THREADS {
            RUNNING.fetch_sub(1, Ordering::Relaxed);
            return Ok(None);
        }
        let copied = self.copy_on_thread(plan, done);
        RUNNING.fetch_sub(1, Ordering::Relaxed);
        copied
    }

    fn copy_on_thread(&self, plan: Plan, done: u64) -> Result<Option<Copied>, (Error, Copied)> {
        let (Some(src), Some(dst)) = (duplicate(plan.src.fd), duplicate(plan.dst.fd)) else {
            return Ok(None);
        };
        // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Ok(None);
        }
        let efd = PrivateFd::new(efd);
        let mut ends = plan;
        ends.src.fd = src.raw();
        ends.dst.fd = dst.raw();
        let stop = Arc::new(AtomicBool::new(false));
        let (signal, stopped) = (efd.raw(), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name("um copy_stream".into())
            .spawn(move || copy_until_done(ends, done, &stopped, signal));
        let Ok(thread) = spawned else {
            return Ok(None);
        };
        let mut running = Running {
            stop,
            thread: Some(thread),
        };
        let waited = match self.poll_fd(efd.raw(), libc::POLLIN as u32) {
            Ok(ready) if ready >= 0 => return Ok(Some(running.join())),
            Ok(errno) => rb::errno_error(-errno, "poll (copy_stream's thread)"),
            Err(e) => e,
        };
        running.stop.store(true, Ordering::Relaxed);
        Err((waited, running.join()))
        // `src`, `dst` and `efd` close when this returns, after the thread ended.
    }
}

/// The thread's loop: pieces until the copy is done, an error, or `stop`; then the eventfd.
fn copy_until_done(plan: Plan, done: u64, stop: &AtomicBool, signal: i32) -> Copied {
    block_signals();
    let reservation = Reservation::make(plan, done);
    let mut copied = Copied::default();
    while !stop.load(Ordering::Relaxed) {
        let want = plan.want(done + copied.bytes, PIECE);
        if want == 0 {
            break;
        }
        match copy_piece(plan, done + copied.bytes, want) {
            n if n > 0 => {
                copied.bytes += n as u64;
                copied.pieces += 1;
            }
            e if e == -(libc::EINTR as i64) => {}
            end => {
                copied.end = end;
                break;
            }
        }
    }
    if let Some(reservation) = reservation {
        reservation.release_unused();
    }
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of a local into the eventfd, which the fiber keeps open until
    // this thread has ended. Adding 1 to a counter nobody reads cannot fail.
    unsafe { libc::write(signal, &one as *const u64 as *const libc::c_void, 8) };
    copied
}

/// Signals sent to the process go to Ruby's threads, never to this one.
fn block_signals() {
    // SAFETY: sigfillset fills a local set; pthread_sigmask changes this thread's mask only.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}
