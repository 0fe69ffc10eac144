//! File to file: copy_file_range(2), which copies inside the kernel (and shares the blocks
//! where the filesystem can reflink) with one syscall per piece instead of splice's two
//! through a pipe. It has no io_uring opcode: the first piece runs on the ring's thread (it
//! tells whether the kernel serves these ends), the rest on a thread of its own
//! (copy_thread.rs), or, when none can be had, here in pieces with the other fibers run
//! between them.
use magnus::Error;

use super::{moved, Plan};
use crate::machine::Machine;
use crate::ruby::value::{self as rb, last_errno};

/// At most this much per copy_file_range: one piece takes well under a millisecond from the
/// page cache, so a fiber waiting on a timer is late by that much at most; bigger pieces
/// measured no faster (benchmark/copy_stream.rb, "file -> file").
pub(super) const PIECE: usize = 1 << 20;

/// How a copy in the kernel ended.
pub(super) enum Ranged {
    /// All of it: the count.
    Copied(u64),
    /// copy_file_range cannot serve these ends, or found nothing to copy at the start (a /proc
    /// file's size says 0 however much it holds): nothing was copied; splice them instead.
    Refused,
}

impl Plan {
    /// Two regular files, the destination written at its position: what copy_file_range takes.
    pub(super) fn in_kernel(&self) -> bool {
        self.src.size.is_some() && self.dst.size.is_some() && !self.dst.append
    }
}

impl Machine {
    /// Copies `plan` with copy_file_range; Refused when the kernel or filesystem cannot (see
    /// `refusal`) before any byte moved.
    pub(super) fn copy_in_kernel(&self, plan: Plan) -> Result<Ranged, Error> {
        let mut total = 0u64;
        let mut off_loop = true;
        loop {
            let want = plan.want(total, PIECE);
            if want == 0 {
                return Ok(Ranged::Copied(total));
            }
            // Each piece on this thread lets the other fibers run after it, the first one too
            // (an interrupt queued meanwhile stops the copy here, whatever a thread would do).
            if total > 0 {
                self.share_time().map_err(|e| moved(e, total))?;
            }
            // The first piece showed copy_file_range serves these ends: more than one piece
            // left goes to a thread (copy_thread.rs), unless none can be had.
            if total > 0 && off_loop && plan.want(total, 2 * PIECE) > PIECE {
                off_loop = false;
                match self.copy_off_loop(plan, total) {
                    Ok(Some(copied)) => {
                        let total = self.count_off_loop(copied, total);
                        return match copied.end {
                            0 => Ok(Ranged::Copied(total)),
                            e => Err(moved(rb::errno_error(-e as i32, "copy_file_range"), total)),
                        };
                    }
                    Err((e, copied)) => return Err(moved(e, self.count_off_loop(copied, total))),
                    Ok(None) => {}
                }
            }
            let res = copy_piece(plan, total, want);
            match res {
                0 if total == 0 => return Ok(Ranged::Refused),
                0 => return Ok(Ranged::Copied(total)),
                n if n > 0 => {
                    self.with(|s| s.metrics.copy_file_range += 1);
                    total += n as u64;
                }
                e if e == -(libc::EINTR as i64) => {}
                e if total == 0 && refusal(-e as i32) => return Ok(Ranged::Refused),
                e => return Err(moved(rb::errno_error(-e as i32, "copy_file_range"), total)),
            }
        }
    }

    /// The copy's total once the thread copied `copied` after `done` (its pieces counted).
    fn count_off_loop(&self, copied: super::copy_thread::Copied, done: u64) -> u64 {
        self.with(|s| s.metrics.copy_file_range += copied.pieces);
        done + copied.bytes
    }
}

/// One copy_file_range of at most `len` bytes, after `total` moved: the count, or -errno.
pub(super) fn copy_piece(plan: Plan, total: u64, len: usize) -> i64 {
    let mut off = plan.offset(total);
    let off_ptr = if off < 0 {
        std::ptr::null_mut()
    } else {
        &mut off as *mut i64
    };
    // SAFETY: `off_ptr` is null (the file position) or points at the local `off`, which
    // outlives the call; the kernel copies between two fds and touches no other memory.
    let n = unsafe { libc::copy_file_range(plan.src.fd, off_ptr, plan.dst.fd, std::ptr::null_mut(), len, 0) };
    if n < 0 {
        last_errno()
    } else {
        n as i64
    }
}

/// The errors that say "not these ends" rather than "this copy failed": no such syscall
/// (ENOSYS, or EPERM from a seccomp filter), ends on different filesystems (EXDEV), a
/// filesystem without support (EOPNOTSUPP), overlapping ranges of one file (EINVAL).
fn refusal(errno: i32) -> bool {
    matches!(
        errno,
        libc::ENOSYS | libc::EPERM | libc::EXDEV | libc::EOPNOTSUPP | libc::EINVAL
    )
}
