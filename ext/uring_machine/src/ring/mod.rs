//! The ring layer: the io_uring instance (setup, SQ pushes, CQ draining, raw enters), the table
//! of in-flight ops, the buffers the kernel holds (provided buffer ring, registered-buffer
//! table), opcode names, cross-thread wakeups and the counters. It knows nothing of fibers or of
//! particular operations; it uses only ruby/.
pub mod buf_ring;
pub mod buffer_registry;
pub mod metrics;
pub mod op;
pub mod opcodes;
pub mod private_fds;
pub mod readiness;
pub mod uring;
pub mod wakeup;

pub use uring::{buffer_id, has_more, Completion, EnterArgs, Ring};
