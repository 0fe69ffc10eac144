//! A thread's machine (UringMachine.machine, which its scheduler uses too) closes its ring and
//! eventfd when the thread ends, not when GC frees it: a Thread object kept in an array, or a
//! stale reference GC finds on a stack, keeps the machine reachable long after (and through
//! its thread variables, whatever else the thread held). Ruby runs the thread-end event hook
//! after the scheduler's close, so the fibers have finished by then. Ruby 3.1 runs it only
//! for a thread that returned normally (not one that raised or was killed): there GC still
//! closes the ring.
use magnus::{rb_sys::protect, typed_data::Obj, TryConvert};
use rb_sys::{ID, VALUE};

use crate::machine::Machine;
use crate::ruby::names::{names, symbol};
use crate::ruby::value::{self as rb, NIL};

/// Thread.current.thread_variable_get(:uring_machine): where UringMachine.machine keeps it.
pub fn thread_machine_value() -> Result<VALUE, magnus::Error> {
    let (get, key) = (names().thread_variable_get, symbol(names().uring_machine));
    // SAFETY: a plain method call with a static Symbol, inside protect.
    protect(|| unsafe { rb_sys::rb_funcall(rb_sys::rb_thread_current(), get, 1, key) })
}

/// The RUBY_EVENT_THREAD_END hook: closes the ending thread's machine and forgets it.
///
/// # Safety
///
/// Only for rb_add_event_hook: Ruby calls it on the ending thread, with the GVL. It reads none
/// of its arguments, and every Ruby call it makes is under protect.
unsafe extern "C" fn on_thread_end(
    _event: rb_sys::rb_event_flag_t,
    _data: VALUE,
    _thread: VALUE,
    _mid: ID,
    _klass: VALUE,
) {
    let Ok(value) = thread_machine_value() else {
        return;
    };
    if value == NIL {
        return;
    }
    if let Ok(machine) = Obj::<Machine>::try_convert(rb::value(value)) {
        machine.shut_down();
    }
    let (set, key) = (names().thread_variable_set, symbol(names().uring_machine));
    // The thread's variables may outlive it (a kept Thread object): drop the closed machine.
    // SAFETY: a plain method call with a static Symbol and nil, inside protect.
    let _ = protect(|| unsafe { rb_sys::rb_funcall(rb_sys::rb_thread_current(), set, 2, key, NIL) });
}

/// Called once at load. A hook on this event slows nothing else: it is no ISEQ or C-call
/// event, so Ruby neither rewrites instructions nor invalidates JIT code for it. Listed in
/// UringMachine.patches (lib/uring_machine/core_ext/thread.rb).
pub fn install() -> Result<(), magnus::Error> {
    // SAFETY: registers a plain extern "C" function that lives as long as the process; the
    // hook's list entry is allocated (NoMemoryError possible), under protect.
    protect(|| unsafe {
        rb_sys::rb_add_event_hook(Some(on_thread_end), rb_sys::RUBY_EVENT_THREAD_END, NIL);
        NIL
    })
    .map(|_| ())
}
