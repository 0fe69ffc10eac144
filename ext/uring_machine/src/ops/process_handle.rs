//! UringMachine::Process: a process held through a pidfd. Signals go to that very process even
//! after its pid was reused, and waiting is a WAITID on the pidfd (no helper thread). The Ruby
//! half (spawn, signal names, the wait without a machine) is
//! lib/uring_machine/scheduler/process.rb.
use std::cell::Cell;

use magnus::{gc::Marker, typed_data::Obj, DataTypeFunctions, Error, TryConvert, TypedData, Value};
use rb_sys::VALUE;

use crate::machine::Machine;
use crate::ops::process::{process_status, Pidfd, WaitTarget};
use crate::ruby::value::{self as rb, last_errno, raw, NIL};

#[derive(TypedData)]
#[magnus(class = "UringMachine::Process", free_immediately, size, mark)]
pub struct ProcessHandle {
    pid: i32,
    /// -1 once closed.
    pidfd: Cell<i32>,
    /// The Process::Status once reaped through this handle, else nil.
    status: Cell<VALUE>,
}

impl DataTypeFunctions for ProcessHandle {
    fn mark(&self, _marker: &Marker) {
        rb::mark(self.status.get());
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        let fd = self.pidfd.get();
        if fd >= 0 {
            // SAFETY: the handle owns its pidfd (-1 once closed), closed once.
            unsafe { libc::close(fd) };
        }
    }
}

impl ProcessHandle {
    /// Process.open(pid): a handle on a running (or exited, not yet reaped) process.
    pub fn rb_open(pid: Value) -> Result<ProcessHandle, Error> {
        let pid = rb::int_arg(raw(pid), "pid", 1, i32::MAX as i64)? as i32;
        let pidfd = Pidfd::open(pid).map_err(|errno| rb::errno_error(errno, "pidfd_open"))?;
        Ok(ProcessHandle {
            pid,
            pidfd: Cell::new(pidfd.into_raw()),
            status: Cell::new(NIL),
        })
    }

    pub fn rb_pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd; IOError once closed.
    pub fn rb_fileno(&self) -> Result<i32, Error> {
        match self.pidfd.get() {
            fd if fd >= 0 => Ok(fd),
            _ => Err(rb::exception(rb::ruby().exception_io_error(), "closed process handle")),
        }
    }

    pub fn rb_is_closed(&self) -> bool {
        self.pidfd.get() < 0
    }

    /// The Process::Status once reaped through this handle, else nil.
    pub fn rb_status(&self) -> Value {
        rb::value(self.status.get())
    }

    /// Reaps the process through `machine`, parking only the calling fiber; a second wait
    /// returns the same status. Someone else having reaped it raises Errno::ECHILD.
    pub fn rb_wait_on(&self, machine: Value) -> Result<Value, Error> {
        if self.status.get() != NIL {
            return Ok(self.rb_status());
        }
        let machine = Obj::<Machine>::try_convert(machine)?;
        let waited = machine.wait_child(WaitTarget::Pidfd(self.rb_fileno()?), libc::WEXITED);
        // Without WNOHANG, waitid returns only once it reports a child.
        let reported = waited.and_then(|info| info.ok_or_else(|| rb::errno_error(libc::ECHILD, "waitid")));
        self.remember(reported)
    }

    /// The status if the process has exited (reaping it), nil while it runs.
    pub fn rb_reap_if_exited(&self) -> Result<Value, Error> {
        if self.status.get() != NIL {
            return Ok(self.rb_status());
        }
        // SAFETY: siginfo_t is plain old data: all zeroes (si_pid 0: nothing reported) is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let fd = self.rb_fileno()? as libc::id_t;
        // SAFETY: `info` is a local siginfo_t; WNOHANG: it never waits.
        if unsafe { libc::waitid(libc::P_PIDFD, fd, &mut info, libc::WEXITED | libc::WNOHANG) } < 0 {
            return self.remember(Err(rb::errno_error(-last_errno() as i32, "waitid")));
        }
        // SAFETY: si_pid is valid to read in the zeroed siginfo or one waitid filled.
        if unsafe { info.si_pid() } == 0 {
            return Ok(rb::value(NIL));
        }
        self.remember(Ok(info))
    }

    /// Keeps the status; when another fiber reaped the process meanwhile, its status stands.
    fn remember(&self, waited: Result<libc::siginfo_t, Error>) -> Result<Value, Error> {
        match waited {
            Ok(info) => {
                let status = process_status(&info)?;
                self.status.set(status);
                Ok(rb::value(status))
            }
            Err(_) if self.status.get() != NIL => Ok(self.rb_status()),
            Err(e) => Err(e),
        }
    }

    /// pidfd_send_signal(signal): Errno::ESRCH once the process was reaped.
    pub fn rb_send_signal(&self, signal: Value) -> Result<bool, Error> {
        let signal = rb::int_arg(raw(signal), "signal", 0, i32::MAX as i64)? as i32;
        let fd = self.rb_fileno()?;
        // SAFETY: pidfd_send_signal with a null siginfo (the kernel fills one) and flags 0.
        let res = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd, signal, std::ptr::null::<u8>(), 0) };
        if res < 0 {
            return Err(rb::errno_error(-last_errno() as i32, "pidfd_send_signal"));
        }
        Ok(true)
    }

    /// False once the process has exited, even before it is reaped.
    pub fn rb_is_alive(&self) -> Result<bool, Error> {
        if self.status.get() != NIL {
            return Ok(false);
        }
        let mut pfd = libc::pollfd {
            fd: self.rb_fileno()?,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, a local; timeout 0: it never waits.
        if unsafe { libc::poll(&mut pfd, 1, 0) } < 0 {
            return Err(rb::errno_error(-last_errno() as i32, "poll pidfd"));
        }
        Ok(pfd.revents & libc::POLLIN == 0)
    }

    /// Closes the pidfd (the process itself is not affected); returns the descriptor it had,
    /// or nil when already closed.
    pub fn rb_close_pidfd(&self) -> Value {
        let fd = self.pidfd.replace(-1);
        if fd < 0 {
            return rb::value(NIL);
        }
        // SAFETY: the handle's own pidfd, taken out of it above (so closed once).
        unsafe { libc::close(fd) };
        rb::value(rb::int(fd as i64))
    }
}
