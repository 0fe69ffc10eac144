//! Closing a descriptor that fibers wait on. An op in the ring holds its own reference to the
//! file, so closing the fd does not end it: a fiber reading a pipe would wait forever. Ops that
//! wait on an fd are therefore tagged with it; a close finds their fibers, cancels the ops and
//! raises IOError in each fiber once its op has drained (as Ruby 4.0's `fiber_interrupt` does).
use std::sync::OnceLock;

use io_uring::{opcode, squeue, types};
use magnus::{prelude::*, rb_sys::protect, typed_data::Obj, Error, Value};
use rb_sys::{ID, VALUE};

use crate::machine::Machine;
use crate::ring::op::Slot;
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, int, NIL};
use crate::scheduler::Scheduler;

const STREAM_CLOSED: &str = "stream closed in another fiber";

impl Machine {
    /// `run_op` for an op whose fiber waits on `fd`: a close of `fd` interrupts it.
    pub fn run_fd_op(
        &self,
        fd: i32,
        build: impl FnOnce(&mut Slot) -> squeue::Entry,
        code: u8,
        pin: VALUE,
    ) -> Result<i32, Error> {
        self.run_tagged_op(Some(fd), build, code, pin)
    }

    /// Raises IOError in every fiber waiting on `fd` through this machine, after cancelling (and
    /// draining) what it waits on; returns how many. A machine a forked child inherited, or one
    /// of another thread, has nothing to wake here.
    pub fn interrupt_fd_waiters(&self, fd: i32) -> Result<usize, Error> {
        if self.is_inherited_by_fork() || !self.is_owner_thread() {
            return Ok(0);
        }
        let fibers = self.with(|s| s.ops.fibers_waiting_on(fd));
        for fiber in fibers.iter().copied() {
            let error = stream_closed_error()?;
            self.with(|s| s.interrupt(fiber, error));
        }
        Ok(fibers.len())
    }

    /// close(io): an Integer fd is closed through the ring, after the fibers waiting on it were
    /// interrupted; an IO through IO#close, so Ruby forgets the descriptor too.
    pub fn rb_close(&self, io: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let v = rb::raw(io);
        if !rb::is_fixnum(v) {
            fd_arg(v)?;
            return magnus::value::ReprValue::funcall::<_, _, Value>(io, "close", ());
        }
        let fd = fd_arg(v)?;
        self.interrupt_fd_waiters(fd)?;
        let res = self.run_op(|_| opcode::Close::new(types::Fd(fd)).build(), opcode::Close::CODE, NIL)?;
        rb::check(res as i64, "close").map(|_| rb::value(int(fd as i64)))
    }
}

/// UringMachine.wake_fd_waiters(fd) → Integer: after `fd` was closed outside the ring (IO#close
/// on Ruby 3.1-3.4, see io_close.rb), interrupts the fibers of this thread's machines (the
/// current scheduler's and UringMachine.machine) that waited on it; returns how many.
pub fn rb_wake_fd_waiters(fd: Value) -> Result<usize, Error> {
    if !crate::ring::op::any_fd_waits_in_process() {
        return Ok(0);
    }
    let fd = fd_arg(rb::raw(fd))?;
    let mut woken = 0;
    // Checked for nil first: a failed conversion builds an error message.
    let scheduler = unsafe { rb_sys::rb_fiber_scheduler_get() };
    let mut scheduler_machine = NIL;
    if scheduler != NIL {
        if let Ok(scheduler) = Obj::<Scheduler>::try_convert(rb::value(scheduler)) {
            scheduler_machine = rb::raw(scheduler.rb_machine());
            woken += scheduler.machine().interrupt_fd_waiters(fd)?;
        }
    }
    let own = thread_machine()?;
    if own != NIL && own != scheduler_machine {
        if let Ok(machine) = Obj::<Machine>::try_convert(rb::value(own)) {
            woken += machine.interrupt_fd_waiters(fd)?;
        }
    }
    Ok(woken)
}

/// Thread.current.thread_variable_get(:uring_machine), where UringMachine.machine keeps it.
fn thread_machine() -> Result<VALUE, Error> {
    static NAMES: OnceLock<(ID, VALUE)> = OnceLock::new();
    let (get, key) = *NAMES.get_or_init(|| {
        let key = unsafe { rb_sys::rb_id2sym(rb::intern("uring_machine")) }; // static: never moves
        (rb::intern("thread_variable_get"), key)
    });
    protect(|| unsafe { rb_sys::rb_funcall(rb_sys::rb_thread_current(), get, 1, key) })
}

fn stream_closed_error() -> Result<VALUE, Error> {
    protect(|| unsafe {
        let text = rb_sys::rb_str_new(STREAM_CLOSED.as_ptr() as *const _, STREAM_CLOSED.len() as _);
        rb_sys::rb_class_new_instance(1, &text, rb_sys::rb_eIOError)
    })
}
