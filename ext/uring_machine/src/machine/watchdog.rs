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
}

impl Progress {
    pub fn switched_to(&self, fiber: VALUE) {
        self.switches.fetch_add(1, Ordering::Relaxed);
        self.running.store(fiber, Ordering::Relaxed);
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
/// needed, and wakes it if it would wake later than this deadline.
pub fn watch(progress: &Arc<Progress>, fiber: VALUE, exception: VALUE, deadline: Instant) -> Result<u64, Error> {
    // SAFETY: the current Thread object; no allocation, no raise.
    let thread = unsafe { rb_sys::rb_thread_current() };
    let pid = std::process::id();
    let (id, start, wake) = {
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
        let later = dog.wakes_at.is_none_or(|at| at > deadline + ROUND);
        (id, dog.thread == NIL, later && dog.thread != NIL)
    };
    if start {
        let module: RModule = rb::ruby().class_object().const_get("UringMachine")?;
        let watchdog: RModule = module.const_get("TimeoutWatchdog")?;
        let thread: Value = watchdog.funcall("__start__", ())?;
        lock().thread = rb::raw(thread);
    } else if wake {
        wake_watchdog();
    }
    Ok(id)
}

/// Forgets timeout `id` (its block ended, or its exception was raised).
pub fn unwatch(id: u64) {
    if let Some(watches) = lock().watches.as_mut() {
        watches.remove(&id);
    }
}

fn wake_watchdog() {
    let thread = lock().thread;
    if thread != NIL {
        // SAFETY: a live Thread (the watchdog never ends while the process runs); a dead one
        // raises ThreadError, caught by protect.
        let _ = protect(|| unsafe { rb_sys::rb_thread_wakeup(thread) });
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
            let busy =
                !w.progress.in_ring.load(Ordering::Relaxed) && w.progress.running.load(Ordering::Relaxed) == w.fiber;
            if busy && w.seen == Some(switches) {
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
