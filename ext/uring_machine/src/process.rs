//! Child processes: waitid through the ring (WAITID, 6.7+), or where the kernel lacks it, a
//! poll on a pidfd followed by a non-blocking waitid.
use io_uring::{opcode, types};
use magnus::{Error, Value};
use rb_sys::VALUE;

use crate::machine::Machine;
use crate::rb::{self, last_errno, raw, NIL};

/// The wait(2)-style status word CRuby's Process::Status expects.
fn wait_status(info: &libc::siginfo_t) -> i32 {
    let status = unsafe { info.si_status() };
    match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => status,
    }
}

fn process_status(pid: i32, info: &libc::siginfo_t) -> VALUE {
    unsafe {
        rb_sys::rb_last_status_set(wait_status(info), pid);
        rb_sys::rb_last_status_get()
    }
}

impl Machine {
    /// waitid(pid) → Process::Status of the reaped child (also sets $?).
    pub fn rb_waitid(&self, pid: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let pid = rb::int_arg(raw(pid), "pid", 1, i32::MAX as i64)? as i32;
        let mut info: Box<libc::siginfo_t> = Box::new(unsafe { std::mem::zeroed() });
        if self.with(|s| s.ring.supports(opcode::WaitId::CODE)) {
            let info_ptr = &mut *info as *mut libc::siginfo_t as *mut _;
            let res = self.run_op(
                |_| {
                    opcode::WaitId::new(libc::P_PID, pid as u32, libc::WEXITED)
                        .infop(info_ptr)
                        .build()
                },
                opcode::WaitId::CODE,
                NIL,
            )?;
            rb::check(res as i64, "waitid")?;
        } else {
            self.waitid_by_pidfd(pid, &mut info)?;
        }
        Ok(rb::value(process_status(pid, &info)))
    }

    fn waitid_by_pidfd(&self, pid: i32, info: &mut libc::siginfo_t) -> Result<(), Error> {
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if pidfd < 0 {
            return Err(rb::errno_error(-last_errno() as i32, "pidfd_open"));
        }
        let polled = self.run_op(
            |_| opcode::PollAdd::new(types::Fd(pidfd), libc::POLLIN as u32).build(),
            opcode::PollAdd::CODE,
            NIL,
        );
        let res = polled.and_then(|r| rb::check(r as i64, "poll pidfd")).and_then(|_| {
            let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, info, libc::WEXITED | libc::WNOHANG) };
            if r < 0 {
                Err(rb::errno_error(-last_errno() as i32, "waitid"))
            } else {
                Ok(())
            }
        });
        unsafe { libc::close(pidfd) };
        res
    }
}
