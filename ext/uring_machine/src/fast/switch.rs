//! The fast layer's on/off switches that Ruby sets (UringMachine.fast_io = bool,
//! UringMachine.coalesce_writes = bool): process-wide, read on every call, on by default.
use std::sync::atomic::{AtomicBool, Ordering};

use magnus::Value;

pub struct Switch(AtomicBool);

impl Switch {
    pub const fn on() -> Switch {
        Switch(AtomicBool::new(true))
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The Ruby setter: on when `flag` is truthy; answers `flag`.
    pub fn set(&self, flag: Value) -> Value {
        self.0.store(magnus::value::ReprValue::to_bool(flag), Ordering::Relaxed);
        flag
    }
}
