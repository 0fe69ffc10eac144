//! The ring's table of registered buffers: which IO::Buffer sits in which slot of the kernel's
//! (sparse) buffer table, and how many ops use each; marked with the machine. The registration
//! calls and READ_FIXED / WRITE_FIXED are ops (ops/registered_buffers.rs).
use rb_sys::VALUE;

use crate::ruby::value as rb;

/// Slots in the kernel's (sparse) buffer table, allocated at the first registration.
pub const TABLE_SLOTS: u32 = 1024;

pub struct Entry {
    pub buffer: VALUE,
    pub base: usize,
    pub size: usize,
    /// Ops using it right now (each op waits for its CQE, so this is exact).
    pub in_use: u32,
}

#[derive(Default)]
pub struct Registry {
    pub table_ready: bool,
    pub slots: Vec<Option<Entry>>,
    pub count: usize,
}

impl Registry {
    /// The slot of the registered buffer that holds all of [ptr, ptr + len).
    pub fn find(&self, ptr: *const u8, len: usize) -> Option<u16> {
        if self.count == 0 {
            return None;
        }
        let (start, end) = (ptr as usize, ptr as usize + len);
        self.slots
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| start >= e.base && end <= e.base + e.size))
            .map(|i| i as u16)
    }

    pub fn slot_of(&self, buffer: VALUE) -> Option<usize> {
        self.slots
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.buffer == buffer))
    }

    pub fn free_slot(&self) -> Option<usize> {
        match self.slots.iter().position(Option::is_none) {
            Some(i) => Some(i),
            None if self.slots.len() < TABLE_SLOTS as usize => Some(self.slots.len()),
            None => None,
        }
    }

    /// One more (or one fewer) op using the buffer in `slot`.
    pub fn count_use(&mut self, slot: u16, starts: bool) {
        if let Some(Some(e)) = self.slots.get_mut(usize::from(slot)) {
            e.in_use = if starts {
                e.in_use + 1
            } else {
                e.in_use.saturating_sub(1)
            };
        }
    }

    pub fn mark(&self) {
        self.slots.iter().flatten().for_each(|e| rb::mark(e.buffer));
    }
}
