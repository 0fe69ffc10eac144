//! The scheduler layer: UringMachine::Scheduler, the Fiber::Scheduler hooks by family (fibers,
//! blocking and processes; I/O; splice for IO.copy_stream; close; registered buffers;
//! coalesced multi-piece writes; the IO fast path; the count an interrupted IO#write carries), each a
//! thin translation of Ruby's hook arguments onto the thread's Machine. The top layer: uses
//! ops/, machine/, ring/ and ruby/, and nothing uses it but lib.rs.
pub mod close;
pub mod coalesce;
pub mod fast_fill;
pub mod fast_io;
pub mod fast_lines;
pub mod fast_nonblock;
pub mod fast_socket;
pub mod fast_wait;
pub mod hooks;
pub mod io;
pub mod registered_buffers;
pub mod splice;
pub mod write_count;

pub use hooks::Scheduler;
