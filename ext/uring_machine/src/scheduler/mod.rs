//! The scheduler layer: UringMachine::Scheduler, the Fiber::Scheduler hooks by family (fibers,
//! blocking and processes; I/O; splice for IO.copy_stream; close; registered buffers), each a
//! thin translation of Ruby's hook arguments onto the thread's Machine. Uses ops/, machine/,
//! ring/ and ruby/; used by lib.rs and by fast/ (the IO methods that bypass the hooks).
pub mod close;
pub mod hooks;
pub mod io;
pub mod registered_buffers;
pub mod splice;

pub use hooks::Scheduler;
