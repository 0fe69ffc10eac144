//! UringMachine::Machine: one ring per thread, the run queue, and the loop that hands control
//! straight from a fiber that must wait to the next runnable one. A fiber with nothing else to
//! run waits on the ring itself, with the GVL released.
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use io_uring::{opcode, squeue, types};
use magnus::{gc::Marker, rb_sys::protect, DataTypeFunctions, Error, Exception, TypedData};
use rb_sys::VALUE;

use crate::machine::debug_record::{DebugRecord, Why};
use crate::machine::spin_requests::SpinRequests;
use crate::machine::waits::{Entry, FiberWaits, OuterWait, Resumes, Runnable};
use crate::ring::metrics::Metrics;
use crate::ring::op::{Kind, OpId, OpTable, State as OpState, TAG_IGNORE, TAG_WAKEUP};
use crate::ring::wakeup::{unblock_ring_wait, Wakeup};
use crate::ring::{has_more, Completion, Ring};
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, fiber_current, mark, NIL};

/// How many run-queue pops may pass before completions are collected without waiting.
const POLL_INTERVAL: u32 = 32;

static TERMINATED: AtomicU64 = AtomicU64::new(0);

/// Called once at load: the names the crate uses, the sentinel a finished fiber hands back,
/// what a forked child does first (ring/private_fds.rs), and the hook that closes a thread's
/// machine when the thread ends.
pub fn init_globals() -> Result<(), Error> {
    crate::ruby::names::init()?;
    // SAFETY: rb_cObject is set at boot; allocating the object and registering it as a mark
    // root may raise NoMemoryError, which protect catches. The object is then never freed (nor
    // moved: registered roots are pinned), so its VALUE may live in a static.
    let sentinel = protect(|| unsafe {
        let sentinel = rb_sys::rb_obj_alloc(rb_sys::rb_cObject);
        rb_sys::rb_gc_register_mark_object(sentinel);
        sentinel
    })?;
    TERMINATED.store(sentinel, Ordering::Relaxed);
    crate::ring::private_fds::init();
    crate::machine::thread_end::install()
}

/// What the fiber that ran last returns: control came back because a fiber finished.
pub fn terminated() -> VALUE {
    TERMINATED.load(Ordering::Relaxed)
}

/// Fibers are pinned (marked) while they are keys, so their VALUE is a stable identity.
#[derive(Default)]
pub struct ValueHasher(u64);

impl Hasher for ValueHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub type FiberMap<V> = HashMap<VALUE, V, BuildHasherDefault<ValueHasher>>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Op(OpId),
    /// Waiting for the first of several ops (await_any_poll).
    Any,
    Suspended,
}

pub struct State {
    pub ring: Ring,
    pub ops: OpTable,
    pub runqueue: VecDeque<Runnable>,
    /// What each parked fiber waits on, while something may still wake it (see waits.rs).
    pub waiting: FiberMap<Wait>,
    /// The wait each fiber is in, from its start to its end, woken or not (a run-queue entry
    /// resumes its fiber only in the wait it was queued for), and when its last suspension
    /// ended (see waits.rs). Only the fibers in a wait are marked: the entry of a fiber between
    /// waits is never dereferenced, and if it outlives its fiber (one no machine started, which
    /// finished) it is older than any wake-up a new fiber at the same address can get: harmless.
    pub waits: FiberMap<FiberWaits>,
    /// A value sent to a fiber that was not suspended, for its next suspension.
    pub early: FiberMap<VALUE>,
    /// The waits that an inner wait of the same fiber set aside (see waits.rs).
    pub outer_waits: FiberMap<Vec<OuterWait>>,
    /// Run-queue entries for a wait that is set aside, until it goes on.
    pub held: Vec<Runnable>,
    /// Exceptions to raise in a fiber at its next resumption (timeouts, schedule(f, exc)), or,
    /// when the op it waited on completed anyway, at its next wait (see `await_op`).
    pub pending: FiberMap<VALUE>,
    /// Of those, the ones that are a child fiber's failure: if the fiber finishes before it
    /// waits again, the failure moves on to its parent instead of being dropped.
    pub failures: FiberMap<VALUE>,
    pub metrics: Metrics,
    pub report_on_exception: bool,
    /// The fiber whose last kernel_sleep ran out of time (NIL if none): ConditionVariable#wait
    /// asks, since CRuby's Mutex#sleep drops the hook's answer. Only compared, never used.
    pub timed_out_sleeper: VALUE,
    /// The fiber that runs the event loop in Scheduler#run / #close (NIL when none does), and
    /// the last other fiber that parked: a Thread#raise that finds the loop waiting on the
    /// ring is for that one (see signals.rs, `route_signal`). Only compared, or checked to be parked.
    pub loop_fiber: VALUE,
    pub last_parked: VALUE,
    /// What the timeout watchdog reads of this thread, shared with the Machine (watchdog.rs).
    pub progress: Arc<crate::machine::watchdog::Progress>,
    /// The fiber this machine last handed control to (see `switch`).
    pub running: VALUE,
    /// While set (Thread#fiber_lock), the only fiber that may run: the others stay queued.
    pub locked_to: VALUE,
    pub buffers: Option<crate::ring::buf_ring::BufferRing>,
    pub registry: crate::ring::buffer_registry::Registry,
    pub fd_kinds: crate::machine::fd_kinds::FdKinds,
    /// What a fiber parked in the scheduler's `block` hook waits for (a Mutex, a Queue, ...).
    pub blocked_on: FiberMap<VALUE>,
    /// While the machine's timers are paused (the debugger is stopped): the TIMEOUT ops paused.
    pub paused_timers: Option<Vec<OpId>>,
    /// The fibers inside an IO#write (puts, print) under the scheduler: the descriptor and the
    /// bytes written to it so far (machine/write_counts.rs).
    pub write_counts: FiberMap<(i32, usize)>,
    pub(crate) wakeup: Arc<Wakeup>,
    /// What gdb reads of this machine (debug_record.rs).
    pub debug: DebugRecord,
    /// Fibers in a `sleep` without a duration: like CRuby's, not a deadlock (a signal may end
    /// it), see deadlock.rs.
    pub sleeping_forever: usize,
    /// Set while the thread enters the ring to wait: Ruby runs pending trap handlers (and
    /// finalizers) as it releases the GVL, right before the wait, and whatever they wake must
    /// end that wait (see `deliver`), or it would wait for an unrelated completion.
    pub entering_wait: bool,
    ticks: u32,
    completions: Vec<Completion>,
    /// UDP sockets to loopback nameservers between lookups (ops/dns/idle_sockets.rs).
    pub dns_sockets: crate::ops::dns::IdleSockets,
}

#[derive(TypedData)]
#[magnus(class = "UringMachine::Machine", free_immediately, size, mark)]
pub struct Machine {
    state: RefCell<State>,
    wakeup: Arc<Wakeup>,
    /// spin(on_thread:) requests from other threads (spin_requests.rs).
    spin_requests: SpinRequests,
    owner_thread: VALUE,
    /// The native thread that created the ring: with SINGLE_ISSUER and DEFER_TASKRUN only it
    /// may enter the ring (another thread's io_uring_enter can wait forever, holding the GVL).
    owner_tid: libc::pid_t,
    fork_generation: u64,
    /// Set by `shut_down`: the ring and the eventfd are closed.
    closed: Cell<bool>,
    /// What the timeout watchdog reads of this thread (watchdog.rs).
    pub(crate) progress: Arc<crate::machine::watchdog::Progress>,
}

impl DataTypeFunctions for Machine {
    fn mark(&self, _marker: &Marker) {
        mark(self.owner_thread);
        self.wakeup.mark();
        self.spin_requests.mark();
        // GC runs only at an allocation (or GC.start), on a thread that holds the GVL, and
        // `with` runs plain Rust only: no allocation, so no GC, while the state is borrowed
        // mutably. Were one to happen anyway, marking could neither read the state (that would
        // alias the live &mut) nor skip it (its fibers and buffers would be freed): stop there.
        let Ok(state) = self.state.try_borrow() else {
            rb::gc_mark_conflict("UringMachine::Machine")
        };
        state.ops.mark();
        state.registry.mark();
        for r in state.runqueue.iter().chain(state.held.iter()) {
            mark(r.fiber);
            mark(r.value);
        }
        state
            .waiting
            .keys()
            .chain(state.write_counts.keys())
            .chain(state.waits.iter().filter(|(_, w)| w.current.is_some()).map(|(f, _)| f))
            .for_each(|f| mark(*f));
        mark(state.running);
        mark(state.locked_to);
        for (f, e) in state
            .pending
            .iter()
            .chain(state.failures.iter())
            .chain(state.blocked_on.iter())
            .chain(state.early.iter())
        {
            mark(*f);
            mark(*e);
        }
    }
}

impl Machine {
    pub fn new(entries: u32) -> Result<Machine, Error> {
        // Its fibers and ops call fiber_current on this thread (the only one it runs on).
        rb::root_fiber_ready()?;
        let single_issuer = std::env::var("RUBY_MN_THREADS").map_or(true, |v| v != "1");
        let ring = Ring::new(entries, single_issuer).map_err(ring_setup_error)?;
        let wakeup =
            Arc::new(Wakeup::new().map_err(|e| rb::errno_error(e.raw_os_error().unwrap_or(libc::EIO), "eventfd"))?);
        // SAFETY: rb_thread_current reads the running Thread (it exists: this runs on it, with
        // the GVL); it allocates nothing. The Thread stays alive while the machine is: its mark
        // marks owner_thread.
        let owner_thread = unsafe { rb_sys::rb_thread_current() };
        let ops = OpTable::default();
        let debug = DebugRecord::new(owner_thread, ring.fd(), ops.view());
        let mut state = State {
            ring,
            ops,
            runqueue: VecDeque::new(),
            waiting: FiberMap::default(),
            waits: FiberMap::default(),
            early: FiberMap::default(),
            outer_waits: FiberMap::default(),
            held: Vec::new(),
            pending: FiberMap::default(),
            failures: FiberMap::default(),
            metrics: Metrics::default(),
            report_on_exception: true,
            timed_out_sleeper: NIL,
            loop_fiber: NIL,
            last_parked: NIL,
            running: NIL,
            locked_to: NIL,
            buffers: None,
            registry: Default::default(),
            fd_kinds: Default::default(),
            blocked_on: FiberMap::default(),
            paused_timers: None,
            write_counts: FiberMap::default(),
            wakeup: wakeup.clone(),
            sleeping_forever: 0,
            entering_wait: false,
            debug,
            ticks: 0,
            completions: Vec::with_capacity(256),
            progress: Arc::default(),
            dns_sockets: Default::default(),
        };
        state.arm_wakeup();
        let state_progress = Arc::clone(&state.progress);
        // SAFETY: gettid takes nothing and cannot fail.
        let owner_tid = unsafe { libc::gettid() };
        Ok(Machine {
            state: RefCell::new(state),
            wakeup,
            spin_requests: SpinRequests::default(),
            owner_thread,
            owner_tid,
            fork_generation: crate::ring::private_fds::generation(),
            closed: Cell::new(false),
            progress: Arc::clone(&state_progress),
        })
    }

    /// Runs `f` on the state. `f` must not call into Ruby: no allocation (GC would mark the
    /// machine while the state is borrowed: see `mark`), no raise (its longjmp would leave the
    /// state borrowed for good), no fiber switch. Errors that need a Ruby object (an Errno
    /// exception) are made after `with` returns.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.borrow_mut())
    }

    /// The thread that created this machine, the only one that runs its fibers.
    pub fn owner_thread(&self) -> VALUE {
        self.owner_thread
    }

    /// Whether the calling thread is the one this machine runs on (the only one that may
    /// touch its state).
    pub fn on_owner_thread(&self) -> bool {
        // SAFETY: gettid takes nothing and cannot fail.
        (unsafe { libc::gettid() }) == self.owner_tid
    }

    pub fn is_owner_thread(&self) -> bool {
        // SAFETY: rb_thread_current reads the running Thread (called with the GVL, from any
        // thread); it allocates nothing and cannot raise.
        unsafe { rb_sys::rb_thread_current() == self.owner_thread }
    }

    /// True in a child process: the ring belongs to the parent and must not be touched.
    pub fn is_inherited_by_fork(&self) -> bool {
        self.fork_generation != crate::ring::private_fds::generation()
    }

    /// True once `shut_down` closed the ring (its thread ended).
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Whether this thread may run ops on the machine now: its own, in this process, not closed.
    pub fn is_usable_here(&self) -> bool {
        !self.is_inherited_by_fork() && !self.is_closed() && self.is_owner_thread()
    }

    /// Ring operations only from the thread and the process that created the ring.
    pub fn check_owner(&self) -> Result<(), Error> {
        if self.is_inherited_by_fork() {
            return Err(rb::exception(
                rb::ruby().exception_runtime_error(),
                "this UringMachine::Machine belongs to the parent process; create a new one after fork",
            ));
        }
        if !self.is_owner_thread() {
            return Err(rb::exception(
                rb::ruby().exception_runtime_error(),
                "this UringMachine::Machine belongs to another thread; use UringMachine.machine",
            ));
        }
        if self.is_closed() {
            return Err(rb::exception(
                rb::ruby().exception_io_error(),
                "this UringMachine::Machine is closed: its thread ended",
            ));
        }
        Ok(())
    }

    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    pub fn spin_requests(&self) -> &SpinRequests {
        &self.spin_requests
    }

    /// Switches to the next runnable fiber and returns the value this fiber is resumed with,
    /// or the exception raised into it while it was away.
    pub fn switch(&self) -> Result<VALUE, Error> {
        let current = fiber_current();
        self.with(|s| {
            if current != s.loop_fiber {
                s.last_parked = current;
            }
        });
        loop {
            let (fiber, value, resumes) = self.next_runnable()?;
            if fiber == current && resumes != Resumes::Forward {
                return Ok(value);
            }
            if !rb::fiber_alive(fiber) {
                continue;
            }
            let forwarded = resumes == Resumes::Forward;
            if forwarded && (fiber == current || !self.take_forwarded(fiber, value)) {
                continue;
            }
            self.with(|s| {
                s.metrics.switches += 1;
                s.running = fiber;
                s.debug.switched(fiber, &s.runqueue);
            });
            self.progress.switched_to(fiber);
            let resumed = if forwarded {
                forward(fiber, value)
            } else {
                rb::transfer(fiber, value)
            };
            let finished = matches!(resumed, Ok(v) if v == terminated());
            self.with(|s| {
                // Whoever ran last gave us control without the scheduler (Fiber#raise is a
                // transfer): queue it, or it would never run again.
                self.progress.switched_to(current);
                let previous = std::mem::replace(&mut s.running, current);
                if previous != current && previous != NIL && !finished {
                    s.runqueue.push_back(Runnable {
                        fiber: previous,
                        value: NIL,
                        resumes: Resumes::Idle,
                    });
                }
                s.debug.returned_to(current);
            });
            // A finished fiber returns control to the root fiber: keep scheduling.
            if !finished {
                return resumed;
            }
        }
    }

    /// Whether timeout `exception`, pending for `fiber`, is to be raised with Fiber#raise in
    /// the fiber it resumed (see `forward`): then it is no longer pending. Only Ruby 3.3+
    /// forward Fiber#raise along a resume (3.1 raises FiberError); before, the exception
    /// stays pending, raised once `fiber` waits here.
    fn take_forwarded(&self, fiber: VALUE, exception: VALUE) -> bool {
        if !cfg!(ruby_gte_3_3) || !self.with(|s| s.pending.get(&fiber) == Some(&exception)) || !is_resuming(fiber) {
            return false;
        }
        self.with(|s| {
            s.pending.remove(&fiber);
        });
        true
    }

    fn next_runnable(&self) -> Result<(VALUE, VALUE, Resumes), Error> {
        loop {
            if self.spin_requests.has_pending() {
                self.serve_spin_requests();
            }
            if let Some(entry) = self.with(State::pop_runnable) {
                return Ok(entry);
            }
            match self.raise_deadlock() {
                Ok(true) => continue, // the main fiber is queued with the error
                Ok(false) => {}
                // A signal that came while the check ran Ruby code: to the main fiber, as from
                // the ring's wait (it was dropped here, and TERM lost).
                Err(e) => {
                    self.route_signal(Err(e))?;
                    continue;
                }
            }
            // The check may have run Ruby code, and with it a trap handler that woke a fiber.
            if let Some(entry) = self.with(State::pop_runnable) {
                return Ok(entry);
            }
            self.wait_for_completions()?;
        }
    }

    /// Submits what is queued and waits for at least one completion without the GVL, so other
    /// threads run; Thread#raise, signals and `wakeup` from another thread interrupt it.
    fn wait_for_completions(&self) -> Result<(), Error> {
        let mut args = self.with(|s| {
            s.entering_wait = true;
            let args = s.ring.enter_args(1);
            s.debug.entering(args.to_submit);
            args
        });
        let data = &mut args as *mut _ as *mut libc::c_void;
        let wakeup = Arc::as_ptr(&self.wakeup) as *mut libc::c_void;
        // SAFETY: `data` points at `args`, a local that outlives the call, and
        // enter_without_gvl touches nothing else (no Ruby object, so it may run without the
        // GVL); `wakeup` points at this machine's Wakeup, alive as long as `self`. rb_nogvl
        // raises (an interrupt found on re-acquiring the GVL) only through protect.
        let waited = protect(|| unsafe {
            // The unblocking function only writes an eventfd: async-signal-safe. Saying so keeps
            // Ruby 3.1 from starting (and, under a scheduler, fiber-joining) a helper thread when
            // the main thread is alone.
            let flags = rb_sys::RB_NOGVL_UBF_ASYNC_SAFE as i32;
            self.progress.set_in_ring(true);
            rb_sys::rb_nogvl(Some(enter_without_gvl), data, Some(unblock_ring_wait), wakeup, flags);
            NIL
        });
        self.progress.set_in_ring(false);
        self.with(|s| {
            s.entering_wait = false;
            s.metrics.waits += 1;
            if args.to_submit > 0 {
                s.metrics.submits += 1;
            }
            s.debug.entered();
            s.reap();
            s.debug.switched(s.running, &s.runqueue);
        });
        // A signal exception goes to the main fiber, a Thread#raise to the fiber that waits;
        // this one goes on waiting (signals.rs).
        self.route_signal(waited)?;
        let res = args.result;
        if res < 0 && ![-libc::EINTR, -libc::EAGAIN, -libc::EBUSY, -libc::ETIME].contains(&(res as i32)) {
            return Err(rb::errno_error(-res as i32, "io_uring_enter"));
        }
        // SAFETY: rb_thread_check_ints runs pending interrupts (trap handlers, Thread#raise),
        // Ruby code whose raise protect catches; no borrow of the state is held here.
        self.route_signal(protect(|| unsafe {
            rb_sys::rb_thread_check_ints();
            NIL
        }))?;
        Ok(())
    }

    /// Parks the current fiber until op `id` has completed. An exception raised into the fiber
    /// meanwhile cancels the op, and is re-raised only once its CQE has arrived: the kernel is
    /// done with every buffer by the time this returns. When that CQE says the op succeeded
    /// anyway (the cancel came too late: the bytes are in the buffer, the connection accepted)
    /// the result wins: it is returned, and the exception stays pending for the fiber's next
    /// wait (see `raise_pending`).
    pub fn await_op(&self, id: OpId) -> Result<(i32, u32), Error> {
        let current = fiber_current();
        let serial = self.with(|s| {
            let serial = s.begin_wait(current);
            s.waiting.insert(current, Wait::Op(id));
            if let Some(slot) = s.ops.get_mut(id) {
                slot.fiber = current;
                slot.parked = true;
                slot.wait = serial;
            }
            serial
        });
        let mut raised: Option<Error> = None;
        // A full SQ flushes on push, so the CQE may already be here: check before parking.
        while !self.with(|s| s.ops.is_done(id)) {
            if let Err(e) = self.switch() {
                if raised.is_none() {
                    self.with(|s| s.cancel(id));
                    raised = Some(e);
                }
            }
        }
        let (result, flags) = self.with(|s| {
            s.end_wait(current, serial);
            s.ops.release(id)
        });
        if result >= 0 {
            // Completed: a Fiber#raise that came meanwhile waits for the next wait as well,
            // unless it is no exception at all (throw, Fiber#kill): those cannot wait.
            match raised.as_ref().map(deferrable) {
                None => {}
                Some(Some(exc)) => self.with(|s| {
                    s.pending.entry(current).or_insert(exc);
                }),
                Some(None) => return Err(raised.expect("raised")),
            }
            return Ok((result, flags));
        }
        let pending = self.with(|s| s.take_pending(current));
        if let Some(e) = raised {
            return Err(e);
        }
        if let Some(exc) = pending {
            return Err(exception_error(exc));
        }
        Ok((result, flags))
    }

    /// Raises the exception pending for the current fiber, if any: every wait starts here, so
    /// an interrupt whose op completed anyway arrives at the fiber's next wait.
    pub fn raise_pending(&self) -> Result<(), Error> {
        let current = fiber_current();
        match self.with(|s| s.take_pending(current)) {
            Some(exc) => Err(exception_error(exc)),
            None => Ok(()),
        }
    }

    /// Keeps `e` pending for the current fiber's next wait when it interrupted a read loop that
    /// had already read bytes (`done` > 0): a completed read wins, so the caller gets them;
    /// Ok(done) then. (A write loop raises instead, with the count: ruby/partial_write.rs.)
    pub fn keep_progress<T: Default + PartialEq>(&self, done: T, e: Error) -> Result<T, Error> {
        if done == T::default() {
            return Err(e);
        }
        match deferrable(&e) {
            Some(exc) => {
                let current = fiber_current();
                self.with(|s| {
                    s.pending.entry(current).or_insert(exc);
                });
                Ok(done)
            }
            None => Err(e),
        }
    }

    /// Pushes one SQE for a new op awaited by the current fiber and waits for its result.
    pub fn run_op(
        &self,
        build: impl FnOnce(&mut crate::ring::op::Slot) -> squeue::Entry,
        code: u8,
        pin: VALUE,
    ) -> Result<i32, Error> {
        self.run_tagged_op(None, build, code, pin)
    }

    /// `run_op`, with the op tagged with the fd it waits on (see ops/close.rs).
    pub fn run_tagged_op(
        &self,
        fd: Option<i32>,
        build: impl FnOnce(&mut crate::ring::op::Slot) -> squeue::Entry,
        code: u8,
        pin: VALUE,
    ) -> Result<i32, Error> {
        self.raise_pending()?;
        self.submit_and_await(fd, build, code, pin)
    }

    /// `run_tagged_op` even with an exception pending: for an op that must happen (close).
    pub fn submit_and_await(
        &self,
        fd: Option<i32>,
        build: impl FnOnce(&mut crate::ring::op::Slot) -> squeue::Entry,
        code: u8,
        pin: VALUE,
    ) -> Result<i32, Error> {
        let id = self.submit_awaited(fd, build, code, pin);
        self.await_op(id).map(|(r, _)| r)
    }

    /// Pushes the SQE of `submit_and_await`. Out of line: the SQE and what builds it would
    /// otherwise stay in a frame on the machine stack of the fiber while it waits.
    #[inline(never)]
    fn submit_awaited(
        &self,
        fd: Option<i32>,
        build: impl FnOnce(&mut crate::ring::op::Slot) -> squeue::Entry,
        code: u8,
        pin: VALUE,
    ) -> OpId {
        self.with(|s| {
            let id = s.ops.alloc(Kind::Await, NIL);
            if let Some(fd) = fd {
                s.ops.tag_fd(id, fd);
            }
            let slot = s.ops.get_mut(id).expect("fresh slot");
            if pin != NIL {
                slot.pinned.push(pin);
            }
            let sqe = build(slot).user_data(id.user_data());
            s.submit(&sqe, code);
            id
        })
    }

    /// Parks the current fiber until something schedules it; returns the value it was given.
    pub fn suspend_current(&self) -> Result<VALUE, Error> {
        self.suspend(Why::Suspended, NIL, None)
    }

    /// Parks the current fiber until something schedules it (→ that value) or, with a
    /// `timeout`, until it passes (→ TIMED_OUT). Its timer is stopped when it ends. `why` and
    /// `what` (a blocker, a fiber joined, or nil) are for gdb's list (debug_record.rs).
    pub fn suspend(&self, why: Why, what: VALUE, timeout: Option<std::time::Duration>) -> Result<VALUE, Error> {
        self.raise_pending()?;
        let current = fiber_current();
        let serial = self.with(|s| s.begin_suspension(current, why, what));
        let timer = timeout.map(|ts| self.start_timer(Kind::WakeTimer, ts, NIL, serial));
        let resumed = self.switch();
        if let Some(id) = timer {
            self.stop_timer(id);
        }
        let pending = self.with(|s| {
            s.end_wait(current, serial);
            s.take_pending(current)
        });
        let value = resumed?;
        match pending {
            Some(exc) => Err(exception_error(exc)),
            None => Ok(value),
        }
    }

    /// Lets the other fibers run once; with none runnable, first waits for a completion.
    pub fn run_others(&self) -> Result<(), Error> {
        if self.with(|s| s.runqueue.is_empty()) {
            self.wait_for_completions()?;
        }
        self.snooze()
    }

    /// Between two pieces of synchronous work (a copy_file_range): collects the completions
    /// that came meanwhile, without waiting, so a fiber whose op or timer finished runs too;
    /// then lets every runnable fiber run once. An interrupt for this fiber is raised.
    pub fn share_time(&self) -> Result<(), Error> {
        let others = self.with(|s| {
            if s.ops.in_flight() > 0 || s.wakeup.has_pending() {
                s.enter_nowait();
            }
            !s.runqueue.is_empty()
        });
        if others {
            self.snooze()
        } else {
            self.raise_pending()
        }
    }

    /// Lets every other runnable fiber run once, then continues.
    pub fn snooze(&self) -> Result<(), Error> {
        self.raise_pending()?;
        let current = fiber_current();
        let serial = self.with(|s| {
            let serial = s.begin_wait(current);
            s.queue_in_wait(current, NIL);
            serial
        });
        let resumed = self.switch();
        self.with(|s| s.end_wait(current, serial));
        resumed?;
        match self.with(|s| s.take_pending(current)) {
            Some(exc) => Err(exception_error(exc)),
            None => Ok(()),
        }
    }
}

/// rb_nogvl's function: one io_uring_enter with the GVL released.
///
/// # Safety
///
/// `data` must point at an `EnterArgs` that nothing else uses during the call.
unsafe extern "C" fn enter_without_gvl(data: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: the caller's contract: `data` is wait_for_completions' local EnterArgs, which
    // that frame does not touch until rb_nogvl returns. `enter` is a plain syscall.
    unsafe { (*(data as *mut crate::ring::EnterArgs)).enter() };
    std::ptr::null_mut()
}

impl State {
    pub fn submit(&mut self, sqe: &squeue::Entry, code: u8) {
        if let Some((_, slot)) = self.ops.lookup(sqe.get_user_data()) {
            slot.opcode = code;
            slot.submitted_ns = self.debug.clock_ns();
        }
        while !self.ring.try_push(sqe) {
            self.enter_nowait();
        }
        self.metrics.ops[code as usize & 63] += 1;
    }

    fn arm_wakeup(&mut self) {
        let Some(fd) = self.wakeup.fd() else {
            return;
        };
        let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(TAG_WAKEUP);
        self.submit(&sqe, opcode::PollAdd::CODE);
    }

    /// Submits what is queued and collects completions, without waiting.
    pub fn enter_nowait(&mut self) {
        let mut args = self.ring.enter_args(0);
        self.debug.entering(args.to_submit);
        args.enter();
        if args.to_submit > 0 {
            self.metrics.submits += 1;
        }
        self.debug.entered();
        self.reap();
    }

    /// The next run-queue entry that may run (the fiber lock's holder's only, while it is
    /// held); stale ones are dropped on the way, those of a wait set aside held back.
    fn pop_runnable(&mut self) -> Option<(VALUE, VALUE, Resumes)> {
        loop {
            let entry = if self.locked_to == NIL {
                self.runqueue.pop_front()?
            } else {
                let at = self.runqueue.iter().position(|r| r.fiber == self.locked_to)?;
                self.runqueue.remove(at)?
            };
            self.ticks += 1;
            if self.ticks >= POLL_INTERVAL {
                self.ticks = 0;
                if self.ops.in_flight() > 0 || self.wakeup.has_pending() {
                    self.enter_nowait();
                }
            }
            match self.entry_state(&entry) {
                Entry::Run => return Some((entry.fiber, self.take_value(&entry), entry.resumes)),
                Entry::Hold => self.held.push(entry),
                Entry::Drop => {}
            }
        }
    }

    pub fn reap(&mut self) {
        let mut batch = std::mem::take(&mut self.completions);
        self.ring.drain_completions(&mut batch);
        self.debug.reaped(batch.len());
        for c in batch.drain(..) {
            self.complete(c);
        }
        self.completions = batch;
    }

    fn complete(&mut self, c: Completion) {
        match c.user_data {
            TAG_IGNORE => {}
            TAG_WAKEUP => {
                self.wakeup.drain_signal();
                for remote in self.wakeup.take() {
                    self.deliver(remote);
                }
                if !has_more(c.flags) {
                    self.arm_wakeup();
                }
            }
            ud => {
                let Some((id, slot)) = self.ops.lookup(ud) else {
                    return;
                };
                match slot.kind {
                    Kind::Await => {
                        slot.result = c.result;
                        slot.flags = c.flags;
                        slot.state = OpState::Done;
                        if std::mem::take(&mut slot.parked) {
                            let (fiber, wait) = (slot.fiber, slot.wait);
                            self.runqueue.push_back(Runnable {
                                fiber,
                                value: NIL,
                                resumes: Resumes::Wait(wait),
                            });
                        }
                    }
                    Kind::Multishot => {
                        slot.push_completion((c.result, c.flags));
                        if !has_more(c.flags) {
                            slot.state = OpState::Done;
                        }
                        if std::mem::take(&mut slot.parked) {
                            let (fiber, wait) = (slot.fiber, slot.wait);
                            self.runqueue.push_back(Runnable {
                                fiber,
                                value: NIL,
                                resumes: Resumes::Wait(wait),
                            });
                        }
                    }
                    Kind::Timeout => {
                        let (fiber, exception) = (slot.fiber, slot.exception);
                        self.ops.release(id);
                        // (one the watchdog raised already is not raised a second time)
                        if c.result == -libc::ETIME && self.progress.ring_fired(exception) {
                            self.interrupt(fiber, exception);
                            if !self.waiting.contains_key(&fiber) && !self.is_in_wait(fiber) {
                                self.runqueue.push_back(Runnable {
                                    fiber,
                                    value: exception,
                                    resumes: Resumes::Forward,
                                });
                            }
                        }
                    }
                    Kind::WakeTimer => {
                        let (fiber, wait) = (slot.fiber, slot.wait);
                        self.ops.release(id);
                        if c.result == -libc::ETIME {
                            self.wake_suspension(fiber, wait, crate::machine::timers::TIMED_OUT);
                        }
                    }
                    Kind::Detached => {
                        let close_fd = slot.close_fds && c.result >= 0;
                        if !has_more(c.flags) {
                            self.ops.release(id);
                        }
                        if close_fd {
                            // SAFETY: a detached accept's CQE result is a new connection's fd
                            // that nobody else has seen: closing it is closing our own fd.
                            unsafe { libc::close(c.result) };
                        }
                        // A provided buffer a detached read_each was given goes back to the ring.
                        if let (Some(bid), Some(buffers)) = (crate::ring::buffer_id(c.flags), self.buffers.as_mut()) {
                            buffers.recycle(bid);
                        }
                    }
                }
            }
        }
    }

    /// Asks the kernel to cancel op `id`; its own CQE still follows.
    pub fn cancel(&mut self, id: OpId) {
        let Some(slot) = self.ops.get_mut(id) else {
            return;
        };
        if slot.state != OpState::InFlight || slot.cancel_requested {
            return;
        }
        slot.cancel_requested = true;
        // A timer goes straight to the ring's timeouts (ASYNC_CANCEL would search the io-wq
        // and poll lists first); either way it completes with -ECANCELED.
        if slot.opcode == opcode::Timeout::CODE {
            let sqe = opcode::TimeoutRemove::new(id.user_data()).build().user_data(TAG_IGNORE);
            self.submit(&sqe, opcode::TimeoutRemove::CODE);
        } else {
            let sqe = opcode::AsyncCancel::new(id.user_data()).build().user_data(TAG_IGNORE);
            self.submit(&sqe, opcode::AsyncCancel::CODE);
        }
    }

    pub fn take_pending(&mut self, fiber: VALUE) -> Option<VALUE> {
        if self.pending.is_empty() {
            None
        } else {
            if !self.failures.is_empty() {
                self.failures.remove(&fiber);
            }
            self.pending.remove(&fiber)
        }
    }

    /// A child's failure, raised in `parent` like any interrupt (see `failures`).
    pub fn interrupt_with_failure(&mut self, parent: VALUE, error: VALUE) {
        if !self.pending.contains_key(&parent) {
            self.failures.insert(parent, error);
        }
        self.interrupt(parent, error);
    }
}

impl Machine {
    /// Closes the ring and its eventfd now, at the end of the machine's thread, rather than
    /// when GC frees the machine: a Thread object, or a stale reference GC finds on a stack,
    /// would keep them open long after. What is in flight is cancelled and drained first. The
    /// machine refuses ops afterwards (IOError). Only on the owner thread; idempotent.
    pub fn shut_down(&self) {
        if !self.is_usable_here() {
            return;
        }
        self.closed.set(true);
        self.refuse_spin_requests();
        self.with(|s| {
            s.cancel_all_and_drain();
            s.buffers = None;
            s.dns_sockets = Default::default();
            s.ring.close();
        });
        self.wakeup.close();
    }
}

impl State {
    /// Cancels every op in flight and waits (bounded) for the kernel to let go of them. Ops it
    /// still holds after that are leaked, never freed under the kernel.
    fn cancel_all_and_drain(&mut self) {
        let ids: Vec<OpId> = self.ops.ids().collect();
        ids.into_iter().for_each(|id| self.cancel(id));
        let tick = types::Timespec::new().nsec(10_000_000);
        for _ in 0..100 {
            if self.ops.in_flight() == 0 {
                break;
            }
            let sqe = opcode::Timeout::new(&tick).build().user_data(TAG_IGNORE);
            self.submit(&sqe, opcode::Timeout::CODE);
            let mut args = self.ring.enter_args(1);
            args.enter();
            let mut batch = Vec::new();
            self.ring.drain_completions(&mut batch);
            for c in batch {
                if let Some((id, _)) = self.ops.lookup(c.user_data) {
                    if !has_more(c.flags) {
                        self.ops.release(id);
                    }
                }
            }
        }
        if self.ops.in_flight() > 0 {
            std::mem::forget(std::mem::take(&mut self.ops));
            self.debug.set_slots(self.ops.view());
        }
    }
}

impl Drop for Machine {
    /// Cancels whatever is still in flight and waits (bounded) for the kernel to let go of it
    /// before the ring and the op table's buffers are freed.
    fn drop(&mut self) {
        // In a forked child the ring is the parent's (its fd closed there at fork, see
        // private_fds.rs); after shut_down there is nothing left to do.
        if self.is_inherited_by_fork() || self.is_closed() {
            return;
        }
        let state = self.state.get_mut();
        // SAFETY: gettid takes nothing and cannot fail.
        if unsafe { libc::gettid() } != self.owner_tid {
            // GC on another thread: the ring must not be entered from here. The owner thread has
            // ended (a live one keeps its machine reachable), and the kernel cancelled its ops
            // when it exited; whatever the op table still holds is leaked, never freed under an
            // op, and the ring's memory goes with its fd.
            std::mem::forget(std::mem::take(&mut state.ops));
            return;
        }
        state.cancel_all_and_drain();
    }
}

/// The exception object of an error raised into a fiber, if it is one that can wait for the
/// fiber's next wait (not a throw, a break or Fiber#kill).
pub fn deferrable(e: &Error) -> Option<VALUE> {
    e.value().map(rb::raw).filter(|v| rb::is_exception(*v))
}

/// Whether `fiber` resumed another fiber that has not returned (CRuby's Fiber#to_s says
/// "(resumed by resuming)": it has no other way to tell).
fn is_resuming(fiber: VALUE) -> bool {
    // SAFETY: Fiber#to_s of a live fiber; whatever it raises is caught by protect.
    let Ok(text) = protect(|| unsafe { rb_sys::rb_funcall(fiber, names().to_s, 0) }) else {
        return false;
    };
    // SAFETY: the bytes are read at once, while `text` is on this stack and nothing runs.
    magnus::RString::from_value(rb::value(text)).is_some_and(|s| unsafe { s.as_slice() }.ends_with(b"by resuming)>"))
}

/// Raises `exception` in `fiber` with Fiber#raise, which, for a fiber that resumed another,
/// raises it in the one it resumed (Ruby 3.3+): where Ruby's own Timeout would raise it (its
/// thread raises in whatever fiber runs). Returns, like a transfer, what the next transfer
/// back to the current fiber passes.
fn forward(fiber: VALUE, exception: VALUE) -> Result<VALUE, Error> {
    // SAFETY: `fiber` is alive and resuming (checked), `exception` held by the caller for the
    // call; an exception raised back into this fiber meanwhile comes through protect as Err.
    protect(|| unsafe { rb_sys::rb_fiber_raise(fiber, 1, &exception as *const VALUE as *mut VALUE) })
}

/// The error that raises `exc` in the current fiber (a throw for a timeout's exception that
/// no rescue in its block may catch: throw_through.rs).
pub fn exception_error(exc: VALUE) -> Error {
    if let Some(throw) = crate::machine::throw_through::throw(exc) {
        return throw;
    }
    match Exception::from_value(rb::value(exc)) {
        Some(e) => Error::from(e),
        None => rb::type_error("not an exception"),
    }
}

/// The exception object inside an error, made up for non-local jumps (throw, break).
pub fn error_value(e: &Error) -> VALUE {
    match e.value() {
        Some(v) => rb::raw(v),
        None => non_local_jump_error(),
    }
}

/// The RuntimeError a fiber left by a non-local jump (throw, Fiber#kill) ends with, for join.
pub fn non_local_jump_error() -> VALUE {
    let msg = "fiber terminated by a non-local jump";
    // SAFETY: rb_eRuntimeError is set at boot and `msg` outlives the call; the allocation may
    // raise NoMemoryError, under protect: that exception is used then.
    let made =
        protect(|| unsafe { rb_sys::rb_exc_new(rb_sys::rb_eRuntimeError, msg.as_ptr() as *const _, msg.len() as _) });
    made.unwrap_or_else(|e| e.value().map_or(NIL, rb::raw))
}

fn ring_setup_error(e: std::io::Error) -> Error {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    let why = match errno {
        libc::ENOSYS => "io_uring is not available: the kernel lacks it or a seccomp filter (e.g. a container's default profile) blocks io_uring_setup",
        libc::EPERM => "io_uring is disabled: set the sysctl kernel.io_uring_disabled to 0, or run with the group it names in kernel.io_uring_group",
        libc::ENOMEM => "io_uring ring could not be allocated even at 64 entries: raise RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK= in systemd) or grant CAP_IPC_LOCK",
        libc::EMFILE | libc::ENFILE => "io_uring_setup: too many open files",
        _ => "io_uring_setup failed",
    };
    rb::errno_error(errno, why)
}
