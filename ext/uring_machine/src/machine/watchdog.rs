//! Timeouts on code that never waits. A timeout's timer is an op in the ring, which only a
//! thread that comes back to its event loop sees: `Timeout.timeout(1) { nil while true }` would
//! run forever. Plain Ruby interrupts such a block from its timer thread (Thread#raise); so
//! does this watchdog, a Ruby thread of the process (lib/uring_machine/scheduler/
//! timeout_watchdog.rb) started with the first timeout. Each timeout is registered here with
//! its deadline; once that has passed, the watchdog raises the timeout's exception in the
//! timeout's thread if, one round later, that thread has neither switched fibers nor waited on
//! its ring meanwhile and still runs the timeout's fiber: a thread that goes back to its loop
//! gets its timeout from the ring as usual.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use magnus::{prelude::*, rb_sys::protect, Error, RModule, Value};
use rb_sys::VALUE;

use crate::ruby::names::names;
use crate::ruby::value::{self as rb, NIL};

/// How long a thread whose timeout passed may go on without switching before the watchdog
/// raises: one watchdog round.
const ROUND: Duration = Duration::from_millis(20);

/// With no timeout to watch, the watchdog sleeps this long, IDLE_ROUNDS times, before it
/// sleeps until woken: a program that runs one timeout after another does not wake it each
/// time (a new timeout wakes it only when it is due before the watchdog's next round).
const IDLE: Duration = Duration::from_secs(1);
const IDLE_ROUNDS: u32 = 10;

/// What a machine tells the watchdog about its thread, which it updates as it runs.
#[derive(Default)]
pub struct Progress {
    /// Fiber switches so far: a thread that switches is not stuck.
    switches: AtomicU64,
    /// Whether the thread waits on its ring now (its timers will wake it).
    in_ring: AtomicBool,
    /// The fiber the machine last handed control to.
    running: AtomicU64,
    /// The exception of the last timeout the ring fired, and of the last one the watchdog
    /// raised: each is raised once, by whichever came first (both run with the GVL held).
    fired: AtomicU64,
    raised: AtomicU64,
}

impl Progress {
    pub fn switched_to(&self, fiber: VALUE) {
        self.switches.fetch_add(1, Ordering::Relaxed);
        self.running.store(fiber, Ordering::Relaxed);
    }

    /// The ring fired the timeout of `exception`: whether it is to be raised (the watchdog has
    /// not raised it already).
    pub fn ring_fired(&self, exception: VALUE) -> bool {
        if self.raised.load(Ordering::Relaxed) == exception {
            return false;
        }
        self.fired.store(exception, Ordering::Relaxed);
        true
    }

    /// A new timeout raises `exception`: what an earlier timeout with the same exception object
    /// (a `with_error:` instance used again) left here is forgotten.
    fn forget(&self, exception: VALUE) {
        let _ = self
            .fired
            .compare_exchange(exception, 0, Ordering::Relaxed, Ordering::Relaxed);
        let _ = self
            .raised
            .compare_exchange(exception, 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn set_in_ring(&self, waiting: bool) {
        self.in_ring.store(waiting, Ordering::Relaxed);
    }
}

struct Watch {
    thread: VALUE,
    fiber: VALUE,
    exception: VALUE,
    deadline: Instant,
    progress: Arc<Progress>,
    /// The thread's switch count when the watchdog first saw the deadline passed.
    seen: Option<u64>,
}

struct Watchdog {
    watches: Option<HashMap<u64, Watch>>,
    next_id: u64,
    /// The watchdog thread (NIL until started) and the process it runs in: a forked child
    /// starts its own, and forgets its parent's timeouts.
    thread: VALUE,
    pid: u32,
    /// When the watchdog thread wakes next (None: when woken).
    wakes_at: Option<Instant>,
    /// Rounds in a row that found no timeout.
    idle_rounds: u32,
}

// SAFETY: the VALUEs are only read or used by a thread that holds the GVL (the registering
// thread, the watchdog thread); the Mutex orders their accesses.
unsafe impl Send for Watchdog {}

static WATCHDOG: Mutex<Watchdog> = Mutex::new(Watchdog {
    watches: None,
    next_id: 1,
    thread: NIL,
    pid: 0,
    wakes_at: None,
    idle_rounds: 0,
});

fn lock() -> std::sync::MutexGuard<'static, Watchdog> {
    // A panic cannot happen while it is held (plain Vec and field updates): never poisoned,
    // and if it were, its data is still whole.
    WATCHDOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers a timeout of `fiber` (the current one, on the current thread) that raises
/// `exception` at `deadline`; returns its id for `unwatch`. Starts the watchdog thread if
/// needed (again if it was killed), and wakes it if it would wake later than this deadline.
/// A watchdog that cannot be started (the VM is ending) leaves the timeout to the ring alone.
pub fn watch(progress: &Arc<Progress>, fiber: VALUE, exception: VALUE, deadline: Instant) -> u64 {
    progress.forget(exception);
    // (`fiber` runs now: a machine that never switched has not said so yet)
    progress.running.store(fiber, Ordering::Relaxed);
    // SAFETY: the current Thread object; no allocation, no raise.
    let thread = unsafe { rb_sys::rb_thread_current() };
    let pid = std::process::id();
    let now = Instant::now();
    let (id, watchdog, wake, overdue) = {
        let mut dog = lock();
        if dog.pid != pid {
            dog.watches = None;
            dog.thread = NIL;
            dog.pid = pid;
            dog.wakes_at = None;
        }
        let id = dog.next_id;
        dog.next_id += 1;
        dog.watches.get_or_insert_with(HashMap::new).insert(
            id,
            Watch {
                thread,
                fiber,
                exception,
                deadline,
                progress: Arc::clone(progress),
                seen: None,
            },
        );
        // (a round already due: the watchdog is late, or was killed and must be started again)
        let wake = dog.wakes_at.is_none_or(|at| at > deadline + ROUND || at < now);
        // A round more than a second late: the watchdog was killed (or is starved).
        let overdue = dog.wakes_at.is_some_and(|at| now > at + OVERDUE);
        (id, dog.thread, wake, overdue)
    };
    if watchdog == NIL || (overdue && !is_alive(watchdog)) {
        start_watchdog();
    } else if wake {
        // SAFETY: a Thread; a dead one (killed) raises ThreadError, caught by protect.
        if protect(|| unsafe { rb_sys::rb_thread_wakeup(watchdog) }).is_err() {
            start_watchdog();
        }
    }
    id
}

/// How late a round may be before `watch` looks whether the watchdog is alive.
const OVERDUE: Duration = Duration::from_secs(1);

fn is_alive(thread: VALUE) -> bool {
    // SAFETY: Thread#alive? of a Thread; a raise is caught by protect.
    protect(|| unsafe { rb_sys::rb_funcall(thread, names().alive_p, 0) }).is_ok_and(rb::truthy)
}

fn start_watchdog() {
    let started = (|| -> Result<Value, Error> {
        let module: RModule = rb::ruby().class_object().const_get("UringMachine")?;
        let watchdog: RModule = module.const_get("TimeoutWatchdog")?;
        watchdog.funcall("__start__", ())
    })();
    if let Ok(thread) = started {
        let mut dog = lock();
        dog.thread = rb::raw(thread);
        dog.wakes_at = None;
    }
}

/// Forgets timeout `id` (its block ended, or its exception was raised).
pub fn unwatch(id: u64) {
    if let Some(watches) = lock().watches.as_mut() {
        watches.remove(&id);
    }
}

/// UringMachine.__watchdog_ended__: the watchdog thread is ending (killed): the next timeout
/// starts another. Until then a timeout already running is left to the ring.
pub fn rb_watchdog_ended() {
    // SAFETY: the current Thread object; no allocation, no raise.
    let current = unsafe { rb_sys::rb_thread_current() };
    let mut dog = lock();
    if dog.thread == current {
        dog.thread = NIL;
        dog.wakes_at = None;
    }
}

/// UringMachine.__watchdog_round__ → seconds until the next round, or nil to sleep until woken:
/// raises each passed timeout whose thread is stuck in its fiber (see the module's doc).
pub fn rb_watchdog_round() -> Result<Value, Error> {
    let now = Instant::now();
    let mut stuck = Vec::new();
    let next = {
        let mut dog = lock();
        let mut next: Option<Instant> = None;
        dog.watches.get_or_insert_with(HashMap::new).retain(|_, w| {
            if w.deadline > now {
                next = Some(next.map_or(w.deadline, |n| n.min(w.deadline)));
                return true;
            }
            let switches = w.progress.switches.load(Ordering::Relaxed);
            let busy = !w.progress.in_ring.load(Ordering::Relaxed)
                && w.progress.running.load(Ordering::Relaxed) == w.fiber
                && w.progress.fired.load(Ordering::Relaxed) != w.exception;
            if busy && w.seen == Some(switches) {
                w.progress.raised.store(w.exception, Ordering::Relaxed);
                stuck.push((w.thread, w.exception));
                return false;
            }
            w.seen = busy.then_some(switches);
            let again = now + ROUND;
            next = Some(next.map_or(again, |n| n.min(again)));
            true
        });
        let next = match next {
            Some(n) => {
                dog.idle_rounds = 0;
                Some(n.max(now + ROUND))
            }
            None if dog.idle_rounds < IDLE_ROUNDS => {
                dog.idle_rounds += 1;
                Some(now + IDLE)
            }
            None => None,
        };
        dog.wakes_at = next;
        next
    };
    for (thread, exception) in stuck {
        // SAFETY: a live Thread and exception (registered by a timeout still running, which
        // holds them); Thread#raise's own errors are caught by protect.
        let _ = protect(|| unsafe { rb_sys::rb_funcall(thread, names().raise, 1, exception) });
    }
    match next {
        Some(at) => rb::float(at.saturating_duration_since(Instant::now()).as_secs_f64()).map(rb::value),
        None => Ok(rb::value(NIL)),
    }
}
