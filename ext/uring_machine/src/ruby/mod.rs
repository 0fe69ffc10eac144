//! The Ruby layer: conversions between Ruby objects and what the other layers work with (raw
//! VALUEs and protected CRuby calls, method arguments, file descriptors, IO streams, byte
//! buffers). A leaf: it uses no other layer, and every layer may use it.
pub mod args;
pub mod buffer;
pub mod duration;
pub mod fd;
pub mod io_stream;
pub mod names;
pub mod partial_write;
pub mod value;
