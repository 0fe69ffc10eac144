//! The in-flight operation table. A slot lives from the SQE push until its last CQE, holds the
//! fiber that waits on it and every Ruby object and native buffer the kernel may touch, and
//! keeps them marked (hence pinned) until then, whatever happens to the waiting fiber.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rb_sys::VALUE;

use crate::ruby::value::{mark, NIL};

/// Ops tagged with an fd in every machine of the process: while there are none, a close has
/// nobody to wake and skips the lookup.
static FD_WAITS_IN_PROCESS: AtomicUsize = AtomicUsize::new(0);

pub fn any_fd_waits_in_process() -> bool {
    FD_WAITS_IN_PROCESS.load(Ordering::Relaxed) > 0
}

/// Numbers every op of the process in the order they start (see `fibers_waiting_on`).
static OP_SERIAL: AtomicU64 = AtomicU64::new(1);

/// The serial number the next op will get: ops started from now on have it or a higher one.
pub fn next_op_serial() -> u64 {
    OP_SERIAL.load(Ordering::Relaxed)
}

/// user_data values that are not slots.
pub const TAG_IGNORE: u64 = u64::MAX;
pub const TAG_WAKEUP: u64 = u64::MAX - 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OpId {
    index: u32,
    generation: u32,
}

impl OpId {
    pub fn user_data(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    fn from_user_data(ud: u64) -> OpId {
        OpId {
            index: ud as u32,
            generation: (ud >> 32) as u32,
        }
    }
}

/// `repr(u8)`, like `Kind`: gdb reads both (machine/debug_record.rs).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Free,
    InFlight,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A fiber waits for the one CQE.
    Await,
    /// A fiber consumes a stream of CQEs (accept_each, read_each).
    Multishot,
    /// `timeout`: when it fires, `exception` is raised in `fiber`.
    Timeout,
    /// A timed suspension: when it fires, `fiber` resumes with false if still suspended.
    WakeTimer,
    /// Nobody waits any more (cancelled timeout): release on the CQE.
    Detached,
}

/// Native memory the kernel reads or writes; boxed so it never moves while the slot exists.
/// Rust never reads most of it back: holding it is the point; `Bytes` (a send's message, a
/// recv's buffer) is taken back from a completed op by machine/op_group.rs.
#[allow(dead_code)]
pub enum Owned {
    None,
    Bytes(Vec<u8>),
    Timespec(Box<io_uring::types::Timespec>),
    SockAddr(Box<(libc::sockaddr_storage, libc::socklen_t)>),
    Iovecs(Box<[libc::iovec]>),
    Path(std::ffi::CString),
}

// SAFETY: the raw pointers inside (iovecs) point at memory pinned by the same slot, and only
// the machine's own thread touches a slot; Send is needed only because the machine (which
// holds the table) is a Ruby object magnus requires to be Send, never moved across threads.
unsafe impl Send for Owned {}

/// The Ruby objects an op keeps alive (and in place) while the kernel may use them. The first
/// is held inline and the rest boxed: most ops pin one object (the String read into), and
/// every fiber that waits holds a slot.
pub struct Pins {
    first: VALUE,
    // Boxed on purpose: 8 bytes in the slot instead of a Vec's 24 (see Pins).
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<VALUE>>>,
}

impl Default for Pins {
    fn default() -> Pins {
        Pins { first: NIL, more: None }
    }
}

impl Pins {
    pub fn push(&mut self, v: VALUE) {
        if self.first == NIL {
            self.first = v;
        } else {
            self.more.get_or_insert_with(Default::default).push(v);
        }
    }

    pub fn extend<'a>(&mut self, values: impl IntoIterator<Item = &'a VALUE>) {
        values.into_iter().for_each(|v| self.push(*v));
    }

    /// Drops the pins and the heap block of any beyond the first.
    pub fn clear(&mut self) {
        self.first = NIL;
        self.more = None;
    }

    pub fn iter(&self) -> impl Iterator<Item = &VALUE> {
        let more = self.more.as_deref().map_or(&[][..], |m| m.as_slice());
        std::iter::once(&self.first).filter(|v| **v != NIL).chain(more.iter())
    }
}

pub struct Slot {
    generation: u32,
    pub state: State,
    pub kind: Kind,
    pub fiber: VALUE,
    pub exception: VALUE,
    pub pinned: Pins,
    pub owned: Owned,
    pub result: i32,
    pub flags: u32,
    pub cancel_requested: bool,
    /// The fiber is parked waiting for this slot's next CQE (and not yet queued to run).
    pub parked: bool,
    /// The serial number of the fiber's wait that this op's CQE (or, for a WakeTimer, its
    /// firing) may end: it resumes that wait only (see machine/waits.rs).
    pub wait: u64,
    /// A detached multishot accept: each fd its remaining CQEs bring is closed.
    pub close_fds: bool,
    /// When the op started, among all of the process (see `next_op_serial`).
    serial: u64,
    /// A multishot op's CQEs not yet taken (boxed: most ops are not multishot, and every
    /// fiber that waits holds a slot).
    #[allow(clippy::box_collection)]
    completions: Option<Box<VecDeque<(i32, u32)>>>,
    /// The descriptor the fiber waits on through this op, or -1 (see `OpTable::tag_fd`).
    fd: i32,
    /// The io_uring opcode of the op's SQE (for the debugger's list of what fibers wait on).
    pub opcode: u8,
    /// For gdb (machine/debug_record.rs): when the op was submitted and, for a timer, when it
    /// fires, in CLOCK_MONOTONIC nanoseconds (0: not known).
    pub submitted_ns: u64,
    pub deadline_ns: u64,
    /// A TIMEOUT op's clock (boxed, as only timers have one).
    clock: Option<Box<Clock>>,
}

/// When a TIMEOUT op fires, and what it had left when paused.
#[derive(Default)]
struct Clock {
    /// When it fires (see machine/timers.rs, which can pause it); None for one too long for
    /// the clock, which never fires.
    deadline: Option<std::time::Instant>,
    /// The time it had left when the machine's timers were paused.
    paused: Option<std::time::Duration>,
}

impl Slot {
    pub fn push_completion(&mut self, completion: (i32, u32)) {
        self.completions
            .get_or_insert_with(Default::default)
            .push_back(completion);
    }

    pub fn pop_completion(&mut self) -> Option<(i32, u32)> {
        self.completions.as_mut().and_then(|c| c.pop_front())
    }

    pub fn take_completions(&mut self) -> VecDeque<(i32, u32)> {
        self.completions.take().map(|c| *c).unwrap_or_default()
    }

    /// A TIMEOUT op's deadline (None: no timer, or one that never fires).
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.clock.as_ref().and_then(|c| c.deadline)
    }

    pub fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.clock.get_or_insert_with(Default::default).deadline = deadline;
    }

    /// What a paused timer had left when paused.
    pub fn paused(&self) -> Option<std::time::Duration> {
        self.clock.as_ref().and_then(|c| c.paused)
    }

    pub fn set_paused(&mut self, left: Option<std::time::Duration>) {
        self.clock.get_or_insert_with(Default::default).paused = left;
    }

    fn new() -> Slot {
        Slot {
            generation: 0,
            state: State::Free,
            kind: Kind::Await,
            fiber: NIL,
            exception: NIL,
            pinned: Pins::default(),
            owned: Owned::None,
            result: 0,
            flags: 0,
            cancel_requested: false,
            parked: false,
            wait: 0,
            close_fds: false,
            serial: 0,
            completions: None,
            fd: -1,
            opcode: 0,
            clock: None,
            submitted_ns: 0,
            deadline_ns: 0,
        }
    }
}

/// Where gdb finds a slot's fields (Slot is not `repr(C)`: its layout is the compiler's).
#[repr(C)]
pub struct SlotLayout {
    pub size: u32,
    pub state: u32,
    pub kind: u32,
    pub fiber: u32,
    pub fd: u32,
    pub opcode: u32,
    pub parked: u32,
    pub cancel_requested: u32,
    pub submitted_ns: u32,
    pub deadline_ns: u32,
}

pub const SLOT_LAYOUT: SlotLayout = SlotLayout {
    size: std::mem::size_of::<Slot>() as u32,
    state: std::mem::offset_of!(Slot, state) as u32,
    kind: std::mem::offset_of!(Slot, kind) as u32,
    fiber: std::mem::offset_of!(Slot, fiber) as u32,
    fd: std::mem::offset_of!(Slot, fd) as u32,
    opcode: std::mem::offset_of!(Slot, opcode) as u32,
    parked: std::mem::offset_of!(Slot, parked) as u32,
    cancel_requested: std::mem::offset_of!(Slot, cancel_requested) as u32,
    submitted_ns: std::mem::offset_of!(Slot, submitted_ns) as u32,
    deadline_ns: std::mem::offset_of!(Slot, deadline_ns) as u32,
};

/// The slot array as gdb finds it: boxed, so its address stays put while the Vec grows.
#[repr(C)]
pub struct SlotsView {
    pub ptr: *const Slot,
    pub len: usize,
}

impl Default for SlotsView {
    fn default() -> SlotsView {
        SlotsView {
            ptr: std::ptr::null(),
            len: 0,
        }
    }
}

// SAFETY: plain addresses for a debugger to read; Rust never dereferences them.
unsafe impl Send for SlotsView {}

#[derive(Default)]
pub struct OpTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: usize,
    /// How many live ops wait on each descriptor (indexed by fd), so that closing one with no
    /// waiters costs a lookup and only a close with waiters scans the slots.
    fd_waits: Vec<u32>,
    /// Where the slots are, for gdb: updated when the Vec grows (the only time it moves).
    view: Box<SlotsView>,
}

impl OpTable {
    /// The slot array's address and length, kept up to date for gdb.
    pub fn view(&self) -> *const SlotsView {
        &*self.view
    }

    pub fn alloc(&mut self, kind: Kind, fiber: VALUE) -> OpId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::new());
                self.view.ptr = self.slots.as_ptr();
                self.view.len = self.slots.len();
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.state = State::InFlight;
        slot.kind = kind;
        slot.fiber = fiber;
        slot.cancel_requested = false;
        slot.parked = false;
        slot.wait = 0;
        slot.close_fds = false;
        slot.serial = OP_SERIAL.fetch_add(1, Ordering::Relaxed);
        slot.fd = -1;
        slot.opcode = 0;
        slot.clock = None;
        slot.deadline_ns = 0;
        self.in_flight += 1;
        OpId {
            index,
            generation: slot.generation,
        }
    }

    pub fn get(&self, id: OpId) -> Option<&Slot> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation && s.state != State::Free)
    }

    pub fn get_mut(&mut self, id: OpId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation && s.state != State::Free)
    }

    /// The live slot a CQE belongs to.
    pub fn lookup(&mut self, user_data: u64) -> Option<(OpId, &mut Slot)> {
        let id = OpId::from_user_data(user_data);
        self.get_mut(id).map(|s| (id, s))
    }

    pub fn is_done(&self, id: OpId) -> bool {
        self.get(id).is_none_or(|s| s.state == State::Done)
    }

    /// Returns the slot to the free list, dropping its pins and native memory.
    pub fn release(&mut self, id: OpId) -> (i32, u32) {
        let Some(slot) = self.get_mut(id) else {
            return (0, 0);
        };
        let out = (slot.result, slot.flags);
        let fd = std::mem::replace(&mut slot.fd, -1);
        slot.state = State::Free;
        slot.fiber = NIL;
        slot.exception = NIL;
        slot.pinned.clear();
        slot.owned = Owned::None;
        slot.completions = None;
        slot.clock = None;
        self.in_flight -= 1;
        self.free.push(id.index);
        if fd >= 0 {
            self.fd_waits[fd as usize] -= 1;
            FD_WAITS_IN_PROCESS.fetch_sub(1, Ordering::Relaxed);
        }
        out
    }

    /// Records that the fiber of op `id` waits on `fd`, until the op is released.
    pub fn tag_fd(&mut self, id: OpId, fd: i32) {
        let Some(slot) = self.get_mut(id) else {
            return;
        };
        if fd < 0 || slot.fd >= 0 {
            return;
        }
        slot.fd = fd;
        let index = fd as usize;
        if index >= self.fd_waits.len() {
            self.fd_waits.resize(index + 1, 0);
        }
        self.fd_waits[index] += 1;
        FD_WAITS_IN_PROCESS.fetch_add(1, Ordering::Relaxed);
    }

    /// The fibers waiting on `fd` through live ops that started before op serial `before`: a
    /// close that had to wait (Ruby 3.4 closes on a worker thread) must not reach an op that
    /// another fiber started meanwhile on a new file that got the same number.
    pub fn fibers_waiting_on(&self, fd: i32, before: u64) -> Vec<VALUE> {
        if fd < 0 || self.fd_waits.get(fd as usize).copied().unwrap_or(0) == 0 {
            return Vec::new();
        }
        let mut fibers: Vec<VALUE> = self
            .slots
            .iter()
            .filter(|s| s.state != State::Free && s.fd == fd && s.fiber != NIL && s.serial < before)
            .map(|s| s.fiber)
            .collect();
        fibers.sort_unstable();
        fibers.dedup();
        fibers
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn ids(&self) -> impl Iterator<Item = OpId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state != State::Free)
            .map(|(i, s)| OpId {
                index: i as u32,
                generation: s.generation,
            })
    }

    pub fn mark(&self) {
        for slot in self.slots.iter().filter(|s| s.state != State::Free) {
            mark(slot.fiber);
            mark(slot.exception);
            slot.pinned.iter().for_each(|v| mark(*v));
        }
    }
}
