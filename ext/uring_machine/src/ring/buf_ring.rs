//! Kernel-provided buffers for multishot reads (IORING_REGISTER_PBUF_RING): a ring of
//! fixed-size buffers the kernel picks one from per CQE; read_each (ops/multishot.rs) hands each
//! one back once its bytes are copied out. Held in the machine's State, hence in this layer.
use std::sync::atomic::{AtomicU16, Ordering};

pub const BUFFER_GROUP: u16 = 0;
const BUFFER_COUNT: u16 = 64;
pub const BUFFER_SIZE: usize = 16 * 1024;

/// Kernel-provided buffers (IORING_REGISTER_PBUF_RING): the kernel picks one per read.
pub struct BufferRing {
    ring: *mut libc::c_void,
    ring_bytes: usize,
    memory: Vec<u8>,
    tail: u16,
}

impl BufferRing {
    pub fn new(submitter: &io_uring::Submitter<'_>) -> std::io::Result<BufferRing> {
        let ring_bytes = BUFFER_COUNT as usize * 16;
        // SAFETY: an anonymous private mapping, no address hint, no fd: it creates memory and
        // touches nothing else.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut buffers = BufferRing {
            ring,
            ring_bytes,
            memory: vec![0; BUFFER_COUNT as usize * BUFFER_SIZE],
            tail: 0,
        };
        // SAFETY: `ring` is a page-aligned mapping of BUFFER_COUNT entries (16 bytes each) that
        // lives until this BufferRing drops, with the machine's State: after the machine has
        // cancelled and drained its ops (or its thread's exit made the kernel cancel them), and
        // after the ring itself (an earlier field of State) is closed.
        unsafe { submitter.register_buf_ring_with_flags(ring as u64, BUFFER_COUNT, BUFFER_GROUP, 0)? };
        (0..BUFFER_COUNT).for_each(|bid| buffers.recycle(bid));
        Ok(buffers)
    }

    pub fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * BUFFER_SIZE;
        &self.memory[start..start + len.min(BUFFER_SIZE)]
    }

    /// Hands buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        let slot = (self.tail & (BUFFER_COUNT - 1)) as usize;
        // SAFETY: slot < BUFFER_COUNT, so the entry lies inside the mapping.
        let entry = unsafe { (self.ring as *mut u8).add(slot * 16) };
        let addr = self.memory.as_ptr() as u64 + bid as u64 * BUFFER_SIZE as u64;
        // SAFETY: writes one io_uring_buf (addr u64, len u32, bid u16) inside the mapping, at
        // aligned offsets; the kernel reads entries only up to the tail published below.
        unsafe {
            std::ptr::write(entry as *mut u64, addr);
            std::ptr::write(entry.add(8) as *mut u32, BUFFER_SIZE as u32);
            std::ptr::write(entry.add(12) as *mut u16, bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // The tail shares entry 0's reserved field; the kernel reads it with acquire semantics.
        // SAFETY: bytes 14..16 of the mapping (entry 0's reserved field) are the ring's tail, a
        // 2-aligned u16 the kernel reads concurrently: accessed only as an AtomicU16.
        let tail = unsafe { &*((self.ring as *mut u8).add(14) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

// SAFETY: the mapping is owned by the machine and touched only by its thread; Send is needed
// only because the machine is a Ruby object magnus requires to be Send.
unsafe impl Send for BufferRing {}

impl Drop for BufferRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once, when no op reads it any more (see
        // the registration in `new`).
        unsafe { libc::munmap(self.ring, self.ring_bytes) };
    }
}
