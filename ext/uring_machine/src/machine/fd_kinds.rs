//! What the direct attempts have learned about each descriptor.
//! - Sockets: recv/send with MSG_DONTWAIT skip the iovec import of preadv2/pwritev2 (about 90 ns
//!   per call). A stale entry is harmless: recv on a non-socket fails with ENOTSOCK and the fd
//!   is re-learned, and preadv2 works on a socket, only more slowly.
//! - Page-cache files: regular files whose filesystem refuses RWF_NOWAIT writes (see
//!   ops/direct_io.rs). Each use first checks that the fd is still seekable (lseek): if it was
//!   closed and reused for a pipe, socket or tty, whose writes can wait for a reader, that
//!   fails with ESPIPE and the fd is re-learned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    Unknown,
    Socket,
    NotSocket,
    PageCacheFile,
}

#[derive(Default)]
pub struct FdKinds {
    kinds: Vec<FdKind>,
}

/// Descriptors beyond this are not remembered (always Unknown, so recv is tried first).
const MAX_TRACKED: usize = 1 << 20;

impl FdKinds {
    pub fn get(&self, fd: i32) -> FdKind {
        self.kinds.get(fd as usize).copied().unwrap_or(FdKind::Unknown)
    }

    pub fn set(&mut self, fd: i32, kind: FdKind) {
        let i = fd as usize;
        if i >= MAX_TRACKED {
            return;
        }
        if i >= self.kinds.len() {
            self.kinds.resize(i + 1, FdKind::Unknown);
        }
        self.kinds[i] = kind;
    }
}
