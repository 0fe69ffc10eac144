//! The fiber tree: every fiber that `spin` or `Fiber.schedule` starts has a parent (the fiber
//! that started it) and its parent lists it among its children until it finishes. Children
//! that `spin` started are stopped when their parent finishes (structured concurrency);
//! those that `Fiber.schedule` started run to their end, as any Fiber::Scheduler user
//! expects. A parent may have a watcher (a supervisor) that hears of each child's end instead
//! of having its failures raised in it.
use magnus::{prelude::*, rb_sys::protect, typed_data::Obj, Error, Value};
use rb_sys::VALUE;

use crate::machine::fibers::{check_fiber, home_of, machine_value_of, set_home};
use crate::machine::Machine;
use crate::ring::wakeup::Remote;
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, raw, FALSE, NIL, TRUE};

pub fn parent_of(fiber: VALUE) -> VALUE {
    rb::ivar_get(fiber, names().fiber_parent)
}

/// Makes `child` a child of `parent`; `structured`: stopped when `parent` finishes. FrozenError
/// when Ruby code froze either fiber.
pub fn link(parent: VALUE, child: VALUE, structured: bool) -> Result<(), Error> {
    unlink(child)?;
    let names = names();
    rb::ivar_set(child, names.fiber_parent, parent)?;
    if parent == NIL {
        return Ok(());
    }
    let mut children = rb::ivar_get(parent, names.fiber_children);
    if children == NIL {
        children = rb::hash_new()?;
        rb::ivar_set(parent, names.fiber_children, children)?;
    }
    rb::hash_aset(children, child, if structured { TRUE } else { FALSE })
}

/// Takes `child` off its parent's list of children (it has finished, or moves elsewhere).
pub fn unlink(child: VALUE) -> Result<(), Error> {
    let parent = parent_of(child);
    if parent == NIL {
        return Ok(());
    }
    let children = rb::ivar_get(parent, names().fiber_children);
    if children == NIL {
        return Ok(());
    }
    rb::hash_delete(children, child)
}

/// Whether `fiber` has a living child that `spin` started (to stop before it finishes).
pub fn has_structured_children(fiber: VALUE) -> Result<bool, Error> {
    let children = rb::ivar_get(fiber, names().fiber_children);
    if children == NIL {
        return Ok(false);
    }
    // fiber_alive calls no Ruby code: the pairs stay held by the Hash meanwhile.
    let pairs = rb::hash_pairs(children)?;
    Ok(pairs.iter().any(|(c, s)| *s == TRUE && rb::fiber_alive(*c)))
}

/// The watcher (supervisor) that hears of `fiber`'s children's ends, or nil.
pub fn watcher_of(fiber: VALUE) -> VALUE {
    if fiber == NIL {
        NIL
    } else {
        rb::ivar_get(fiber, names().fiber_watcher)
    }
}

/// The reporter (a group) told of `fiber`'s own end, or nil.
pub fn reporter_of(fiber: VALUE) -> VALUE {
    rb::ivar_get(fiber, names().fiber_reporter)
}

/// Remembers what a spun fiber runs (its body calls it; Fiber#restart runs it again). No
/// arguments are kept as nil, not as an empty Array per fiber.
pub fn remember_body(fiber: VALUE, block: VALUE, args: VALUE) -> Result<(), Error> {
    rb::ivar_set(fiber, names().fiber_block, block)?;
    let is_array = !rb::is_special(args) && rb::type_of(args) == rb_sys::ruby_value_type::RUBY_T_ARRAY;
    // SAFETY: RARRAY_LEN reads the length of `args`, an Array (checked above): no call.
    let args = if is_array && unsafe { rb_sys::RARRAY_LEN(args) } == 0 {
        NIL
    } else {
        args
    };
    rb::ivar_set(fiber, names().fiber_args, args)
}

/// The machine `fiber` waits on: the one that started it, or, for a thread's root fiber, the
/// one its children run on (nil when none is known).
pub fn machine_of_waiter(fiber: VALUE) -> Option<Obj<Machine>> {
    [machine_value_of(fiber), home_of(fiber)]
        .into_iter()
        .find(|m| *m != NIL)
        .and_then(|m| Obj::<Machine>::try_convert(rb::value(m)).ok())
}

/// Delivers `remote` on `target`, the machine its fiber waits on, from the thread of `this`
/// (whose state must not be borrowed): directly when they are the same machine, else through
/// `target`'s thread-safe queue.
pub fn wake(this: &Machine, target: Option<Obj<Machine>>, remote: Remote) {
    match target {
        Some(machine) if !std::ptr::eq(&*machine, this) => machine.wakeup().push(remote),
        _ => this.with(|s| s.deliver(remote)),
    }
}

// ---- Ruby API (module functions of UringMachine) ----

/// UringMachine.parent_of(fiber) → the fiber that started it, or nil.
pub fn rb_parent_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Ok(rb::value(parent_of(fiber)))
}

/// UringMachine.children_of(fiber) → its living children, oldest first.
pub fn rb_children_of(fiber: Value) -> Result<Value, Error> {
    living_children(fiber, false)
}

/// UringMachine.__spun_children_of__(fiber) → the living children to stop when it finishes.
pub fn rb_spun_children_of(fiber: Value) -> Result<Value, Error> {
    living_children(fiber, true)
}

fn living_children(fiber: Value, structured_only: bool) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    let children = rb::ivar_get(fiber, names().fiber_children);
    let pairs = if children == NIL {
        Vec::new()
    } else {
        rb::hash_pairs(children)?
    };
    // The pairs stay held by the Hash (the fiber's ivar, and `fiber` is an argument): growing
    // the Array calls no Ruby code that could change it.
    let list = rb::ary_new_capa(pairs.len())?;
    for (child, structured) in pairs {
        if rb::fiber_alive(child) && (!structured_only || structured == TRUE) {
            rb::ary_push(list, child)?;
        }
    }
    Ok(rb::value(list))
}

/// UringMachine.__adopt__(parent, child, structured) → child: moves `child` under `parent`.
pub fn rb_adopt(parent: Value, child: Value, structured: bool) -> Result<Value, Error> {
    let (parent, child) = (raw(parent), raw(child));
    check_fiber(parent)?;
    check_fiber(child)?;
    if parent == child {
        return Err(rb::arg_error("a fiber cannot be its own child"));
    }
    let mut ancestor = parent;
    while ancestor != NIL {
        if ancestor == child {
            return Err(rb::arg_error("a fiber cannot become a child of its own descendant"));
        }
        ancestor = parent_of(ancestor);
    }
    link(parent, child, structured)?;
    Ok(rb::value(child))
}

/// UringMachine.__watch__(fiber, watcher): `watcher.child_finished(child, error)` is called as
/// each of `fiber`'s children finishes, instead of raising its failure in `fiber`; nil stops.
pub fn rb_watch(fiber: Value, watcher: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    rb::ivar_set(fiber, names().fiber_watcher, raw(watcher))?;
    Ok(watcher)
}

/// UringMachine.__report_to__(fiber, reporter): `reporter.child_finished(fiber, error)` is
/// called as `fiber` finishes, before its parent's watcher; a truthy answer takes the failure
/// (it is not raised in the parent). nil stops.
pub fn rb_report_to(fiber: Value, reporter: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    rb::ivar_set(fiber, names().fiber_reporter, raw(reporter))?;
    Ok(reporter)
}

/// UringMachine.__body_of__(fiber) → [block, args] that `spin` started it with, or nil.
pub fn rb_body_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    let names = names();
    let block = rb::ivar_get(fiber, names.fiber_block);
    if block == NIL {
        return Ok(rb::value(NIL));
    }
    let args = rb::ivar_get(fiber, names.fiber_args);
    // SAFETY: `block` and `args` are held by the fiber's ivars (and `fiber` is an argument);
    // the Array's allocation may raise NoMemoryError, under protect.
    protect(|| unsafe { rb_sys::rb_assoc_new(block, args) }).map(rb::value)
}

/// UringMachine.__set_home__(fiber, machine): records the machine a fiber that no machine
/// started (a thread's root fiber) waits on, so that other threads can wake it.
pub fn rb_set_home(fiber: Value, machine: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Obj::<Machine>::try_convert(machine).map_err(|_| rb::type_error("expected a UringMachine::Machine"))?;
    if machine_value_of(fiber) == NIL {
        set_home(fiber, raw(machine))?;
    }
    Ok(rb::value(fiber))
}
