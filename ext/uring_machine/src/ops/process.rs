//! Waiting for children: waitid through the ring (WAITID, 6.7+) on a pidfd, a pid, any child
//! or a process group. Where the kernel lacks WAITID, a pidfd is polled and then reaped with a
//! non-blocking waitid; other targets are left to the caller (a worker thread).
use io_uring::opcode;
use magnus::{rb_sys::protect, Error, Value};
use rb_sys::VALUE;

use crate::machine::Machine;
use crate::ring::private_fds::PrivateFd;
use crate::ruby::value::{self as rb, last_errno, raw, NIL};

/// Who a wait is for: waitid(2)'s idtype and id.
#[derive(Clone, Copy)]
pub enum WaitTarget {
    Pidfd(i32),
    Pid(i32),
    AnyChild,
    /// A process group; 0 is the caller's.
    Group(i32),
}

impl WaitTarget {
    fn idtype_and_id(self) -> (libc::idtype_t, libc::id_t) {
        match self {
            WaitTarget::Pidfd(fd) => (libc::P_PIDFD, fd as libc::id_t),
            WaitTarget::Pid(pid) => (libc::P_PID, pid as libc::id_t),
            WaitTarget::AnyChild => (libc::P_ALL, 0),
            WaitTarget::Group(pgid) => (libc::P_PGID, pgid as libc::id_t),
        }
    }
}

/// A pidfd (close-on-exec), closed when dropped; a private descriptor: a forked child closes
/// the ones the parent's waits hold (see ring/private_fds.rs).
pub struct Pidfd(PrivateFd);

impl Pidfd {
    /// pidfd_open(pid); Err carries the errno.
    pub fn open(pid: i32) -> Result<Pidfd, i32> {
        // SAFETY: pidfd_open takes a pid and flags 0; it returns a new fd (or -1).
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            Err(-last_errno() as i32)
        } else {
            Ok(Pidfd(PrivateFd::new(fd as i32)))
        }
    }

    pub fn fd(&self) -> i32 {
        self.0.raw()
    }

    /// Hands the descriptor over to the caller, who closes it (a forked child keeps it).
    pub fn into_raw(self) -> i32 {
        self.0.into_raw()
    }
}

/// waitpid(2) flags (WNOHANG, WUNTRACED, WCONTINUED) as waitid(2) options.
pub fn waitid_options(flags: i64) -> Result<i32, Error> {
    let known = (libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED) as i64;
    if flags & !known != 0 {
        return Err(rb::errno_error(libc::EINVAL, "waitpid flags"));
    }
    let flags = flags as i32;
    let mut options = libc::WEXITED | (flags & (libc::WNOHANG | libc::WCONTINUED));
    if flags & libc::WUNTRACED != 0 {
        options |= libc::WSTOPPED;
    }
    Ok(options)
}

/// The wait(2)-style status word CRuby's Process::Status expects.
fn wait_status(info: &libc::siginfo_t) -> i32 {
    // SAFETY: si_status is valid in a siginfo waitid filled for a child (SIGCHLD's member).
    let status = unsafe { info.si_status() };
    match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        libc::CLD_STOPPED | libc::CLD_TRAPPED => ((status & 0xff) << 8) | 0x7f,
        libc::CLD_CONTINUED => 0xffff,
        _ => status,
    }
}

/// A real Process::Status for what waitid reported (also sets $?, as Process.wait does).
pub fn process_status(info: &libc::siginfo_t) -> Result<VALUE, Error> {
    // SAFETY: si_pid is valid to read in a siginfo that waitid filled for a child (its union
    // member for SIGCHLD).
    let (status, pid) = (wait_status(info), unsafe { info.si_pid() });
    // SAFETY: rb_last_status_set allocates the Process::Status (NoMemoryError possible) for
    // the current thread, with the GVL held; protect catches the raise.
    protect(|| unsafe {
        rb_sys::rb_last_status_set(status, pid);
        rb_sys::rb_last_status_get()
    })
}

fn waitid_now(target: WaitTarget, options: i32, info: &mut libc::siginfo_t) -> Result<(), Error> {
    let (idtype, id) = target.idtype_and_id();
    // SAFETY: `info` is a valid siginfo_t the caller owns; WNOHANG: it never waits.
    if unsafe { libc::waitid(idtype, id, info, options | libc::WNOHANG) } < 0 {
        return Err(rb::errno_error(-last_errno() as i32, "waitid"));
    }
    Ok(())
}

impl Machine {
    /// Whether `wait_child` can wait for `target` here without a thread.
    pub fn can_wait_in_ring(&self, target: WaitTarget, options: i32) -> bool {
        options & libc::WNOHANG != 0
            || self.with(|s| s.ring.supports(opcode::WaitId::CODE))
            || matches!(target, WaitTarget::Pidfd(_)) && options == libc::WEXITED
    }

    /// waitid(target, options): what it reported, or None under WNOHANG while nothing changed.
    /// Parks only the calling fiber; a pidfd target is interrupted by closing the pidfd.
    pub fn wait_child(&self, target: WaitTarget, options: i32) -> Result<Option<libc::siginfo_t>, Error> {
        self.check_owner()?;
        // Boxed: the kernel writes it when the op completes, and await_op returns only then.
        // SAFETY: siginfo_t is plain old data: all zeroes (si_pid 0: nothing reported) is valid.
        let mut info: Box<libc::siginfo_t> = Box::new(unsafe { std::mem::zeroed() });
        if options & libc::WNOHANG != 0 {
            waitid_now(target, options, &mut info)?;
        } else if self.with(|s| s.ring.supports(opcode::WaitId::CODE)) {
            let (idtype, id) = target.idtype_and_id();
            let info_ptr = &mut *info as *mut libc::siginfo_t;
            let fd = match target {
                WaitTarget::Pidfd(fd) => fd,
                _ => -1,
            };
            let build =
                |_: &mut crate::ring::op::Slot| opcode::WaitId::new(idtype, id, options).infop(info_ptr).build();
            let res = self.run_fd_op(fd, build, opcode::WaitId::CODE, NIL)?;
            rb::check(res as i64, "waitid")?;
        } else {
            let WaitTarget::Pidfd(fd) = target else {
                return Err(rb::errno_error(
                    libc::ENOSYS,
                    "waitid needs IORING_OP_WAITID (Linux 6.7)",
                ));
            };
            self.poll_then_reap(fd, options, &mut info)?;
        }
        // SAFETY: si_pid is valid to read in the zeroed siginfo or one waitid filled.
        Ok((unsafe { info.si_pid() } != 0).then_some(*info))
    }

    /// Before 6.7: a pidfd turns readable when its process exits.
    fn poll_then_reap(&self, pidfd: i32, options: i32, info: &mut libc::siginfo_t) -> Result<(), Error> {
        loop {
            let polled = self.poll_fd(pidfd, libc::POLLIN as u32)?;
            rb::check(polled as i64, "poll pidfd")?;
            waitid_now(WaitTarget::Pidfd(pidfd), options, info)?;
            // SAFETY: as above: `info` was zeroed or filled by waitid.
            if unsafe { info.si_pid() } != 0 {
                return Ok(());
            }
        }
    }

    /// waitid(pid) → Process::Status of the reaped child (also sets $?).
    pub fn rb_waitid(&self, pid: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let pid = rb::int_arg(raw(pid), "pid", 1, i32::MAX as i64)? as i32;
        let info = self.wait_for_pid(pid, libc::WEXITED)?;
        match info {
            Some(info) => process_status(&info).map(rb::value),
            None => Ok(rb::value(NIL)),
        }
    }

    /// Waits for child `pid` through a pidfd, or by pid when no descriptor is left. A pid that
    /// is not (or no longer) a child raises Errno::ECHILD, as waitpid does.
    pub fn wait_for_pid(&self, pid: i32, options: i32) -> Result<Option<libc::siginfo_t>, Error> {
        match Pidfd::open(pid) {
            Ok(pidfd) => self.wait_child(WaitTarget::Pidfd(pidfd.fd()), options),
            Err(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => self.wait_child(WaitTarget::Pid(pid), options),
            Err(_) => Err(rb::errno_error(libc::ECHILD, "waitid")),
        }
    }
}
