//! Thread#fiber_lock: while a fiber holds it, the machine runs no other fiber. Their
//! completions and wake-ups stay queued, in order, until it is released.
use magnus::{Error, Value};

use crate::machine::Machine;
use crate::ruby::value::{self as rb, fiber_current, raw, NIL};

impl Machine {
    /// __lock_fibers__(fiber) → the previous holder: `fiber` (the current one) becomes the
    /// only fiber this machine runs; nil releases. Ruby's fiber_lock restores the previous
    /// holder when its block ends, so locks nest.
    pub fn rb_lock_fibers(&self, fiber: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fiber = raw(fiber);
        if fiber != NIL && fiber != fiber_current() {
            return Err(rb::arg_error("only the current fiber can take the fiber lock"));
        }
        Ok(rb::value(self.with(|s| std::mem::replace(&mut s.locked_to, fiber))))
    }
}
