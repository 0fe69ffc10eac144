//! UringMachine::Scheduler: the Fiber::Scheduler hooks on top of the thread's Machine. The
//! I/O hooks live in io.rs; Ruby glue (fiber creation, name resolution and
//! blocking-operation workers) in lib/uring_machine/scheduler.rb and scheduler/.
use std::cell::Cell;

use magnus::{gc::Marker, prelude::*, rb_sys::protect, typed_data::Obj, DataTypeFunctions, Error, TypedData, Value};
use rb_sys::VALUE;

use crate::machine::debug_record::Why;
use crate::machine::timers::TIMED_OUT;
use crate::machine::waits::{Resumes, Runnable};
use crate::machine::{exception_error, signals, terminated, throw_through, Machine};
use crate::ops::process::{process_status, waitid_options, WaitTarget};
use crate::ring::wakeup::{Remote, Wake};
use crate::ruby::args::{arg, arity};
use crate::ruby::duration;
use crate::ruby::fd::fd_arg;
use crate::ruby::names::names;
use crate::ruby::partial_write;
use crate::ruby::value::{self as rb, fiber_current, raw, FALSE, NIL, TRUE};

#[derive(TypedData)]
#[magnus(class = "UringMachine::Scheduler", free_immediately, size, mark)]
pub struct Scheduler {
    /// The machine of the thread that first used this scheduler (NIL until then): a scheduler
    /// may be created on one thread and installed on another.
    machine_value: Cell<VALUE>,
    machine: Cell<*const Machine>,
    /// Fibers started by the `fiber` hook that have not finished.
    live_fibers: Cell<usize>,
    /// Of those, the ones suspended by `transfer` (or Fiber.yield): only an explicit resume
    /// wakes them, so `run` and `close` do not wait for them.
    transferred_fibers: Cell<usize>,
    /// The fiber waiting in `close` for the last one.
    closer: Cell<VALUE>,
    /// Whether io_read and io_write are this class's own (not a subclass's): only then may the
    /// IO fast path (fast/io.rs) move bytes without calling them.
    own_io_hooks: bool,
}

// SAFETY: the Machine behind the raw pointer is kept alive (and unmoved: it is heap data) by
// the mark of machine_value, and the scheduler's hooks use it only on the machine's thread
// (check_owner); Send is needed only because magnus requires it of a wrapped type.
unsafe impl Send for Scheduler {}

impl DataTypeFunctions for Scheduler {
    fn mark(&self, _marker: &Marker) {
        rb::mark(self.machine_value.get());
        rb::mark(self.closer.get());
    }
}

impl Scheduler {
    /// Scheduler.new(machine = nil), of the receiving class (a subclass may override hooks such
    /// as process_fork). Without a machine, the scheduler takes UringMachine.machine of the
    /// thread that first uses it (the one that installs it with Fiber.set_scheduler).
    pub fn rb_new(class: magnus::RClass, args: &[Value]) -> Result<Obj<Scheduler>, Error> {
        arity(args, 0, 1)?;
        let scheduler = Scheduler {
            machine_value: Cell::new(NIL),
            machine: Cell::new(std::ptr::null()),
            live_fibers: Cell::new(0),
            transferred_fibers: Cell::new(0),
            closer: Cell::new(NIL),
            own_io_hooks: io_hooks_are_ours(class)?,
        };
        if let Some(machine) = args.first().filter(|v| raw(**v) != NIL) {
            scheduler.bind(*machine)?;
        }
        // The wrapper's allocation may raise (NoMemoryError): magnus's obj_wrap_as does not
        // catch it.
        let wrapped = protect(|| raw(rb::ruby().obj_wrap_as(scheduler, class).as_value()))?;
        Obj::<Scheduler>::try_convert(rb::value(wrapped))
    }

    pub fn has_own_io_hooks(&self) -> bool {
        self.own_io_hooks
    }

    fn bind(&self, machine_value: Value) -> Result<&Machine, Error> {
        let machine = Obj::<Machine>::try_convert(machine_value)
            .map_err(|_| rb::type_error("expected a UringMachine::Machine"))?;
        machine.check_owner()?;
        self.machine_value.set(raw(machine_value));
        self.machine.set(&*machine as *const Machine);
        Ok(self.machine())
    }

    /// The machine; only once bound (see bound_machine, used_machine).
    fn machine(&self) -> &Machine {
        // SAFETY: bound once, never unbound (callers check is_bound first): the Machine behind
        // the pointer is marked through machine_value and lives on the heap, so the pointer
        // stays valid as long as this scheduler.
        unsafe { &*self.machine.get() }
    }

    pub fn is_bound(&self) -> bool {
        !self.machine.get().is_null()
    }

    /// The machine, bound to the current thread's if this scheduler has none yet.
    pub fn bound_machine(&self) -> Result<&Machine, Error> {
        if self.is_bound() {
            return Ok(self.machine());
        }
        let module: magnus::RModule = rb::ruby().class_object().const_get("UringMachine")?;
        self.bind(module.funcall("machine", ())?)
    }

    /// The machine for hooks that other threads call (unblock, fiber_interrupt): binding here
    /// would bind to the caller's thread, and a scheduler that never ran has no fiber to wake.
    pub fn used_machine(&self) -> Result<&Machine, Error> {
        if self.is_bound() {
            Ok(self.machine())
        } else {
            Err(rb::arg_error(
                "this scheduler has run no fiber: the fiber is not waiting on it",
            ))
        }
    }

    pub fn rb_machine(&self) -> Result<Value, Error> {
        self.bound_machine()?;
        Ok(rb::value(self.machine_value.get()))
    }

    /// Starts `fiber`, a child of the current fiber, right away; the caller resumes when it
    /// first waits (or finishes). `structured`: stopped if its parent finishes first (spin),
    /// or left to run to its end (Fiber.schedule).
    pub fn rb_start_fiber(&self, fiber: Value, structured: bool) -> Result<Value, Error> {
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        crate::machine::fibers::home_creator(self.machine_value.get())?;
        crate::machine::fibers::adopt(raw(fiber), self.machine_value.get())?;
        crate::machine::tree::link(fiber_current(), raw(fiber), structured)?;
        self.live_fibers.set(self.live_fibers.get() + 1);
        let current = fiber_current();
        // The caller waits (for the new fiber's first wait) like any parked fiber.
        let serial = machine.with(|s| {
            let serial = s.begin_wait(current);
            // First in line: the new fiber's first switch comes back here.
            s.runqueue.push_front(Runnable {
                fiber: current,
                value: NIL,
                resumes: Resumes::Wait(serial),
            });
            s.metrics.switches += 1;
            s.running = raw(fiber);
            serial
        });
        // A fiber that finishes returns control to the root fiber; then our own run-queue
        // entry is still there, and the next switch takes it.
        machine.progress.switched_to(raw(fiber));
        let transferred = rb::transfer(raw(fiber), NIL);
        machine.with(|s| s.running = current);
        machine.progress.switched_to(current);
        let resumed = match transferred {
            Ok(v) if v == terminated() => machine.switch(),
            other => other,
        };
        machine.with(|s| s.end_wait(current, serial));
        resumed?;
        // A fiber that failed before it first waited raises its error here, in its parent.
        match machine.with(|s| s.take_pending(current)) {
            Some(exc) => Err(exception_error(exc)),
            None => Ok(fiber),
        }
    }

    /// Queues `fiber`, a child of the current fiber that `spin` made, to start at the next
    /// switch, and counts it among the fibers run and close wait for: how a fiber that another
    /// thread asked for starts (spin(on_thread:)), from inside the event loop, where no fiber
    /// may be transferred to.
    pub fn rb_queue_fiber(&self, fiber: Value) -> Result<Value, Error> {
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        crate::machine::fibers::home_creator(self.machine_value.get())?;
        crate::machine::fibers::adopt(raw(fiber), self.machine_value.get())?;
        crate::machine::tree::link(fiber_current(), raw(fiber), true)?;
        self.live_fibers.set(self.live_fibers.get() + 1);
        machine.with(|s| s.queue_start(raw(fiber)));
        Ok(fiber)
    }

    /// __fiber_begin__ → the block: Machine#__fiber_begin__ on this scheduler's machine, for
    /// every fiber the `fiber` hook creates.
    pub fn rb_fiber_begin(rb_self: Obj<Scheduler>) -> Result<Value, Error> {
        Machine::rb_fiber_begin(rb_self.fiber_machine()?)
    }

    /// __fiber_args__: Machine#__fiber_args__.
    pub fn rb_fiber_args(&self) -> Result<Value, Error> {
        Ok(self.fiber_machine()?.rb_fiber_args())
    }

    /// __fiber_end__(value, error): Machine#__fiber_end__, then the scheduler counts the
    /// fiber out (close waits for the count to reach zero).
    pub fn rb_fiber_end(rb_self: Obj<Scheduler>, value: Value, error: Value) -> Result<Value, Error> {
        let outcome = Machine::rb_fiber_end(rb_self.fiber_machine()?, value, error);
        rb_self.fiber_ended();
        outcome
    }

    /// __fiber_unwound__: Machine#__fiber_unwound__, then counts the fiber out.
    pub fn rb_fiber_unwound(rb_self: Obj<Scheduler>) -> Result<Value, Error> {
        let outcome = Machine::rb_fiber_unwound(rb_self.fiber_machine()?);
        rb_self.fiber_ended();
        outcome
    }

    fn fiber_machine(&self) -> Result<Obj<Machine>, Error> {
        self.bound_machine()?;
        Obj::<Machine>::try_convert(rb::value(self.machine_value.get()))
    }

    fn fiber_ended(&self) {
        self.live_fibers.set(self.live_fibers.get().saturating_sub(1));
        self.wake_closer_if_settled();
    }

    /// transfer: hands control back to the event loop, the current fiber suspended until
    /// something resumes it (unblock, Machine#schedule); returns the value it is resumed with.
    pub fn rb_transfer(&self) -> Result<Value, Error> {
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        // Only a scheduled fiber counts as parked this way; a root fiber just waits.
        let counted = crate::machine::fibers::is_spun(fiber_current()) as usize;
        self.transferred_fibers.set(self.transferred_fibers.get() + counted);
        self.wake_closer_if_settled();
        let resumed = machine.suspend_current();
        self.transferred_fibers.set(self.transferred_fibers.get() - counted);
        resumed.map(rb::value)
    }

    /// Every fiber has finished, or waits for nothing but an explicit resume.
    fn is_settled(&self) -> bool {
        self.live_fibers.get() <= self.transferred_fibers.get()
    }

    fn wake_closer_if_settled(&self) {
        if self.is_settled() {
            let closer = self.closer.replace(NIL);
            if closer != NIL {
                // Unless a failure raised in it already woke it.
                self.machine().with(|s| s.resume_suspended(closer, NIL));
            }
        }
    }

    /// The heart of run / close: runs until every scheduled fiber has finished, or waits for
    /// nothing but an explicit resume (see `transfer`). When the program is ending (`error`,
    /// the caller's `$!`, is a signal exception or SystemExit, or one arrives meanwhile), the
    /// fibers are stopped instead (UringMachine::Stop, their `ensure` blocks run) and waited
    /// for; an exception that arrived meanwhile is then raised. With `any_error` (close), any
    /// exception in `error` stops them: the main fiber is ending with it.
    pub fn rb_close(&self, error: Value, any_error: bool) -> Result<Value, Error> {
        let machine = self.bound_machine()?;
        // In a forked child the parent's fibers and ring are not ours to run.
        if machine.is_inherited_by_fork() {
            return Ok(rb::value(TRUE));
        }
        // A closed machine (its thread ended) has nothing left to run.
        if machine.is_owner_thread() && machine.is_closed() {
            return Ok(rb::value(TRUE));
        }
        machine.check_owner()?;
        let error = raw(error);
        let mut stopping = signals::ends_program(error) || (any_error && rb::is_exception(error));
        let mut arrived: Option<Error> = None;
        loop {
            if stopping {
                machine.stop_fibers()?;
            }
            if self.is_settled() {
                // Fibers resumed from a transfer are runnable, not yet running: let them run.
                let current = fiber_current();
                if !machine.with(|s| s.runqueue.iter().any(|r| r.fiber != current && s.is_live(r))) {
                    break;
                }
                machine.snooze()?;
                continue;
            }
            self.closer.set(fiber_current());
            let outer_loop = machine.with(|s| std::mem::replace(&mut s.loop_fiber, fiber_current()));
            let waited = machine.suspend(Why::Close, NIL, None);
            machine.with(|s| s.loop_fiber = outer_loop);
            self.closer.set(NIL);
            if let Err(e) = waited {
                // A second signal while fibers are being stopped does not wait for them.
                if stopping || !e.value().is_some_and(|v| signals::ends_program(raw(v))) {
                    return Err(e);
                }
                stopping = true;
                arrived = Some(e);
            }
        }
        match arrived {
            Some(e) => Err(e),
            None => Ok(rb::value(TRUE)),
        }
    }

    /// block(blocker, timeout = nil) → true when unblocked, false when the timeout passed.
    /// The timeout converts as Thread#join's and Queue#pop's (their callers): anything with
    /// to_f; negative has passed, NaN, Infinity and past the clock's range never pass.
    pub fn rb_block(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 1, 2)?;
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        let after = match arg(args, 1) {
            NIL => None,
            t => duration::float_seconds(t)?,
        };
        // What it waits for, for the debugger's list of fibers (slow path: it parks anyway).
        let current = crate::ruby::value::fiber_current();
        machine.with(|s| s.blocked_on.insert(current, raw(args[0])));
        let resumed = match after {
            None => machine.suspend(Why::Block, raw(args[0]), None).map(|_| TRUE),
            Some(d) => machine.suspend(Why::Block, raw(args[0]), Some(d)),
        };
        machine.with(|s| s.blocked_on.remove(&current));
        if resumed? != FALSE {
            return Ok(rb::value(TRUE));
        }
        // Ruby 3.1's Thread#join(limit) ignores the answer and blocks again, forever: there the
        // timeout is raised, for core_ext/thread.rb's ThreadJoinLimit to turn into join's nil.
        // SAFETY: rb_cThread is set at boot.
        if !cfg!(ruby_gte_3_2) && rb::is_kind_of(raw(args[0]), unsafe { rb_sys::rb_cThread }) {
            let module: magnus::RModule = rb::ruby().class_object().const_get("UringMachine")?;
            let class: magnus::ExceptionClass = module.const_get("JoinTimedOut")?;
            return Err(Error::new(class, "join timed out"));
        }
        Ok(rb::value(FALSE))
    }

    /// unblock(blocker, fiber): from any thread.
    pub fn rb_unblock(&self, _blocker: Value, fiber: Value) -> Result<Value, Error> {
        let machine = self.used_machine()?;
        let fiber = raw(fiber);
        crate::machine::fibers::check_fiber(fiber)?;
        machine.check_fiber_thread(fiber)?;
        machine.deliver_from_any_thread(Remote::new(fiber, TRUE, Wake::Resume));
        Ok(rb::value(TRUE))
    }

    /// kernel_sleep(duration = nil): without a duration, until something wakes the fiber. The
    /// duration converts as Kernel#sleep's (ruby/duration.rs): one past the clock's range
    /// sleeps until something wakes the fiber as well.
    pub fn rb_kernel_sleep(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 0, 1)?;
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        // A timed suspension, not a TIMEOUT op: `unblock` ends it early, as ConditionVariable
        // #wait(mutex, timeout) needs (CRuby's rb_mutex_sleep calls kernel_sleep, and signal
        // calls unblock for the waiting fiber).
        let after = match arg(args, 0) {
            NIL => None,
            seconds => duration::interval(seconds)?,
        };
        let current = fiber_current();
        machine.with(|s| {
            if s.timed_out_sleeper == current {
                s.timed_out_sleeper = NIL;
            }
        });
        let forever = after.is_none() as usize;
        machine.with(|s| s.sleeping_forever += forever);
        let slept = machine.suspend(Why::Sleep, NIL, after);
        machine.with(|s| s.sleeping_forever -= forever);
        if slept? == TIMED_OUT {
            machine.with(|s| s.timed_out_sleeper = current);
        }
        Ok(rb::value(NIL))
    }

    /// __sleep_timed_out__ → whether the current fiber's last kernel_sleep ran out of time
    /// (rather than being woken): for ConditionVariable#wait's answer (core_ext/thread.rb).
    pub fn rb_sleep_timed_out(&self) -> Result<bool, Error> {
        let machine = self.bound_machine()?;
        Ok(machine.with(|s| s.timed_out_sleeper == fiber_current()))
    }

    /// timeout_after(duration, exception_class, *arguments) { |duration| }: Timeout.timeout's
    /// hook. The op the block waits on is cancelled when time is up. The duration converts as
    /// Kernel#sleep's (what Timeout's own thread does with it on Ruby 3.1); nil or one past the
    /// clock's range never fires. Timeout::Error as a class is Timeout's default up to timeout
    /// 0.4.1 (Ruby 3.3), given as it would be raised outside the block; inside, as with plain
    /// Timeout, the block sees a Timeout::ExitException (0.4) or nothing a rescue catches
    /// (0.2, Ruby 3.1: throw_through.rs). From 0.4.3 on, Timeout hands an ExitException itself.
    pub fn rb_timeout_after(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 2, usize::MAX)?;
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        let seconds = arg(args, 0);
        let after = match seconds {
            NIL => None,
            seconds => duration::interval(seconds)?,
        };
        // An exception class (with its arguments), or, from the timeout gem 0.4 on, an instance.
        let given = arg(args, 1);
        let exception = if rb::is_exception(given) {
            given
        } else if rb::type_of(given) == rb_sys::ruby_value_type::RUBY_T_CLASS {
            let rest: Vec<VALUE> = args[2..].iter().map(|v| raw(*v)).collect();
            // SAFETY: `given` is a class (T_CLASS checked), `rest` the caller's arguments, alive
            // for the call; `new` runs Ruby code whose raise protect catches.
            protect(|| unsafe { rb_sys::rb_class_new_instance(rest.len() as _, rest.as_ptr(), given) })?
        } else {
            NIL
        };
        if !rb::is_exception(exception) {
            return Err(rb::type_error("timeout_after needs an exception class or instance"));
        }
        // Timeout's default: raised inside the block as Timeout::ExitException where the
        // timeout gem has it (0.4, Ruby 3.3), an Exception that `rescue => e` lets pass and
        // Timeout::Error outside, as plain Timeout does; thrown past every rescue before
        // (0.2, Ruby 3.1), as plain Timeout does too.
        let default = after.is_some() && is_timeout_error_class(given)?;
        let inside = if default {
            timeout_exit_exception(&args[2..])?
        } else {
            None
        };
        let throws = default && inside.is_none();
        if throws {
            throw_through::mark(exception);
        }
        let raised = inside.unwrap_or(exception);
        let result = machine.with_timeout(after, raised, || {
            if throws {
                return throw_through::catch_block(exception, seconds).map(rb::value);
            }
            // SAFETY: timeout_after is called with a block (Timeout.timeout's); what the block
            // raises, breaks or throws is caught by protect.
            protect(|| unsafe { rb_sys::rb_yield(seconds) }).map(rb::value)
        });
        match result {
            Err(e) if raised != exception && e.value().is_some_and(|v| raw(v) == raised) => {
                partial_write::carry(raised, exception);
                Err(exception_error(exception))
            }
            other => other,
        }
    }

    /// process_wait(pid, flags): waitid through the ring, parking only this fiber: a child by
    /// pidfd (pid > 0), any child (-1), the caller's process group (0) or another one (< -1).
    /// Where the kernel cannot (no WAITID before 6.7, except a child's exit through its pidfd),
    /// Process::Status.wait runs on a worker thread instead.
    pub fn rb_process_wait(rb_self: Obj<Scheduler>, pid: Value, flags: Value) -> Result<Value, Error> {
        let machine = rb_self.bound_machine()?;
        machine.check_owner()?;
        let pid_n = rb::int_arg(raw(pid), "pid", i32::MIN as i64 + 1, i32::MAX as i64)? as i32;
        let options = waitid_options(rb::int_arg(raw(flags), "flags", 0, i32::MAX as i64)?)?;
        let target = match pid_n {
            -1 => WaitTarget::AnyChild,
            0 => WaitTarget::Group(0),
            p if p < 0 => WaitTarget::Group(-p),
            p => WaitTarget::Pidfd(p),
        };
        if !machine.can_wait_in_ring(target, options) {
            return rb_self.funcall("process_wait_on_worker", (pid, flags));
        }
        let reported = match target {
            WaitTarget::Pidfd(_) => machine.wait_for_pid(pid_n, options),
            _ => machine.wait_child(target, options),
        };
        let reported = match reported {
            // No such child: Ruby's own answer is a Process::Status of pid -1 carrying ECHILD,
            // which Process.wait turns into Errno::ECHILD and IO#close of a popen IO ignores
            // (a dup of it waits again). waitpid on a worker gives it at once.
            Err(e) if is_no_child_error(&e) => return rb_self.funcall("process_wait_on_worker", (pid, flags)),
            other => other?,
        };
        match reported {
            Some(info) => process_status(&info).map(rb::value),
            None => Ok(rb::value(NIL)),
        }
    }

    /// Waits until any of `polls` ([[io, events], ...]) is ready or `timeout` passes: the
    /// waiting half of io_select (the Ruby half computes the ready sets).
    pub fn rb_wait_any(&self, polls: magnus::RArray, timeout: Value) -> Result<bool, Error> {
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        let mut list = Vec::with_capacity(polls.len());
        for pair in polls.into_iter() {
            let pair = magnus::RArray::try_convert(pair)?;
            let fd = fd_arg(raw(pair.entry::<Value>(0)?))?;
            let events = rb::int_arg(raw(pair.entry::<Value>(1)?), "events", 1, 0xffff)? as u32;
            list.push((fd, events));
        }
        // io_select checked the caller's timeout as IO.select does; this is what is left of it.
        let after = match raw(timeout) {
            NIL => None,
            t => duration::float_seconds(t)?,
        };
        machine.await_any_poll(&list, after)
    }

    /// interval_seconds(timeout) → Float seconds, or nil when past the clock's range (never):
    /// io_select's timeout checked and converted as IO.select does (ruby/duration.rs).
    pub fn rb_interval_seconds(timeout: Value) -> Result<Value, Error> {
        match duration::interval(raw(timeout))? {
            // A Float outside the flonum range is an object: its allocation may raise.
            Some(d) => rb::float(d.as_secs_f64()).map(rb::value),
            None => Ok(rb::value(NIL)),
        }
    }

    /// fiber_interrupt(fiber, exception) (Ruby 4.0): cancel what the fiber waits on and raise
    /// the exception in it. IO#close calls it from the closing thread, which may be another.
    #[cfg(ruby_gte_4_0)]
    pub fn rb_fiber_interrupt(&self, fiber: Value, exception: Value) -> Result<Value, Error> {
        let machine = self.used_machine()?;
        let (fiber, exception) = (raw(fiber), raw(exception));
        crate::machine::fibers::check_fiber(fiber)?;
        machine.check_fiber_thread(fiber)?;
        if !rb::is_exception(exception) {
            return Err(rb::type_error("exception expected"));
        }
        if machine.is_owner_thread() {
            machine.check_owner()?; // refused in a forked child, or once the machine is closed
        }
        machine.deliver_from_any_thread(Remote::new(fiber, exception, Wake::Raise));
        Ok(rb::value(NIL))
    }

    /// yield (Ruby 4.0): let the other fibers run once.
    #[cfg(ruby_gte_4_0)]
    pub fn rb_yield(&self) -> Result<Value, Error> {
        self.bound_machine()?.rb_snooze()
    }
}

fn is_no_child_error(e: &Error) -> bool {
    let Ok(echild) = rb::class_named("Errno::ECHILD") else {
        return false;
    };
    e.value().is_some_and(|v| rb::is_kind_of(raw(v), echild))
}

/// Whether `class` (UringMachine::Scheduler or a subclass) leaves io_read and io_write as
/// UringMachine::Scheduler defines them, when the scheduler is created.
fn io_hooks_are_ours(class: magnus::RClass) -> Result<bool, Error> {
    let base = rb::class_named("UringMachine::Scheduler")?;
    for hook in ["io_read", "io_write"] {
        let method: Value = class.funcall("instance_method", (rb::value(rb::symbol(hook)?),))?;
        let owner: Value = method.funcall("owner", ())?;
        if raw(owner) != base {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Timeout::Error and Timeout::ExitException (NIL where the timeout gem has none), looked up
/// once Timeout is loaded, and kept (pinned).
fn timeout_classes() -> Result<Option<(VALUE, VALUE)>, Error> {
    static FOUND: std::sync::OnceLock<(VALUE, VALUE)> = std::sync::OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(Some(*found));
    }
    let names = names();
    let constant = |module: VALUE, id| -> VALUE {
        // SAFETY: constant lookups on a live module; an autoload or const_missing that raises
        // is caught by the protect around this closure's caller.
        unsafe {
            if rb_sys::rb_const_defined_at(module, id) == 0 {
                NIL
            } else {
                rb_sys::rb_const_get_at(module, id)
            }
        }
    };
    // SAFETY: rb_cObject is set at boot; see `constant`; registering a class pins it (it may
    // allocate: NoMemoryError under protect).
    let found = protect(|| unsafe {
        let timeout = constant(rb_sys::rb_cObject, names.timeout_module);
        let error = if timeout == NIL {
            NIL
        } else {
            constant(timeout, names.error_class)
        };
        if error != NIL && FOUND.get().is_none() {
            let exit = constant(timeout, names.exit_exception);
            rb_sys::rb_gc_register_mark_object(error);
            if exit != NIL {
                rb_sys::rb_gc_register_mark_object(exit);
            }
            let _ = FOUND.set((error, exit));
        }
        error
    })?;
    Ok((found != NIL).then(|| *FOUND.get().expect("set with it")))
}

/// A new Timeout::ExitException(*arguments), where the timeout gem has that class.
fn timeout_exit_exception(arguments: &[Value]) -> Result<Option<VALUE>, Error> {
    let Some((_, exit)) = timeout_classes()? else {
        return Ok(None);
    };
    if exit == NIL {
        return Ok(None);
    }
    let rest: Vec<VALUE> = arguments.iter().map(|v| raw(*v)).collect();
    // SAFETY: `exit` is a class (pinned), `rest` the caller's arguments, alive for the call;
    // `new` runs Ruby code whose raise protect catches.
    protect(|| unsafe { rb_sys::rb_class_new_instance(rest.len() as _, rest.as_ptr(), exit) }).map(Some)
}

/// Whether `class` is Timeout::Error (Timeout loaded or not).
fn is_timeout_error_class(class: VALUE) -> Result<bool, Error> {
    if rb::type_of(class) != rb_sys::ruby_value_type::RUBY_T_CLASS {
        return Ok(false);
    }
    Ok(timeout_classes()?.is_some_and(|(error, _)| error == class))
}
