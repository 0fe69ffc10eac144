//! UringMachine.wake_fd_waiters and release_fd_waiters: what Ruby's IO#close lacks for a
//! descriptor that fibers wait on (3.1-3.4 do not wake them; 4.0 does through fiber_interrupt,
//! but not from a blocking fiber, see core_ext/io.rb). It finds this thread's machines,
//! the current scheduler's and UringMachine.machine, and has each interrupt its waiters on the
//! fd (Machine::interrupt_fd_waiters, ops/close.rs).
use magnus::{prelude::*, typed_data::Obj, Error, Value};

use crate::machine::Machine;
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, NIL};
use crate::scheduler::Scheduler;

/// UringMachine.wake_fd_waiters(fd, before = nil) → Integer: after `fd` was closed outside the
/// ring (IO#close on Ruby 3.1-3.4, see core_ext/io.rb), interrupts the fibers of this thread's
/// machines (the current scheduler's and UringMachine.machine) that waited on it; returns how
/// many. With `before` (UringMachine.__op_serial__ taken before the close), only ops started
/// before then: others may wait on a new file that reused the number during the close.
pub fn rb_wake_fd_waiters(args: &[Value]) -> Result<usize, Error> {
    crate::ruby::args::arity(args, 1, 2)?;
    let before = match crate::ruby::args::arg(args, 1) {
        NIL => u64::MAX,
        v => rb::int_arg(v, "before", 0, i64::MAX)? as u64,
    };
    on_thread_machines(args[0], |m, fd| m.interrupt_fd_waiters_before(fd, before))
}

/// UringMachine.__op_serial__ → the serial number the next op of the process gets.
pub fn rb_op_serial() -> u64 {
    crate::ring::op::next_op_serial()
}

/// UringMachine.release_fd_waiters(fd) → Integer: before Ruby 4.0 closes `fd` (see core_ext/io.rb),
/// interrupts the fibers of this thread's machines that wait on it and lets them run until each
/// has left what it waited on; returns how many.
pub fn rb_release_fd_waiters(fd: Value) -> Result<usize, Error> {
    on_thread_machines(fd, Machine::release_fd_waiters)
}

/// Applies `act` to `fd` on each of this thread's machines, which forget what they learned
/// about the closed file; the sum of what `act` returns.
fn on_thread_machines(fd: Value, act: impl Fn(&Machine, i32) -> Result<usize, Error>) -> Result<usize, Error> {
    let fd = fd_arg(rb::raw(fd))?; // a bad argument raises even when nothing waits anywhere
    let machines = thread_machines()?;
    machines.iter().for_each(|m| m.forget_fd(fd));
    if !crate::ring::op::any_fd_waits_in_process() {
        return Ok(0);
    }
    let mut count = 0;
    for machine in machines {
        count += act(&machine, fd)?;
    }
    Ok(count)
}

/// This thread's machines that fibers can wait in, each once: the current scheduler's (unless
/// it has run no fiber yet) and UringMachine.machine (neither inherited nor closed).
fn thread_machines() -> Result<Vec<Obj<Machine>>, Error> {
    let mut machines: Vec<Obj<Machine>> = Vec::with_capacity(2);
    // Checked for nil first: a failed conversion builds an error message.
    // SAFETY: rb_fiber_scheduler_get reads the current thread's scheduler; no call, no
    // allocation.
    let scheduler = unsafe { rb_sys::rb_fiber_scheduler_get() };
    if scheduler != NIL {
        let scheduler = Obj::<Scheduler>::try_convert(rb::value(scheduler)).ok();
        if let Some(scheduler) = scheduler.filter(|s| s.is_bound()) {
            machines.push(Obj::<Machine>::try_convert(scheduler.rb_machine()?)?);
        }
    }
    let own = crate::machine::thread_end::thread_machine_value()?;
    if own != NIL && machines.first().is_none_or(|m| rb::raw(m.as_value()) != own) {
        if let Ok(machine) = Obj::<Machine>::try_convert(rb::value(own)) {
            machines.push(machine);
        }
    }
    // A machine inherited from the parent process, or closed with its thread, waits for nothing.
    machines.retain(|m| m.is_usable_here());
    Ok(machines)
}
