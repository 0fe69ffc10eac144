//! The machine layer: UringMachine::Machine, one per thread, with its run queue and the loop
//! that switches fibers and reaps completions, the fiber API (schedule, join, ...), timers,
//! what it has learned about each descriptor, and the bytes each fiber's IO#write has written.
//! Uses ring/ and ruby/; knows no particular op.
pub mod deadlock;
pub mod debug_record;
pub mod fd_kinds;
pub mod fiber_info;
pub mod fiber_lock;
pub mod fiber_thread;
pub mod fibers;
pub mod mailbox;
pub mod op_group;
pub mod run_loop;
pub mod signals;
pub mod spin_requests;
pub mod thread_end;
pub mod throw_through;
pub mod timers;
pub mod tree;
pub mod waits;
pub mod watchdog;
pub mod write_counts;

pub use run_loop::{
    deferrable, error_value, exception_error, init_globals, non_local_jump_error, terminated, Machine, Wait,
};
