//! Timeouts whose exception no `rescue` inside the block may catch: CRuby's own Timeout makes
//! sure of that ([Bug #8730]) by throwing to a catch around the block instead of raising. Such
//! an exception is marked (a hidden ivar); where the machine would raise it in a fiber it
//! throws it to itself instead, which a `catch` around the block (`catch_block`) turns back
//! into the exception, raised outside the block. Ensure blocks run on the way, as for a throw.
use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::ruby::names::names;
use crate::ruby::value::{self as rb, NIL, TRUE};

/// Marks `exception` as one that leaves its block as a throw.
pub fn mark(exception: VALUE) -> Result<(), Error> {
    rb::ivar_set(exception, names().throw_through, TRUE)
}

fn is_marked(exception: VALUE) -> bool {
    rb::ivar_get(exception, names().throw_through) == TRUE
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
        Err(jump) if jump.value().is_none() => Some(jump),
        _ => None,
    }
}

struct Block {
    argument: VALUE,
    returned: Option<VALUE>,
}

/// Yields `argument` to the current method's block inside a catch for `exception`: Ok(value)
/// when the block returned, Err(the exception, raised here) when it was thrown to.
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
    protect(|| unsafe { rb_sys::rb_catch_obj(exception, Some(body), data) })?;
    match block.returned {
        Some(value) => Ok(value),
        None => {
            let _ = rb::ivar_set(exception, names().throw_through, NIL);
            Err(crate::machine::exception_error(exception))
        }
    }
}
