//! The fiber tree: every fiber that `spin` or `Fiber.schedule` starts has a parent (the fiber
//! that started it) and its parent lists it among its children until it finishes. Children
//! that `spin` started are stopped when their parent finishes (structured concurrency);
//! those that `Fiber.schedule` started run to their end, as any Fiber::Scheduler user
//! expects. A parent may have a watcher (a supervisor) that hears of each child's end instead
//! of having its failures raised in it.
use std::sync::OnceLock;

use magnus::{prelude::*, typed_data::Obj, Error, Value};
use rb_sys::{ID, VALUE};

use crate::machine::fibers::{check_fiber, home_of, machine_value_of, set_home};
use crate::machine::Machine;
use crate::ring::wakeup::Remote;
use crate::ruby::value::{self as rb, raw, FALSE, NIL, TRUE};

struct Ids {
    parent: ID,
    children: ID,
    watcher: ID,
    block: ID,
    args: ID,
}

/// Hidden (non-@) ivars: invisible to Ruby, gone with the fiber.
fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| Ids {
        parent: rb::intern("__uring_machine_parent__"),
        children: rb::intern("__uring_machine_children__"),
        watcher: rb::intern("__uring_machine_watcher__"),
        block: rb::intern("__uring_machine_block__"),
        args: rb::intern("__uring_machine_args__"),
    })
}

pub fn parent_of(fiber: VALUE) -> VALUE {
    rb::ivar_get(fiber, ids().parent)
}

/// Makes `child` a child of `parent`; `structured`: stopped when `parent` finishes.
pub fn link(parent: VALUE, child: VALUE, structured: bool) {
    unlink(child);
    let ids = ids();
    rb::ivar_set(child, ids.parent, parent);
    if parent == NIL {
        return;
    }
    let mut children = rb::ivar_get(parent, ids.children);
    if children == NIL {
        children = unsafe { rb_sys::rb_hash_new() };
        rb::ivar_set(parent, ids.children, children);
    }
    unsafe { rb_sys::rb_hash_aset(children, child, if structured { TRUE } else { FALSE }) };
}

/// Takes `child` off its parent's list of children (it has finished, or moves elsewhere).
pub fn unlink(child: VALUE) {
    let parent = parent_of(child);
    if parent == NIL {
        return;
    }
    let children = rb::ivar_get(parent, ids().children);
    if children != NIL {
        unsafe { rb_sys::rb_hash_delete(children, child) };
    }
}

/// Whether `fiber` has a living child that `spin` started (to stop before it finishes).
pub fn has_structured_children(fiber: VALUE) -> bool {
    let children = rb::ivar_get(fiber, ids().children);
    children != NIL
        && hash_pairs(children)
            .iter()
            .any(|(c, s)| *s == TRUE && rb::fiber_alive(*c))
}

fn hash_pairs(hash: VALUE) -> Vec<(VALUE, VALUE)> {
    let keys = unsafe { rb_sys::rb_funcall(hash, rb::intern("to_a"), 0) };
    let len = unsafe { rb_sys::RARRAY_LEN(keys) };
    (0..len)
        .map(|i| unsafe {
            let pair = rb_sys::rb_ary_entry(keys, i);
            (rb_sys::rb_ary_entry(pair, 0), rb_sys::rb_ary_entry(pair, 1))
        })
        .collect()
}

/// The watcher (supervisor) that hears of `fiber`'s children's ends, or nil.
pub fn watcher_of(fiber: VALUE) -> VALUE {
    if fiber == NIL {
        NIL
    } else {
        rb::ivar_get(fiber, ids().watcher)
    }
}

/// Remembers what a spun fiber runs, for Fiber#restart.
pub fn remember_body(fiber: VALUE, block: VALUE, args: VALUE) {
    rb::ivar_set(fiber, ids().block, block);
    rb::ivar_set(fiber, ids().args, args);
}

/// The machine `fiber` waits on: the one that started it, or, for a thread's root fiber, the
/// one its children run on (nil when none is known).
pub fn machine_of_waiter(fiber: VALUE) -> Option<Obj<Machine>> {
    [machine_value_of(fiber), home_of(fiber)]
        .into_iter()
        .find(|m| *m != NIL)
        .and_then(|m| Obj::<Machine>::try_convert(rb::value(m)).ok())
}

/// Wakes `fiber` on `target`, the machine it waits on, from the thread of `this` (whose state
/// must not be borrowed): directly when they are the same machine, else through `target`'s
/// thread-safe queue. `Machine#schedule` semantics.
pub fn wake(this: &Machine, target: Option<Obj<Machine>>, fiber: VALUE, value: VALUE, is_exception: bool) {
    match target {
        Some(machine) if !std::ptr::eq(&*machine, this) => machine.wakeup().push(Remote {
            fiber,
            value,
            is_exception,
        }),
        _ => this.with(|s| s.schedule(fiber, value, is_exception)),
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
    let list = unsafe { rb_sys::rb_ary_new() };
    let children = rb::ivar_get(fiber, ids().children);
    if children != NIL {
        for (child, structured) in hash_pairs(children) {
            if rb::fiber_alive(child) && (!structured_only || structured == TRUE) {
                unsafe { rb_sys::rb_ary_push(list, child) };
            }
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
    link(parent, child, structured);
    Ok(rb::value(child))
}

/// UringMachine.__watch__(fiber, watcher): `watcher.child_finished(child, error)` is called as
/// each of `fiber`'s children finishes, instead of raising its failure in `fiber`; nil stops.
pub fn rb_watch(fiber: Value, watcher: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    rb::ivar_set(fiber, ids().watcher, raw(watcher));
    Ok(watcher)
}

/// UringMachine.__body_of__(fiber) → [block, args] that `spin` started it with, or nil.
pub fn rb_body_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    let ids = ids();
    let block = rb::ivar_get(fiber, ids.block);
    if block == NIL {
        return Ok(rb::value(NIL));
    }
    let pair = unsafe { rb_sys::rb_assoc_new(block, rb::ivar_get(fiber, ids.args)) };
    Ok(rb::value(pair))
}

/// UringMachine.__set_home__(fiber, machine): records the machine a fiber that no machine
/// started (a thread's root fiber) waits on, so that other threads can wake it.
pub fn rb_set_home(fiber: Value, machine: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Obj::<Machine>::try_convert(machine).map_err(|_| rb::type_error("expected a UringMachine::Machine"))?;
    if machine_value_of(fiber) == NIL {
        set_home(fiber, raw(machine));
    }
    Ok(rb::value(fiber))
}
