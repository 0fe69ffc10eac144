//! The registered-buffer hooks of the scheduler: Machine's register_buffers and
//! unregister_buffers (ops/registered_buffers.rs), offered on the Scheduler too.
use magnus::{Error, RArray, Value};

use crate::scheduler::Scheduler;

/// Scheduler#register_buffers / #unregister_buffers: the same on the scheduler's machine.
impl Scheduler {
    pub fn rb_register_buffers(&self, buffers: RArray) -> Result<Value, Error> {
        self.bound_machine()?.rb_register_buffers(buffers)
    }

    pub fn rb_unregister_buffers(&self, args: &[Value]) -> Result<Value, Error> {
        self.bound_machine()?.rb_unregister_buffers(args)
    }
}
