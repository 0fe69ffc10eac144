//! The ops layer: the operations, one file per family, each as `impl Machine` methods (most
//! bound as Machine's Ruby methods): byte I/O and the direct attempts before the ring, sockets,
//! files by path, splice, child processes, multishot streams, close, registered buffers. Uses
//! machine/, ring/ and ruby/.
pub mod close;
pub mod direct_io;
pub mod dns;
pub mod fs;
pub mod io;
pub mod multishot;
pub mod net;
pub mod process;
pub mod process_handle;
pub mod registered_buffers;
pub mod splice;
