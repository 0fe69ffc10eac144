//! UringMachine::PartialWrite: a method that promises to write everything either does, or
//! raises; when the exception (an interrupt, an Errno) leaves it after some bytes went out,
//! the exception object itself (never a copy: a timeout must still recognise its own) is
//! extended with this module, whose `bytes_written` says how many.
use std::sync::OnceLock;

use magnus::{function, method, prelude::*, rb_sys::protect, Error, RModule, Value};
use rb_sys::VALUE;

use crate::ruby::names::names;
use crate::ruby::value::{self as rb, raw, NIL};

/// The module, kept (and pinned against GC.compact) from `define` on.
static MODULE: OnceLock<VALUE> = OnceLock::new();

/// Defines UringMachine::PartialWrite, with `#bytes_written` and `.__add__(exception, count)`.
pub fn define(module: RModule) -> Result<(), Error> {
    let partial = module.define_module("PartialWrite")?;
    partial.define_method("bytes_written", method!(rb_bytes_written, 0))?;
    partial.define_singleton_method("__add__", function!(rb_add, 2))?;
    let value = raw(partial);
    // SAFETY: a module is a live heap object; registering it keeps it from moving or dying.
    // Registering allocates (NoMemoryError possible): under protect.
    protect(|| unsafe {
        rb_sys::rb_gc_register_mark_object(value);
        NIL
    })?;
    let _ = MODULE.set(value);
    Ok(())
}

/// PartialWrite#bytes_written → the bytes the write that raised this had written.
fn rb_bytes_written(rb_self: Value) -> Value {
    rb::value(rb::ivar_get(raw(rb_self), names().at_bytes_written))
}

/// UringMachine::PartialWrite.__add__(exception, count) → exception, which now says `count`
/// more bytes were written (for a Ruby caller that wrote some itself before a method raised).
fn rb_add(exception: Value, count: Value) -> Result<Value, Error> {
    let count = rb::int_arg(raw(count), "count", 0, i64::MAX)? as usize;
    let exception = raw(exception);
    if !rb::is_exception(exception) {
        return Err(rb::type_error("expected an exception"));
    }
    let total = count + bytes_written(exception);
    set(exception, total);
    Ok(rb::value(exception))
}

/// What a PartialWrite exception says was written (0 for any other).
fn bytes_written(exception: VALUE) -> usize {
    if !is_partial(exception) {
        return 0;
    }
    let n = rb::ivar_get(exception, names().at_bytes_written);
    if rb::is_fixnum(n) {
        rb::fixnum_value(n).max(0) as usize
    } else {
        0
    }
}

fn is_partial(exception: VALUE) -> bool {
    MODULE.get().is_some_and(|m| rb::is_kind_of(exception, *m))
}

/// Records `count` on `exception`, extending it on the first partial write. A frozen
/// exception cannot be changed: it is raised as it is. One that carries an older write's
/// count gets this write's (0 included), so the count never describes another call.
fn set(exception: VALUE, count: usize) {
    let Some(&module) = MODULE.get() else {
        return;
    };
    let already = is_partial(exception);
    if (count == 0 && !already) || rb::is_frozen(exception) {
        return;
    }
    let id = names().at_bytes_written;
    // Extending allocates a singleton class: it may raise (NoMemoryError). Then the exception
    // goes on as it is, which matters more than the count.
    // SAFETY: `exception` is a live, unfrozen exception object and `module` a module; protect
    // catches whatever these raise.
    let _ = protect(|| unsafe {
        if !already {
            rb_sys::rb_extend_object(exception, module);
        }
        rb_sys::rb_ivar_set(exception, id, rb::int(count as i64));
        NIL
    });
}

/// Gives `to` the count of bytes written that `from` carries, if any: for an exception raised
/// outside a block in place of the one that ended a write inside it (Timeout's
/// ExitException becoming Timeout::Error).
pub fn carry(from: VALUE, to: VALUE) {
    if is_partial(from) {
        set(to, bytes_written(from));
    }
}

/// `e`, the exception that ended a write after `written` bytes went out, carrying that
/// count; for the throw of a timeout that no rescue may catch (machine/throw_through.rs), the
/// exception it takes to its catch. Any other non-exception (a user's throw, Fiber#kill, an
/// error not yet raised): as it is.
pub fn mark(e: Error, written: usize) -> Error {
    let exception = match e.value() {
        Some(v) => Some(raw(v)).filter(|v| rb::is_exception(*v)),
        None => crate::machine::throw_through::in_flight(),
    };
    if let Some(exception) = exception {
        set(exception, written);
    }
    e
}
