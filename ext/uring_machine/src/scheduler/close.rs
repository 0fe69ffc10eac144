//! UringMachine.wake_fd_waiters: what Ruby 3.1-3.4 lack for a close of a descriptor that fibers
//! wait on (Ruby 4.0 calls the fiber_interrupt hook instead). It finds this thread's machines,
//! the current scheduler's and UringMachine.machine, and has each interrupt its waiters on the
//! fd (Machine::interrupt_fd_waiters, ops/close.rs).
use std::sync::OnceLock;

use magnus::{prelude::*, rb_sys::protect, typed_data::Obj, Error, Value};
use rb_sys::{ID, VALUE};

use crate::machine::Machine;
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, NIL};
use crate::scheduler::Scheduler;

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
        // A scheduler no fiber has used yet has no machine, so nothing waits on it.
        let scheduler = Obj::<Scheduler>::try_convert(rb::value(scheduler)).ok();
        if let Some(scheduler) = scheduler.filter(|s| s.is_bound()) {
            scheduler_machine = rb::raw(scheduler.rb_machine()?);
            woken += scheduler.used_machine()?.interrupt_fd_waiters(fd)?;
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
