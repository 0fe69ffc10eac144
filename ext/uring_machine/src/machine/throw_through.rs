//! Timeouts whose exception no `rescue` inside the block may catch: CRuby's own Timeout makes
//! sure of that ([Bug #8730]) by throwing to a catch around the block instead of raising. Such
//! an exception is marked (listed for its thread while its block runs); where the machine
//! would raise it in a fiber it throws it to itself instead, which a `catch` around the block
//! (`catch_block`) turns back into the exception, raised outside the block. Ensure blocks run
//! on the way, as for a throw.
use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::ruby::value::NIL;

thread_local! {
    /// The marked exceptions of this thread's blocks that run now (nested timeouts: a stack).
    static MARKED: std::cell::RefCell<Vec<VALUE>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The marked exception being thrown on this thread, from `throw` until its catch: what a
    /// write the throw interrupts records its count on (ruby/partial_write.rs).
    static IN_FLIGHT: std::cell::Cell<VALUE> = const { std::cell::Cell::new(NIL) };
}

/// The exception a throw now unwinding this thread is taking to its catch, if any.
pub fn in_flight() -> Option<VALUE> {
    Some(IN_FLIGHT.with(|f| f.get())).filter(|v| *v != NIL)
}

/// Marks `exception` as one that leaves its block as a throw, until `catch_block` for it ends.
pub fn mark(exception: VALUE) {
    MARKED.with(|m| m.borrow_mut().push(exception));
}

fn unmark(exception: VALUE) {
    MARKED.with(|m| {
        let mut marked = m.borrow_mut();
        if let Some(at) = marked.iter().rposition(|v| *v == exception) {
            marked.remove(at);
        }
    });
}

fn is_marked(exception: VALUE) -> bool {
    MARKED.with(|m| m.borrow().contains(&exception))
}

/// For a marked exception, the throw to its catch, as an error to return to Ruby (which
/// resumes the throw); None for any other exception, or when no catch for it is on this
/// fiber's stack (a fiber the block's fiber resumed): it is then raised as usual.
pub fn throw(exception: VALUE) -> Option<Error> {
    if !is_marked(exception) {
        return None;
    }
    // SAFETY: `exception` is live (the caller holds it); with a catch for it on this stack,
    // rb_throw_obj jumps to protect's tag (an Error::Jump that resumes the throw once returned
    // to Ruby); without one it raises UncaughtThrowError, which protect catches and we drop.
    match protect(|| -> VALUE { unsafe { rb_sys::rb_throw_obj(exception, exception) } }) {
        Err(jump) if jump.value().is_none() => {
            IN_FLIGHT.with(|f| f.set(exception));
            Some(jump)
        }
        _ => None,
    }
}

struct Block {
    argument: VALUE,
    returned: Option<VALUE>,
}

/// Yields `argument` to the current method's block inside a catch for `exception` (marked):
/// Ok(value) when the block returned, Err(the exception, raised here) when it was thrown to.
/// The mark ends with it.
pub fn catch_block(exception: VALUE, argument: VALUE) -> Result<VALUE, Error> {
    unsafe extern "C" fn body(_tag: VALUE, data: VALUE, _argc: i32, _argv: *const VALUE, _blockarg: VALUE) -> VALUE {
        // SAFETY: `data` is the address of the `Block` on catch_block's stack, which outlives
        // this call; rb_yield runs the block of the method that called catch_block (a C
        // function called by rb_catch_obj gets no frame of its own).
        let block = unsafe { &mut *(data as *mut Block) };
        // SAFETY: a raise or throw out of the block leaves through rb_catch_obj to protect.
        let value = unsafe { rb_sys::rb_yield(block.argument) };
        block.returned = Some(value);
        value
    }
    let mut block = Block {
        argument,
        returned: None,
    };
    let data = &mut block as *mut Block as VALUE;
    // SAFETY: `exception` is live (the caller's); a raise or another throw out of the block
    // passes rb_catch_obj and is caught by protect.
    let caught = protect(|| unsafe { rb_sys::rb_catch_obj(exception, Some(body), data) });
    if IN_FLIGHT.with(|f| f.get()) == exception {
        IN_FLIGHT.with(|f| f.set(NIL));
    }
    unmark(exception);
    caught?;
    match block.returned {
        Some(value) => Ok(value),
        None => Err(crate::machine::exception_error(exception)),
    }
}
