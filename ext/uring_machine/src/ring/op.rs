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

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum State {
    Free,
    InFlight,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
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
    Iovecs(Vec<libc::iovec>),
    Path(std::ffi::CString),
}

// SAFETY: the raw pointers inside (iovecs) point at memory pinned by the same slot, and only
// the machine's own thread touches a slot; Send is needed only because the machine (which
// holds the table) is a Ruby object magnus requires to be Send, never moved across threads.
unsafe impl Send for Owned {}

pub struct Slot {
    generation: u32,
    pub state: State,
    pub kind: Kind,
    pub fiber: VALUE,
    pub exception: VALUE,
    pub pinned: Vec<VALUE>,
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
    pub completions: VecDeque<(i32, u32)>,
    /// The descriptor the fiber waits on through this op, or -1 (see `OpTable::tag_fd`).
    fd: i32,
    /// The io_uring opcode of the op's SQE (for the debugger's list of what fibers wait on).
    pub opcode: u8,
    /// A TIMEOUT op: when it fires (see machine/timers.rs, which can pause it); None for one
    /// too long for the clock, which never fires.
    pub deadline: Option<std::time::Instant>,
    /// A paused TIMEOUT op: the time it had left when the machine's timers were paused.
    pub paused: Option<std::time::Duration>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            generation: 0,
            state: State::Free,
            kind: Kind::Await,
            fiber: NIL,
            exception: NIL,
            pinned: Vec::new(),
            owned: Owned::None,
            result: 0,
            flags: 0,
            cancel_requested: false,
            parked: false,
            wait: 0,
            close_fds: false,
            serial: 0,
            completions: VecDeque::new(),
            fd: -1,
            opcode: 0,
            deadline: None,
            paused: None,
        }
    }
}

#[derive(Default)]
pub struct OpTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: usize,
    /// How many live ops wait on each descriptor (indexed by fd), so that closing one with no
    /// waiters costs a lookup and only a close with waiters scans the slots.
    fd_waits: Vec<u32>,
}

impl OpTable {
    pub fn alloc(&mut self, kind: Kind, fiber: VALUE) -> OpId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::new());
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
        slot.deadline = None;
        slot.paused = None;
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
        slot.completions.clear();
        slot.deadline = None;
        slot.paused = None;
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
