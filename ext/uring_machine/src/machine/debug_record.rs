//! What gdb reads of each machine (lib/uring_machine/gdb/uring_machine.py), live or in a core
//! file, where no code of ours can run: an exported registry of `#[repr(C)]` records, one
//! per machine, found by its symbol name alone (the .so has no type info for gdb: the release
//! profile builds line tables only). A record points at the machine's op slots (their layout
//! in the registry's header), its run queue and its suspended fibers, and is kept current by a
//! few plain stores where the machine changes anyway: a slot's submit time, the run queue's
//! slices at each fiber switch, a suspension's entry when it begins and ends.
use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, Ordering};

use rb_sys::VALUE;

use crate::machine::waits::Runnable;
use crate::ring::op::{SlotLayout, SlotsView, SLOT_LAYOUT};
use crate::ruby::value::NIL;

const MAGIC: u64 = 0x554d_5f47_4442_5631; // "UM_GDBV1"
const VERSION: u32 = 2;
/// Machines (threads) listed at once; more are counted in `overflow`, not listed.
const CAPACITY: usize = 1024;

/// The registry's header: what gdb checks and the layouts it cannot know otherwise.
#[repr(C)]
pub struct Header {
    magic: u64,
    version: u32,
    capacity: u32,
    nil: VALUE,
    slot: SlotLayout,
    runnable_size: u32,
    runnable_fiber: u32,
}

#[repr(C)]
pub struct Registry {
    header: Header,
    overflow: std::sync::atomic::AtomicU64,
    machines: [AtomicPtr<MachineRecord>; CAPACITY],
}

/// Exported under the name the gdb helpers look up.
#[export_name = "uring_machine_gdb_registry"]
#[used]
pub static REGISTRY: Registry = Registry {
    header: Header {
        magic: MAGIC,
        version: VERSION,
        capacity: CAPACITY as u32,
        nil: NIL,
        slot: SLOT_LAYOUT,
        runnable_size: std::mem::size_of::<Runnable>() as u32,
        runnable_fiber: std::mem::offset_of!(Runnable, fiber) as u32,
    },
    overflow: std::sync::atomic::AtomicU64::new(0),
    machines: [const { AtomicPtr::new(std::ptr::null_mut()) }; CAPACITY],
};

/// Why a fiber is suspended (its `Suspension::why`; 0 is a free entry).
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Why {
    /// Machine#suspend, or a scheduler transfer: until something schedules it.
    Suspended = 1,
    Join = 2,
    Receive = 3,
    /// A send to a full mailbox.
    Send = 4,
    /// The scheduler's block hook (a Mutex, a Queue, ...): `what` is the blocker.
    Block = 5,
    /// The scheduler's kernel_sleep (sleep, ConditionVariable#wait).
    Sleep = 6,
    /// Scheduler#close, waiting for its fibers to finish.
    Close = 7,
}

/// One suspended fiber: who, why, on what (a blocker, a fiber joined; nil), since when.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Suspension {
    fiber: VALUE,
    what: VALUE,
    since_ns: u64,
    why: u32,
    _pad: u32,
}

/// A fiber's name (`spin(name:)`, Fiber#name=), as bytes gdb can read: the Ruby String is in
/// the fiber's ivars, whose layout gdb cannot know.
#[repr(C)]
pub struct FiberName {
    fiber: VALUE,
    name: *const u8,
    len: usize,
}

/// One machine, as gdb reads it.
#[repr(C)]
pub struct MachineRecord {
    pid: i32,
    tid: i32,
    ring_fd: i32,
    _pad: u32,
    thread: VALUE,
    /// The fiber the machine last handed control to.
    running: VALUE,
    /// CLOCK_MONOTONIC at the machine's last ring enter, in ns: what op times are taken from.
    clock_ns: u64,
    /// SQEs submitted and CQEs reaped since the ring was made.
    sq_submitted: u64,
    cq_reaped: u64,
    slots: *const SlotsView,
    /// The run queue (a VecDeque): its two slices, as of the last switch away or ring wait.
    runqueue: [*const Runnable; 2],
    runqueue_len: [usize; 2],
    suspensions: *const Suspension,
    suspensions_len: usize,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC when the machine was made: a core file holds no
    /// clock, but its mtime tells gdb when it was written.
    realtime_offset_ns: i64,
    /// The names of its fibers that have one (while they run).
    names: *const FiberName,
    names_len: usize,
}

/// A machine's record, registered while it lives; owned by the machine's state.
pub struct DebugRecord {
    record: Box<MachineRecord>,
    table: Vec<Suspension>,
    free: Vec<u32>,
    /// `names` and the bytes its entries point at, index for index, and each fiber's index.
    names: Vec<FiberName>,
    name_bytes: Vec<Box<[u8]>>,
    name_index: HashMap<VALUE, usize>,
}

// SAFETY: the raw pointers are addresses for gdb to read; Rust never dereferences them, and
// the machine that owns the record stays on its own thread.
unsafe impl Send for DebugRecord {}

impl DebugRecord {
    pub fn new(thread: VALUE, ring_fd: i32, slots: *const SlotsView) -> DebugRecord {
        // SAFETY: getpid and gettid take nothing and cannot fail.
        let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
        let mut record = Box::new(MachineRecord {
            pid,
            tid,
            ring_fd,
            _pad: 0,
            thread,
            running: NIL,
            clock_ns: now_ns(),
            sq_submitted: 0,
            cq_reaped: 0,
            slots,
            runqueue: [std::ptr::null(); 2],
            runqueue_len: [0; 2],
            suspensions: std::ptr::null(),
            suspensions_len: 0,
            realtime_offset_ns: clock_ns(libc::CLOCK_REALTIME) as i64 - now_ns() as i64,
            names: std::ptr::null(),
            names_len: 0,
        });
        let ptr: *mut MachineRecord = &mut *record;
        let listed = REGISTRY.machines.iter().any(|entry| {
            entry
                .compare_exchange(std::ptr::null_mut(), ptr, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        });
        if !listed {
            REGISTRY.overflow.fetch_add(1, Ordering::Relaxed);
        }
        DebugRecord {
            record,
            table: Vec::new(),
            free: Vec::new(),
            names: Vec::new(),
            name_bytes: Vec::new(),
            name_index: HashMap::new(),
        }
    }

    /// The clock that op and suspension times are taken from (see `clock_ns`).
    pub fn clock_ns(&self) -> u64 {
        self.record.clock_ns
    }

    /// Before a ring enter: the SQEs it submits.
    pub fn entering(&mut self, submitting: u32) {
        self.record.sq_submitted += submitting as u64;
    }

    /// After a ring enter: the time.
    pub fn entered(&mut self) {
        self.record.clock_ns = now_ns();
    }

    /// After the CQ was drained: how many CQEs that took.
    pub fn reaped(&mut self, count: usize) {
        self.record.cq_reaped += count as u64;
    }

    /// At a fiber switch: who runs now, and the run queue it leaves behind.
    pub fn switched(&mut self, running: VALUE, runqueue: &std::collections::VecDeque<Runnable>) {
        let (a, b) = runqueue.as_slices();
        let r = &mut self.record;
        r.running = running;
        r.runqueue = [a.as_ptr(), b.as_ptr()];
        r.runqueue_len = [a.len(), b.len()];
    }

    /// Control came back to `fiber`: one store (the run queue stays as of the last switch or
    /// ring wait).
    pub fn returned_to(&mut self, fiber: VALUE) {
        self.record.running = fiber;
    }

    /// The op table was replaced (its old slots leaked on purpose, see run_loop.rs).
    pub fn set_slots(&mut self, slots: *const SlotsView) {
        self.record.slots = slots;
    }

    /// Lists a suspension of `fiber`; returns its entry for `end_suspension`.
    pub fn begin_suspension(&mut self, fiber: VALUE, why: Why, what: VALUE) -> u32 {
        let entry = Suspension {
            fiber,
            what,
            since_ns: self.record.clock_ns,
            why: why as u32,
            _pad: 0,
        };
        match self.free.pop() {
            Some(i) => {
                self.table[i as usize] = entry;
                i
            }
            None => {
                self.table.push(entry);
                self.record.suspensions = self.table.as_ptr();
                self.record.suspensions_len = self.table.len();
                (self.table.len() - 1) as u32
            }
        }
    }

    pub fn end_suspension(&mut self, index: u32) {
        if let Some(entry) = self.table.get_mut(index as usize) {
            entry.why = 0;
            entry.fiber = NIL;
            entry.what = NIL;
            self.free.push(index);
        }
    }

    /// Lists `fiber` under `name` (a running fiber of this machine; see `forget_name`).
    pub fn set_name(&mut self, fiber: VALUE, bytes: Box<[u8]>) {
        self.forget_name(fiber);
        self.names.push(FiberName {
            fiber,
            name: bytes.as_ptr(),
            len: bytes.len(),
        });
        self.name_bytes.push(bytes);
        self.name_index.insert(fiber, self.names.len() - 1);
        self.publish_names();
    }

    /// `fiber` finished, or lost its name: its entry goes (a later fiber may get its address).
    pub fn forget_name(&mut self, fiber: VALUE) {
        if let Some(i) = self.name_index.remove(&fiber) {
            self.names.swap_remove(i);
            self.name_bytes.swap_remove(i);
            if let Some(moved) = self.names.get(i) {
                self.name_index.insert(moved.fiber, i);
            }
            self.publish_names();
        }
    }

    /// Whether any fiber is listed by name (a fiber's end looks for its entry only then).
    pub fn has_names(&self) -> bool {
        !self.names.is_empty()
    }

    fn publish_names(&mut self) {
        self.record.names = self.names.as_ptr();
        self.record.names_len = self.names.len();
    }

    /// Takes the record off the registry (its entries' VALUEs are never marked from here: gdb
    /// only prints them, and the machine marks the fibers it waits for elsewhere).
    fn unregister(&self) {
        let ptr = &*self.record as *const MachineRecord as *mut MachineRecord;
        for entry in REGISTRY.machines.iter() {
            if entry
                .compare_exchange(ptr, std::ptr::null_mut(), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl Drop for DebugRecord {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock gdb's Python `time.monotonic()` reads.
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into a local that outlives the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
