//! What the direct attempts have learned about each descriptor.
//! - Sockets: recv/send with MSG_DONTWAIT skip the iovec import of preadv2/pwritev2 (about 90 ns
//!   per call). A stale entry is harmless: recv on a non-socket fails with ENOTSOCK and the fd
//!   is re-learned, and preadv2 works on a socket, only more slowly.
//! - Page-cache files: regular files whose filesystem refuses RWF_NOWAIT writes (see
//!   ops/direct_io.rs). Each use first checks that the fd is still seekable (lseek): if it was
//!   closed and reused for a pipe, socket or tty, whose writes can wait for a reader, that
//!   fails with ESPIPE and the fd is re-learned.
//! - Reads that wait: when a read of an fd last had to wait in the ring (its direct attempt
//!   found nothing), the next read goes to the ring at once. A request/response peer's next
//!   message is never there yet right after we answered, so the direct attempt (and the fast
//!   path's, and the hook's after it) would be a wasted syscall per message. A read that fills
//!   its whole buffer means data is streaming, and direct attempts resume. Only speed depends
//!   on it: a READ in the ring returns what a direct read would.
//!
//! A close seen by this thread's machines (IO#close, Machine#close) forgets the fd; what stays
//! stale after other closes costs speed only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    Unknown,
    Socket,
    NotSocket,
    PageCacheFile,
}

#[derive(Clone, Copy)]
struct Entry {
    kind: FdKind,
    reads_wait: bool,
}

const UNKNOWN: Entry = Entry {
    kind: FdKind::Unknown,
    reads_wait: false,
};

#[derive(Default)]
pub struct FdKinds {
    entries: Vec<Entry>,
}

/// Descriptors beyond this are not remembered (always Unknown, so recv is tried first).
const MAX_TRACKED: usize = 1 << 20;

impl FdKinds {
    pub fn get(&self, fd: i32) -> FdKind {
        self.entries.get(fd as usize).map_or(FdKind::Unknown, |e| e.kind)
    }

    pub fn set(&mut self, fd: i32, kind: FdKind) {
        if let Some(e) = self.entry(fd) {
            e.kind = kind;
        }
    }

    /// Whether the last read of `fd` had to wait in the ring (see the module's comment).
    pub fn reads_wait(&self, fd: i32) -> bool {
        self.entries.get(fd as usize).is_some_and(|e| e.reads_wait)
    }

    pub fn set_reads_wait(&mut self, fd: i32, waits: bool) {
        if self.reads_wait(fd) != waits {
            if let Some(e) = self.entry(fd) {
                e.reads_wait = waits;
            }
        }
    }

    /// Forgets `fd` (closed: its number may name another file next).
    pub fn forget(&mut self, fd: i32) {
        if let Some(e) = self.entries.get_mut(fd as usize) {
            *e = UNKNOWN;
        }
    }

    fn entry(&mut self, fd: i32) -> Option<&mut Entry> {
        let i = fd as usize;
        if i >= MAX_TRACKED {
            return None;
        }
        if i >= self.entries.len() {
            self.entries.resize(i + 1, UNKNOWN);
        }
        Some(&mut self.entries[i])
    }
}
