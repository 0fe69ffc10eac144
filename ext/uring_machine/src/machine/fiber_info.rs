//! What a fiber is called, when it started, whether it fails alone (`spin(isolated: true)`),
//! and who waits for it: the facts Fiber#inspect, UringMachine.print_tree and the routing of
//! an isolated fiber's failure read. Kept in hidden ivars, like the rest of the tree.
use magnus::{typed_data::Obj, Error, TryConvert, Value};
use rb_sys::VALUE;

use crate::machine::fibers::{self, check_fiber};
use crate::machine::run_loop::Machine;
use crate::machine::tree;
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, raw, NIL, TRUE};

/// CLOCK_MONOTONIC in nanoseconds, the clock of Ruby's
/// `Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)`.
fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a local the call fills; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Records that `fiber` starts now (its age in print_tree).
pub fn mark_born(fiber: VALUE) -> Result<(), Error> {
    rb::ivar_set(fiber, names().fiber_born, rb::integer(monotonic_ns())?)
}

/// Whether `spin(isolated: true)` started `fiber`.
pub fn is_isolated(fiber: VALUE) -> bool {
    rb::ivar_get(fiber, names().fiber_isolated) == TRUE
}

// ---- Ruby API (module functions of UringMachine) ----

/// UringMachine.__name_of__(fiber) → the name given to it, or nil.
pub fn rb_name_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Ok(rb::value(rb::ivar_get(fiber, names().fiber_name)))
}

/// UringMachine.__set_name__(fiber, name) → name (a frozen String or nil, checked by the caller).
pub fn rb_set_name(fiber: Value, name: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    rb::ivar_set(fiber, names().fiber_name, raw(name))?;
    // A fiber that runs already is listed for gdb now; one not started yet as it starts.
    if rb::ivar_get(fiber, names().fiber_born) != NIL && rb::fiber_alive(fiber) {
        if let Ok(machine) = Obj::<Machine>::try_convert(rb::value(fibers::machine_value_of(fiber))) {
            if machine.on_owner_thread() {
                list_name(&machine, fiber);
            }
        }
    }
    Ok(name)
}

/// Lists `fiber`'s name, if it has one, in `machine`'s record for gdb (or takes it off).
pub fn list_name(machine: &Machine, fiber: VALUE) {
    let name = rb::ivar_get(fiber, names().fiber_name);
    // SAFETY: the bytes are copied at once, while `name` is held by the fiber's ivar and
    // nothing else runs.
    let bytes = magnus::RString::from_value(rb::value(name)).map(|s| Box::<[u8]>::from(unsafe { s.as_slice() }));
    machine.with(|s| match bytes {
        Some(bytes) => s.debug.set_name(fiber, bytes),
        None if s.debug.has_names() => s.debug.forget_name(fiber),
        None => {}
    });
}

/// UringMachine.__set_body__(fiber, block, args) → fiber: what spin starts it with, known
/// before it first runs (Fiber#inspect, print_tree and Fiber#restart read it).
pub fn rb_set_body(fiber: Value, block: Value, args: Value) -> Result<Value, Error> {
    let f = raw(fiber);
    check_fiber(f)?;
    tree::remember_body(f, raw(block), raw(args))?;
    Ok(fiber)
}

/// UringMachine.__born__(fiber) → when it started (CLOCK_MONOTONIC ns), or nil.
pub fn rb_born(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Ok(rb::value(rb::ivar_get(fiber, names().fiber_born)))
}

/// UringMachine.__isolate__(fiber) → fiber: its failure is reported, not raised in its parent.
pub fn rb_isolate(fiber: Value) -> Result<Value, Error> {
    let f = raw(fiber);
    check_fiber(f)?;
    rb::ivar_set(f, names().fiber_isolated, TRUE)?;
    Ok(fiber)
}

/// UringMachine.__isolated__(fiber) → whether spin(isolated: true) started it.
pub fn rb_isolated(fiber: Value) -> Result<bool, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Ok(is_isolated(fiber))
}

/// UringMachine.__watcher_of__(fiber) → the supervisor watching its children, or nil.
pub fn rb_watcher_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    Ok(rb::value(tree::watcher_of(fiber)))
}

/// UringMachine.__joiners_of__(fiber) → the fibers waiting in its join.
pub fn rb_joiners_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    let joiners = rb::ivar_get(fiber, names().fiber_joiners);
    let pairs = if joiners == NIL {
        Vec::new()
    } else {
        rb::hash_pairs(joiners)?
    };
    // The pairs stay held by the Hash (the fiber's ivar) while the Array grows.
    let list = rb::ary_new_capa(pairs.len())?;
    for (joiner, _) in pairs {
        rb::ary_push(list, joiner)?;
    }
    Ok(rb::value(list))
}
