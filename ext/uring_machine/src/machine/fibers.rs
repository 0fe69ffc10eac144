//! The fiber half of Machine's Ruby API: schedule, snooze, suspend, join, sleep, timeout, and
//! the body every spun fiber runs in.
use std::sync::OnceLock;

use io_uring::opcode;
use magnus::{
    prelude::*, rb_sys::protect, typed_data::Obj, value::Lazy, Error, Exception, ExceptionClass, RModule, Value,
};
use rb_sys::VALUE;

use crate::machine::debug_record::Why;
use crate::machine::fiber_info;
use crate::machine::timers::timer_sqe;
use crate::machine::tree::{self, parent_of};
use crate::machine::{error_value, exception_error, non_local_jump_error, signals, terminated, Machine};
use crate::ring::wakeup::{Remote, Wake};
use crate::ruby::duration;
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, fiber_current, raw, NIL, TRUE};

static TIMEOUT_ERROR_CLASS: Lazy<ExceptionClass> = Lazy::new(|ruby| {
    let module: RModule = ruby
        .class_object()
        .const_get("UringMachine")
        .expect("UringMachine defined");
    module
        .const_get("TimeoutError")
        .expect("UringMachine::TimeoutError defined")
});

/// Looks UringMachine::TimeoutError up at load, right after defining it: a program that
/// removes the constant later must not make a timeout's first lookup fail (and panic).
pub fn remember_timeout_error(ruby: &magnus::Ruby) {
    Lazy::force(&TIMEOUT_ERROR_CLASS, ruby);
}

fn fiber_class() -> Result<VALUE, Error> {
    static FIBER: OnceLock<VALUE> = OnceLock::new();
    if let Some(class) = FIBER.get() {
        return Ok(*class);
    }
    let class = rb::class_named("Fiber")?;
    let _ = FIBER.set(class);
    Ok(class)
}

/// A Fiber that CRuby can run: Fiber.allocate makes one with no fiber behind it, on which every
/// Fiber call (alive?, resume, transfer) raises FiberError.
pub fn check_fiber(v: VALUE) -> Result<(), Error> {
    if rb::is_special(v) || !rb::is_kind_of(v, fiber_class()?) {
        return Err(rb::type_error("expected a Fiber"));
    }
    // SAFETY: `v` is a Fiber, a typed T_DATA object (is_kind_of above), so reading its data
    // pointer is reading a field of a live object; nothing is called.
    if unsafe { rb_sys::RTYPEDDATA_GET_DATA(v) }.is_null() {
        return Err(rb::arg_error("uninitialized fiber (made by Fiber.allocate)"));
    }
    Ok(())
}

fn opt(args: &[Value], i: usize) -> VALUE {
    args.get(i).map_or(NIL, |v| raw(*v))
}

impl Machine {
    /// schedule(fiber, value = nil): resume `fiber` with `value` at the next switch; an
    /// Exception is raised in it instead, interrupting whatever it waits on. Thread-safe.
    pub fn rb_schedule(rb_self: Obj<Machine>, args: &[Value]) -> Result<Obj<Machine>, Error> {
        if args.is_empty() || args.len() > 2 {
            return Err(rb::arg_error(format!(
                "wrong number of arguments (given {}, expected 1..2)",
                args.len()
            )));
        }
        let fiber = raw(args[0]);
        check_fiber(fiber)?;
        rb_self.check_fiber_thread(fiber)?;
        let value = opt(args, 1);
        let remote = Remote::schedule(fiber, value, rb::is_exception(value));
        rb_self.deliver_from_any_thread(remote);
        Ok(rb_self)
    }

    /// Refuses a fiber of another thread (created, running or dead): only the thread a fiber
    /// was created on can run it, and resuming it here would fail later, in whatever fiber
    /// happens to switch. Its thread is the one recorded when it was allocated (see
    /// fiber_thread.rs), else that of the machine it runs or waits on; a fiber allocated before
    /// the gem was loaded, or another thread's root fiber that never used a machine, cannot be
    /// told apart.
    pub fn check_fiber_thread(&self, fiber: VALUE) -> Result<(), Error> {
        let thread = match crate::machine::fiber_thread::thread_of(fiber) {
            NIL => match crate::machine::tree::machine_of_waiter(fiber) {
                Some(machine) => machine.owner_thread(),
                None => return Ok(()),
            },
            thread => thread,
        };
        if thread != self.owner_thread() {
            return Err(rb::arg_error(
                "the fiber belongs to another thread: only that thread (its machine, its scheduler) can resume it",
            ));
        }
        Ok(())
    }

    /// __spin__(fiber): schedules a fiber `spin` just created by the current fiber, recording
    /// this machine as its own before it starts (see check_fiber_thread) and the current fiber
    /// as its parent, which stops it when it finishes first.
    pub fn rb_schedule_spun(rb_self: Obj<Machine>, fiber: Value) -> Result<Value, Error> {
        let fiber = raw(fiber);
        check_fiber(fiber)?;
        rb_self.check_owner()?;
        home_creator(raw(rb_self.as_value()))?;
        adopt(fiber, raw(rb_self.as_value()))?;
        tree::link(fiber_current(), fiber, true)?;
        // A start, not a value: one scheduled before it starts is for its first suspension.
        rb_self.with(|s| s.queue_start(fiber));
        Ok(rb::value(fiber))
    }

    pub fn rb_snooze(&self) -> Result<Value, Error> {
        self.check_owner()?;
        self.snooze()?;
        Ok(rb::value(NIL))
    }

    pub fn rb_suspend(&self) -> Result<Value, Error> {
        self.check_owner()?;
        self.suspend_current().map(rb::value)
    }

    /// Thread-safe: makes this machine's ring wait return.
    pub fn rb_wakeup(&self) -> Value {
        self.wakeup().signal();
        rb::value(NIL)
    }

    /// sleep(seconds) → seconds (a Float): converted as Kernel#sleep converts them
    /// (ruby/duration.rs); one past the clock's range sleeps until an exception interrupts it.
    pub fn rb_sleep(&self, seconds: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let after = duration::interval(raw(seconds))?;
        let res = self.run_op(
            |slot| timer_sqe(slot, after.unwrap_or(duration::RING_FOREVER)),
            opcode::Timeout::CODE,
            NIL,
        )?;
        if res < 0 && res != -libc::ETIME {
            return Err(rb::errno_error(-res, "sleep"));
        }
        let secs = after.unwrap_or(duration::RING_FOREVER).as_secs_f64();
        rb::float(secs).map(rb::value)
    }

    /// timeout(seconds, exception = UringMachine::TimeoutError) { }: raises the exception in
    /// this fiber if the block has not finished in time, cancelling the op it waits on.
    pub fn rb_timeout(&self, args: &[Value]) -> Result<Value, Error> {
        self.check_owner()?;
        if args.is_empty() || args.len() > 2 {
            return Err(rb::arg_error(format!(
                "wrong number of arguments (given {}, expected 1..2)",
                args.len()
            )));
        }
        // SAFETY: rb_block_given_p only reads the current frame (this method's, called from
        // Ruby with the GVL); it allocates nothing and cannot raise.
        if unsafe { rb_sys::rb_block_given_p() } == 0 {
            return Err(rb::arg_error("timeout needs a block"));
        }
        let seconds = raw(args[0]);
        if seconds == NIL {
            return yield_block();
        }
        let after = duration::interval(seconds)?;
        let exception = timeout_exception(opt(args, 1))?;
        self.with_timeout(after, exception, yield_block)
    }

    /// __fiber_begin__ → the block: the bookkeeping before a spun fiber's block runs; the
    /// block (and __fiber_args__, its arguments) are what UringMachine.__set_body__ recorded
    /// as the fiber was made. The Ruby half, UringMachine::FiberBody#__run_fiber__, calls the
    /// block itself, so that it runs in the fiber's first VM frame loop and a waiting fiber's
    /// machine stack stays within one page. Fails only when Ruby code froze the fiber
    /// (FrozenError) or memory ran out: the fiber then fails with that error.
    pub fn rb_fiber_begin(rb_self: Obj<Machine>) -> Result<Value, Error> {
        let current = fiber_current();
        rb_self.with(|s| s.metrics.fibers += 1);
        rb::ivar_set(current, names().fiber_machine, raw(rb_self.as_value()))?;
        fiber_info::mark_born(current)?;
        fiber_info::list_name(&rb_self, current);
        Ok(rb::value(rb::ivar_get(current, names().fiber_block)))
    }

    /// __fiber_args__ → the current fiber's block arguments: an Array, or nil for none.
    pub fn rb_fiber_args(&self) -> Value {
        rb::value(rb::ivar_get(fiber_current(), names().fiber_args))
    }

    /// __fiber_end__(value, error): the block returned +value+ or raised +error+ (nil when it
    /// returned): see #finish.
    pub fn rb_fiber_end(rb_self: Obj<Machine>, value: Value, error: Value) -> Result<Value, Error> {
        let outcome = match Exception::from_value(error) {
            Some(e) => Err(Error::from(e)),
            None => Ok(raw(value)),
        };
        Self::finish(&rb_self, outcome, false)
    }

    /// __fiber_unwound__: the block was left by a non-local jump (Fiber#kill, Thread#kill)
    /// that goes on unwinding the fiber once this returns: see #finish.
    pub fn rb_fiber_unwound(rb_self: Obj<Machine>) -> Result<Value, Error> {
        let outcome = Err(exception_error(non_local_jump_error()));
        Self::finish(&rb_self, outcome, true)
    }

    /// After a spun fiber's block: stops the children it spun that still run, records its
    /// outcome for `join`, wakes the joiners, reports its end to its parent's watcher (a
    /// supervisor) or raises an unjoined failure in the parent (the fiber that created this
    /// one), then hands back the sentinel that tells the fiber control returns to that this
    /// one has finished. +unwound+: the block was left by a non-local jump, which nothing
    /// else hears of: it goes on through the fiber.
    fn finish(rb_self: &Obj<Machine>, mut outcome: Result<VALUE, Error>, unwound: bool) -> Result<Value, Error> {
        let this = &**rb_self;
        let current = fiber_current();
        this.with(|s| {
            if s.debug.has_names() {
                s.debug.forget_name(current);
            }
        });
        let names = names();
        match tree::has_structured_children(current) {
            Ok(false) => {}
            Ok(true) => {
                let stopped = stop_children(current);
                if outcome.is_ok() {
                    outcome = stopped.map(|_| NIL).and(outcome);
                }
            }
            Err(e) => outcome = outcome.and(Err(e)),
        }
        // An interrupt still pending (the op it interrupted completed, and the fiber did not
        // wait again) has nothing left to stop: it is dropped, like Thread#raise on a finished
        // thread. A child's failure is not: it moves on to this fiber's parent.
        let leftover_failure = this.with(|s| {
            s.metrics.fibers -= 1;
            s.forget_fiber(current);
            let failure = s.failures.remove(&current);
            let pending = s.pending.remove(&current);
            failure.filter(|f| Some(*f) == pending)
        });
        let (mut value, mut error) = match &outcome {
            Ok(v) => (*v, NIL),
            Err(e) => (NIL, error_value(e)),
        };
        if error != NIL && signals::is_stop(error) {
            // Stopped on purpose (Fiber#stop, its parent finished, the program is ending): not
            // a failure; Fiber#stop(value) gives the value join returns.
            value = rb::ivar_get(error, names.at_value);
            error = NIL;
        }
        // A fiber frozen while it ran cannot hold its outcome for join (its joiners, woken all
        // the same, get nil): the FrozenError is its failure, raised in its parent.
        let recorded = rb::ivar_set(current, names.fiber_value, value)
            .and_then(|_| rb::ivar_set(current, names.fiber_error, error))
            .and_then(|_| rb::ivar_set(current, names.fiber_done, TRUE));
        let joined = match (recorded, wake_joiners(this, current)) {
            (Ok(()), Ok(joined)) => joined,
            (Err(e), _) | (_, Err(e)) => {
                error = error_value(&e);
                outcome = Err(e);
                false
            }
        };
        let parent = parent_of(current);
        // Unlisted from a frozen parent's children it stays listed: children_of shows living
        // ones only, and nothing else is left to report it to.
        let _ = tree::unlink(current);
        let reporter = tree::reporter_of(current);
        // A group's child_finished answers whether it takes the failure; a raise in it is its
        // own bug and is not let loose in this finished fiber: the failure then goes on as usual.
        // SAFETY: `reporter`, `current` and `error` are live (this fiber's ivar, this fiber, a
        // VALUE on this stack); whatever child_finished raises is caught by protect.
        let reported = reporter != NIL
            && protect(|| unsafe { rb_sys::rb_funcall(reporter, names.child_finished, 2, current, error) })
                .is_ok_and(rb::truthy);
        let watcher = if reported { NIL } else { tree::watcher_of(parent) };
        if watcher != NIL {
            // Supervisor#child_finished only queues the news (no limit, no wait): nothing to lose.
            // SAFETY: `watcher`, `current` and `error` are live (the parent's ivar, this fiber,
            // a VALUE on this stack); a raise from child_finished is caught by protect.
            let _ = protect(|| unsafe { rb_sys::rb_funcall(watcher, names.child_finished, 2, current, error) });
        }
        if let Err(e) = outcome {
            if unwound {
                return Ok(rb::value(NIL)); // Fiber#kill, Thread#kill: it unwinds on
            }
            if e.value().is_none() {
                return Err(e); // throw / kill: let it unwind to where it belongs
            }
            if error == NIL || watcher != NIL || reported {
                // stopped on purpose, or the supervisor or group heard of it
            } else if let Some(target) = signals::signal_target(error, current) {
                // A signal exception that surfaced in this fiber's own code goes to the main
                // fiber of the tree, not to the parent.
                this.with(|s| s.deliver_signal(target, error));
            } else if !joined && fiber_info::is_isolated(current) {
                report_isolated(current, error);
            } else if !joined {
                raise_in_ancestor(rb_self, current, error, true);
            }
        }
        if let Some(failure) = leftover_failure {
            raise_in_ancestor(rb_self, current, failure, false);
        }
        Ok(rb::value(terminated()))
    }

    /// join(*fibers): waits for each fiber to finish (spun on this machine or, through its
    /// machine's thread-safe queue, on another thread's); returns its value (an Array of values
    /// for several fibers) and re-raises the first failure.
    pub fn rb_join(rb_self: Obj<Machine>, fibers: &[Value]) -> Result<Value, Error> {
        rb_self.check_owner()?;
        let names = names();
        let current = fiber_current();
        for f in fibers {
            let fiber = raw(*f);
            check_fiber(fiber)?;
            if fiber == current {
                return Err(rb::arg_error("a fiber cannot join itself"));
            }
        }
        for f in fibers {
            let fiber = raw(*f);
            while rb::ivar_get(fiber, names.fiber_done) != TRUE && rb::fiber_alive(fiber) {
                let mut joiners = rb::ivar_get(fiber, names.fiber_joiners);
                if joiners == NIL {
                    joiners = rb::hash_new()?;
                    rb::ivar_set(fiber, names.fiber_joiners, joiners)?;
                }
                rb::hash_aset(joiners, current, raw(rb_self.as_value()))?;
                let waited = rb_self.suspend(Why::Join, fiber, None);
                let unlisted = rb::hash_delete(joiners, current);
                waited?;
                unlisted?;
            }
        }
        for f in fibers {
            let fiber = raw(*f);
            let error = rb::ivar_get(fiber, names.fiber_error);
            if error != NIL {
                // Raised here, so no longer also on its way to this fiber as a child's failure.
                let was_pending = rb_self.with(|s| {
                    let pending = s.pending.get(&current) == Some(&error);
                    if pending {
                        s.pending.remove(&current);
                        s.failures.remove(&current);
                    }
                    pending
                });
                // Already raised in this fiber as a child's failure: each failure once.
                if !was_pending && rb::ivar_get(fiber, names.fiber_told) == current {
                    continue;
                }
                return Err(exception_error(error));
            }
        }
        if let [fiber] = fibers {
            return Ok(rb::value(rb::ivar_get(raw(*fiber), names.fiber_value)));
        }
        // Each value stays held by its fiber (an argument, on the VM stack) while the Array grows.
        let ary = rb::ary_new_capa(fibers.len())?;
        for f in fibers {
            rb::ary_push(ary, rb::ivar_get(raw(*f), names.fiber_value))?;
        }
        Ok(rb::value(ary))
    }

    pub fn rb_set_report_on_exception(&self, flag: bool) -> bool {
        self.with(|s| s.report_on_exception = flag);
        flag
    }

    pub fn rb_report_on_exception(&self) -> bool {
        self.with(|s| s.report_on_exception)
    }

    pub fn rb_metrics(&self) -> Result<Value, Error> {
        let (metrics, gauges) = self.with(|s| {
            let gauges = [
                ("in_flight", s.ops.in_flight() as u64),
                ("runqueue", s.runqueue.len() as u64),
                ("timers", s.live_timers().len() as u64),
            ];
            (s.metrics.clone(), gauges)
        });
        metrics.to_hash(&gauges)
    }

    pub fn rb_setup_flags(&self) -> &'static str {
        self.with(|s| s.ring.setup_flags)
    }
}

/// UringMachine.machine_of(fiber) → the Machine running a fiber that `spin` or `Fiber.schedule`
/// started, or nil for any other fiber.
pub fn rb_machine_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Ok(rb::value(rb::ivar_get(fiber, names().fiber_machine)))
}

/// Records `machine` as the one that runs `fiber` (see rb_machine_of).
pub fn adopt(fiber: VALUE, machine: VALUE) -> Result<(), Error> {
    rb::ivar_set(fiber, names().fiber_machine, machine)
}

/// Whether `spin` or `Fiber.schedule` started `fiber`.
pub fn is_spun(fiber: VALUE) -> bool {
    rb::ivar_get(fiber, names().fiber_machine) != NIL
}

/// The machine that started `fiber` (nil for a fiber no machine started).
pub fn machine_value_of(fiber: VALUE) -> VALUE {
    rb::ivar_get(fiber, names().fiber_machine)
}

/// The machine that fibers started by `fiber` run on, for a fiber no machine started (nil if
/// it started none).
pub fn home_of(fiber: VALUE) -> VALUE {
    rb::ivar_get(fiber, names().fiber_home)
}

/// See home_of.
pub fn set_home(fiber: VALUE, machine: VALUE) -> Result<(), Error> {
    rb::ivar_set(fiber, names().fiber_home, machine)
}

/// Called as the current fiber makes a fiber that runs on `machine`: when no machine started
/// the current one (a thread's root fiber, usually), it is remembered to wait on `machine`:
/// emit_signal_exception finds it there from another thread, and a failure of the new fiber
/// is raised in it through this machine.
pub fn home_creator(machine: VALUE) -> Result<(), Error> {
    let creator = fiber_current();
    if !is_spun(creator) && home_of(creator) != machine {
        set_home(creator, machine)?;
    }
    Ok(())
}

/// The topmost living fiber of `fiber`'s family tree: for every fiber that `spin` or
/// `Fiber.schedule` started from a thread's main code, that thread's root fiber. A fiber no
/// machine started is its own top.
pub fn tree_top(fiber: VALUE) -> VALUE {
    let mut top = fiber;
    let mut parent = parent_of(fiber);
    // Parents are older than their children, so the chain cannot loop; bounded all the same.
    for _ in 0..100_000 {
        if parent == NIL {
            break;
        }
        if rb::fiber_alive(parent) {
            top = parent;
        }
        parent = parent_of(parent);
    }
    top
}

/// The nearest ancestor of `fiber` that is still alive: a failure is raised there.
fn living_ancestor(fiber: VALUE) -> Option<VALUE> {
    let mut parent = parent_of(fiber);
    while parent != NIL {
        if rb::fiber_alive(parent) {
            return Some(parent);
        }
        parent = parent_of(parent);
    }
    None
}

/// Raises a failure that escaped `fiber` in its nearest living ancestor, on whichever thread
/// that runs; with none, reports it (Machine#report_on_exception). `own`: the failure is
/// `fiber`'s own, so the ancestor is remembered first (before another thread can run it) as
/// the one told of it: its join of `fiber` does not raise it a second time.
fn raise_in_ancestor(machine: &Obj<Machine>, fiber: VALUE, failure: VALUE, own: bool) {
    match living_ancestor(fiber) {
        Some(ancestor) => {
            if own {
                // A frozen fiber remembers nothing: a later join then raises it again.
                let _ = rb::ivar_set(fiber, names().fiber_told, ancestor);
            }
            raise_in(machine, ancestor, failure)
        }
        None if machine.with(|s| s.report_on_exception) => {
            let _: Result<Value, Error> = machine.funcall("report_fiber_error", (rb::value(fiber), rb::value(failure)));
        }
        None => {}
    }
}

/// Hands the failure of a fiber that `spin(isolated: true)` started, which nobody joined, to
/// UringMachine.__isolated_failure__ (a supervisor up the tree hears of it, else it is
/// printed), instead of raising it in its parent.
fn report_isolated(fiber: VALUE, failure: VALUE) {
    let Ok(module) = rb::class_named("UringMachine") else {
        return;
    };
    // SAFETY: `module` is a constant's module, `fiber` the current fiber and `failure` a VALUE
    // on this stack; whatever the Ruby method raises is caught by protect (nothing is left to
    // tell of it: the report itself failed).
    let _ = protect(|| unsafe { rb_sys::rb_funcall(module, names().isolated_failure, 2, fiber, failure) });
}

/// Raises `failure` in `ancestor`, on the machine it waits on.
fn raise_in(machine: &Obj<Machine>, ancestor: VALUE, failure: VALUE) {
    match tree::machine_of_waiter(ancestor) {
        Some(other) if !std::ptr::eq(&*other, &**machine) => {
            tree::wake(machine, Some(other), Remote::new(ancestor, failure, Wake::Raise))
        }
        _ => machine.with(|s| s.interrupt_with_failure(ancestor, failure)),
    }
}

/// Wakes the fibers that join `fiber`, on whichever machine each waits; whether there were any.
fn wake_joiners(machine: &Machine, fiber: VALUE) -> Result<bool, Error> {
    let joiners = rb::ivar_get(fiber, names().fiber_joiners);
    if joiners == NIL {
        return Ok(false);
    }
    // The pairs stay held by the Hash (the fiber's ivar): waking calls no Ruby code.
    let pairs = rb::hash_pairs(joiners)?;
    for &(joiner, home) in &pairs {
        let target = Obj::<Machine>::try_convert(rb::value(home)).ok();
        tree::wake(machine, target, Remote::new(joiner, NIL, Wake::Resume));
    }
    Ok(!pairs.is_empty())
}

/// Stops the children `spin` started from `fiber` that still run (UringMachine::Stop raised
/// in each, their ensure blocks run) and waits for them: UringMachine.__stop_children__.
fn stop_children(fiber: VALUE) -> Result<VALUE, Error> {
    let module = rb::class_named("UringMachine")?;
    // SAFETY: `module` is a constant's class, `fiber` the current fiber; whatever the Ruby
    // method raises (or a fiber switch inside it brings) is caught by protect.
    protect(|| unsafe { rb_sys::rb_funcall(module, names().stop_children, 1, fiber) })
}

fn yield_block() -> Result<Value, Error> {
    // SAFETY: called from a method Ruby called with a block (checked by rb_block_given_p);
    // whatever the block raises, breaks or throws is caught by protect.
    protect(|| unsafe { rb_sys::rb_yield(NIL) }).map(rb::value)
}

/// The exception a timeout raises: a class is instantiated now (message "execution expired"),
/// an instance is used as is.
fn timeout_exception(arg: VALUE) -> Result<VALUE, Error> {
    let ruby = rb::ruby();
    let arg = if arg == NIL {
        raw(ruby.get_inner(&TIMEOUT_ERROR_CLASS))
    } else {
        arg
    };
    if rb::is_exception(arg) {
        return Ok(arg);
    }
    let is_class = !rb::is_special(arg) && rb::type_of(arg) == rb_sys::ruby_value_type::RUBY_T_CLASS;
    // SAFETY: both arguments are classes (`arg` checked T_CLASS, rb_eException a core global
    // set at boot), the only case in which rb_class_inherited_p raises nothing; it allocates
    // nothing.
    if is_class && unsafe { rb_sys::rb_class_inherited_p(arg, rb_sys::rb_eException) } == TRUE {
        let msg = "execution expired";
        // SAFETY: `msg` outlives the call (a static str); the String and the instance are
        // allocated and `initialize` runs Ruby code: whatever that raises protect catches.
        return protect(|| unsafe {
            let s = rb_sys::rb_str_new(msg.as_ptr() as *const _, msg.len() as _);
            rb_sys::rb_class_new_instance(1, &s, arg)
        });
    }
    Err(rb::type_error(
        "timeout exception must be an Exception class or instance",
    ))
}
