//! Signals: an Interrupt or SignalException (and whatever `UringMachine.emit_signal_exception`
//! sends) goes to the main fiber of the family tree it surfaced in, never ends the fiber that
//! happened to be waiting on the ring when Ruby checked its interrupts; and the fibers that a
//! program which is ending leaves behind are stopped (UringMachine::Stop), not waited for.
use magnus::{prelude::*, rb_sys::protect, typed_data::Obj, value::Lazy, Error, ExceptionClass, RModule, Value};
use rb_sys::{ID, VALUE};

use crate::machine::fibers::{check_fiber, home_of, is_spun, machine_value_of, tree_top};
use crate::machine::{exception_error, run_loop::State, Machine};
use crate::ruby::args::{arg, arity};
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, fiber_current, raw, NIL, TRUE};

static STOP_CLASS: Lazy<ExceptionClass> = Lazy::new(|ruby| {
    let module: RModule = ruby
        .class_object()
        .const_get("UringMachine")
        .expect("UringMachine defined");
    module.const_get("Stop").expect("UringMachine::Stop defined")
});

/// Looks UringMachine::Stop up at load, right after defining it: a program that removes the
/// constant later must not make the first lookup fail (and panic).
pub fn remember_stop(ruby: &magnus::Ruby) {
    Lazy::force(&STOP_CLASS, ruby);
}

/// Hidden ivar on an exception that emit_signal_exception sent: the fiber it is for, or true
/// for "the main fiber" (the top of the tree of whichever fiber it surfaces in).
fn target_id() -> ID {
    names().signal_target
}

fn is_signal(exc: VALUE) -> bool {
    // SAFETY: rb_eSignal is a global CRuby sets at boot.
    rb::is_kind_of(exc, unsafe { rb_sys::rb_eSignal })
}

pub fn is_stop(exc: VALUE) -> bool {
    !rb::is_special(exc) && rb::is_kind_of(exc, raw(rb::ruby().get_inner(&STOP_CLASS)))
}

/// Where `exc`, raised in `current`, belongs when it is a signal: the fiber it was emitted to,
/// or the top of `current`'s family tree. None for an ordinary exception, or when that fiber
/// is `current` itself (then it is raised right here, as usual).
pub fn signal_target(exc: VALUE, current: VALUE) -> Option<VALUE> {
    if rb::is_special(exc) || is_raised_by_thread(exc) {
        return None;
    }
    let mark = rb::ivar_get(exc, target_id());
    let target = if mark != NIL && mark != TRUE {
        mark
    } else if mark == TRUE || is_signal(exc) {
        tree_top(current)
    } else {
        return None;
    };
    (target != current).then_some(target)
}

/// Whether `exc` means the program (or thread) is ending: a signal exception, SystemExit, or
/// anything emit_signal_exception sent. Scheduler#close stops the fibers instead of waiting for
/// them while such an exception propagates.
pub fn ends_program(exc: VALUE) -> bool {
    !rb::is_special(exc)
        && rb::is_exception(exc)
        && (is_signal(exc)
            // SAFETY: rb_eSystemExit is a global CRuby sets at boot.
            || rb::is_kind_of(exc, unsafe { rb_sys::rb_eSystemExit })
            || rb::ivar_get(exc, target_id()) != NIL)
}

impl State {
    fn is_parked(&self, fiber: VALUE) -> bool {
        self.is_in_wait(fiber) || self.runqueue.iter().any(|r| r.fiber == fiber && self.is_live(r))
    }

    /// Raises `exc` in `fiber` at its next resumption, cancelling what it waits on; a signal
    /// replaces an exception already pending there (that one already woke the fiber).
    pub fn deliver_signal(&mut self, fiber: VALUE, exc: VALUE) {
        if let Some(pending) = self.pending.get_mut(&fiber) {
            *pending = exc;
        } else {
            self.interrupt(fiber, exc);
        }
    }
}

/// Whether another thread raised `exc` into this one with Thread#raise (marked by
/// core_ext/thread.rb's ThreadRaise): it is raised where the thread waits, even an Interrupt.
fn is_raised_by_thread(exc: VALUE) -> bool {
    rb::ivar_get(exc, names().raised_by_thread) == TRUE
}

/// UringMachine.__raised_by_thread__(exception): marks an exception that Thread#raise sends to
/// another thread (see is_raised_by_thread).
pub fn rb_mark_raised_by_thread(exception: Value) -> Result<Value, Error> {
    let exc = raw(exception);
    if !rb::is_exception(exc) {
        return Err(rb::type_error("exception expected"));
    }
    if !rb::is_frozen(exc) {
        rb::ivar_set(exc, names().raised_by_thread, TRUE)?;
    }
    Ok(exception)
}

impl Machine {
    /// Called with what the ring wait (or the interrupt check after it) returned: a signal
    /// exception that belongs to another fiber parked on this machine goes there, and the
    /// current fiber goes on waiting. So does what another thread's Thread#raise sent while
    /// the loop of run / close waited: it is for the fiber that parked last, as it would be
    /// raised where a thread without a scheduler waits.
    pub(crate) fn route_signal(&self, result: Result<VALUE, Error>) -> Result<VALUE, Error> {
        let Err(e) = &result else {
            return result;
        };
        let Some(exc) = e.value().map(raw) else {
            return result;
        };
        if is_raised_by_thread(exc) {
            let current = fiber_current();
            let delivered = self.with(|s| {
                let target = s.last_parked;
                let for_other = current == s.loop_fiber && target != NIL && target != current && s.is_parked(target);
                if for_other {
                    s.interrupt(target, exc);
                }
                for_other
            });
            return if delivered { Ok(NIL) } else { result };
        }
        let Some(target) = signal_target(exc, fiber_current()) else {
            return result;
        };
        let delivered = self.with(|s| {
            let parked = s.is_parked(target);
            if parked {
                s.deliver_signal(target, exc);
            }
            parked
        });
        if delivered {
            Ok(NIL)
        } else {
            result
        }
    }

    /// Raises UringMachine::Stop in every other fiber that `spin` or `Fiber.schedule` started
    /// and that waits on this machine or is about to run on it (in place of an exception
    /// already on its way there). Returns how many.
    pub fn stop_fibers(&self) -> Result<usize, Error> {
        let current = fiber_current();
        let mut candidates: Vec<VALUE> = self.with(|s| {
            let mut list: Vec<VALUE> = s
                .waits
                .iter()
                .filter(|(_, w)| w.current.is_some())
                .map(|(f, _)| *f)
                .collect();
            list.extend(s.runqueue.iter().filter(|r| s.is_live(r)).map(|r| r.fiber));
            list.retain(|f| *f != current);
            list
        });
        candidates.sort_unstable();
        candidates.dedup();
        // Each VALUE stays marked: the machine holds every fiber it lists.
        candidates.retain(|f| is_spun(*f) && rb::fiber_alive(*f));
        let class = raw(rb::ruby().get_inner(&STOP_CLASS));
        for fiber in &candidates {
            let msg = "stopped: the program is ending";
            // SAFETY: `class` is UringMachine::Stop (a constant's class) and `msg` a static
            // str; the allocation may raise NoMemoryError, caught by protect.
            let exc = protect(|| unsafe { rb_sys::rb_exc_new(class, msg.as_ptr() as *const _, msg.len() as _) })?;
            self.with(|s| s.deliver_signal(*fiber, exc));
        }
        Ok(candidates.len())
    }
}

/// UringMachine.emit_signal_exception(exception, fiber = nil) → nil: raises `exception` (an
/// instance, or an Exception class to instantiate) in `fiber`, breaking out of whatever it
/// waits on; by default in the main fiber of Thread.main. Callable from trap handlers, from
/// any fiber, and from other threads.
pub fn rb_emit_signal_exception(args: &[Value]) -> Result<Value, Error> {
    rb::root_fiber_ready()?; // any thread may emit first
    arity(args, 1, 2)?;
    let exc = exception_arg(arg(args, 0))?;
    let fiber = arg(args, 1);
    if fiber != NIL {
        check_fiber(fiber)?;
    }
    if rb::is_frozen(exc) {
        return Err(rb::frozen_error("can't emit a frozen exception"));
    }
    rb::ivar_set(exc, target_id(), if fiber == NIL { TRUE } else { fiber })?;
    let current = fiber_current();
    let thread = target_thread(fiber)?;
    // SAFETY: rb_thread_current reads the running Thread (GVL held); it cannot raise.
    if thread != unsafe { rb_sys::rb_thread_current() } {
        // It surfaces in whichever fiber that thread runs; its mark routes it from there.
        let raise = names().raise;
        // SAFETY: `thread` is a live Thread (a machine's owner, or Thread.main), `exc` the
        // caller's exception; Thread#raise's own errors (a dead thread) are caught by protect.
        protect(|| unsafe { rb_sys::rb_funcall(thread, raise, 1, exc) })?;
        return Ok(rb::value(NIL));
    }
    let target = if fiber == NIL { tree_top(current) } else { fiber };
    if target == current {
        return Err(exception_error(exc));
    }
    let delivered = match machine_for(target, current)? {
        Some(machine) => machine.with(|s| {
            let parked = s.is_parked(target);
            if parked {
                s.deliver_signal(target, exc);
            }
            parked
        }),
        None => false,
    };
    if !delivered {
        return Err(rb::arg_error("the fiber is not waiting on a UringMachine"));
    }
    Ok(rb::value(NIL))
}

fn exception_arg(v: VALUE) -> Result<VALUE, Error> {
    if rb::is_exception(v) {
        return Ok(v);
    }
    let is_class = !rb::is_special(v) && rb::type_of(v) == rb_sys::ruby_value_type::RUBY_T_CLASS;
    // SAFETY: both are classes (`v` checked T_CLASS, rb_eException set at boot), the only case
    // in which rb_class_inherited_p raises nothing; it allocates nothing.
    if is_class && unsafe { rb_sys::rb_class_inherited_p(v, rb_sys::rb_eException) } == TRUE {
        // SAFETY: no arguments (a null argv with argc 0); allocation and `initialize` run Ruby
        // code whose raise protect catches.
        return protect(|| unsafe { rb_sys::rb_class_new_instance(0, std::ptr::null(), v) });
    }
    Err(rb::type_error("exception class or instance expected"))
}

fn machine_obj(v: VALUE) -> Option<Obj<Machine>> {
    if v == NIL {
        None
    } else {
        Obj::<Machine>::try_convert(rb::value(v)).ok()
    }
}

/// The thread `fiber` runs on: its machine's, or Thread.main for the default (nil) and for a
/// fiber no machine knows.
fn target_thread(fiber: VALUE) -> Result<VALUE, Error> {
    if fiber != NIL {
        if fiber == fiber_current() {
            // SAFETY: rb_thread_current reads the running Thread (GVL held); it cannot raise.
            return Ok(unsafe { rb_sys::rb_thread_current() });
        }
        let machine = machine_obj(machine_value_of(fiber)).or_else(|| machine_obj(home_of(fiber)));
        if let Some(machine) = machine {
            return Ok(machine.owner_thread());
        }
    }
    // SAFETY: rb_thread_main reads the VM's main Thread, which exists while Ruby runs.
    Ok(unsafe { rb_sys::rb_thread_main() })
}

/// On this thread, the machine `target` waits on: the one that started it, the one its own
/// fibers run on, or the current fiber's.
fn machine_for(target: VALUE, current: VALUE) -> Result<Option<Obj<Machine>>, Error> {
    Ok(machine_obj(machine_value_of(target))
        .or_else(|| machine_obj(home_of(target)))
        .or_else(|| machine_obj(machine_value_of(current)))
        .filter(|m| m.is_owner_thread() && !m.is_inherited_by_fork()))
}
