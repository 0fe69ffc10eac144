//! Waits and the wake-ups that end them: a wake-up wakes only the wait it was issued for.
//!
//! Each wait of a fiber (an op, a suspension, a snooze, a poll on several fds) gets a serial
//! number when it begins, and its completions and timers queue the fiber for that wait only: a
//! run-queue entry that comes up after its wait ended another way (it timed out, an exception
//! was raised into the fiber, a plain transfer resumed it) is dropped, never handed to the
//! fiber's next wait.
//!
//! A value sent to a suspended fiber (`schedule`, `unblock`, a mailbox, a join) belongs to a
//! suspension episode: the suspension it is in, or, when it is not suspended yet, its next one.
//! CRuby lists a fiber as a waiter before it calls `block` or `kernel_sleep` (a condition
//! variable's waiter even unlocks its mutex in between, which may let another thread run and
//! signal it), and a Machine API user does the same (`waiters << Fiber.current; suspend`): such
//! an early wake-up is kept for the suspension that follows. But a wake-up sent before the
//! fiber's last suspension ended (the machine's clock says when, see `Remote::stamp`) was for
//! that suspension, and is dropped: it never ends a later sleep.
//!
//! A fiber can begin a wait inside another of its waits: a trap handler or a finalizer that
//! Ruby runs while the fiber waits on the ring may do I/O. The outer wait is set aside whole
//! and its wake-ups are held back until the inner one ends.
use rb_sys::VALUE;

use crate::machine::debug_record::Why;
use crate::machine::run_loop::{Machine, State, Wait};
use crate::ring::wakeup::{Remote, Wake};
use crate::ruby::value::NIL;

/// Which state of its fiber a run-queue entry may resume.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Resumes {
    /// The wait with this serial number, and nothing else.
    Wait(u64),
    /// The fiber while it is in no wait of this machine: a new fiber, or one that left by a
    /// plain transfer (Fiber#raise).
    Idle,
    /// Like `Idle`, with the value kept for the fiber (`State::early`), unless its next
    /// suspension took it first.
    Early,
    /// A timeout's exception (the entry's value) for a fiber in no wait of this machine,
    /// because it resumed another fiber (Enumerator#next) that waits here: Fiber#raise takes it
    /// there (`Machine::forward`).
    Forward,
}

/// A run-queue entry: `fiber` is to be resumed with `value`.
#[derive(Clone, Copy)]
pub struct Runnable {
    pub fiber: VALUE,
    pub value: VALUE,
    pub resumes: Resumes,
}

/// The wait a fiber is in: its serial number, and whether it is a suspension (which a value
/// sent to the fiber ends), with its entry in gdb's list of suspensions (debug_record.rs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InWait {
    pub serial: u64,
    pub suspension: Option<u32>,
}

/// What the machine knows of a fiber's waits (`State::waits`).
#[derive(Default)]
pub struct FiberWaits {
    /// The wait it is in, from its start to its end, woken or not (None between waits).
    pub current: Option<InWait>,
    /// When its last suspension ended, on the wake-up clock (0: none yet).
    pub last_end: u64,
}

/// A wait that an inner wait of the same fiber set aside, with what it waits on (None once
/// something woke it).
pub struct OuterWait {
    at: InWait,
    wait: Option<Wait>,
}

/// What to do with a run-queue entry that comes up.
pub enum Entry {
    Run,
    /// Its wait is over: a stale wake-up.
    Drop,
    /// Its wait was set aside by an inner one: queued again when that one ends.
    Hold,
}

impl Machine {
    /// Delivers a wake-up from any thread: at once on the machine's own thread, else through
    /// its thread-safe queue, which the machine's thread drains and delivers from.
    pub fn deliver_from_any_thread(&self, remote: Remote) {
        if self.is_owner_thread() {
            self.with(|s| s.deliver(remote));
        } else {
            self.wakeup().push(remote);
        }
    }
}

impl State {
    /// Begins a wait of `fiber` that is no suspension (an op, a snooze, a poll) and returns its
    /// serial number, for `end_wait` and for the wake-ups meant for it. A wait the fiber is in
    /// already is set aside until this one ends.
    pub fn begin_wait(&mut self, fiber: VALUE) -> u64 {
        self.begin_listed_wait(fiber, None)
    }

    /// `begin_wait`; `suspension`: a suspension, with its entry in gdb's list.
    fn begin_listed_wait(&mut self, fiber: VALUE, suspension: Option<u32>) -> u64 {
        let serial = self.wakeup.tick();
        let waits = self.waits.entry(fiber).or_default();
        if let Some(outer) = waits.current.replace(InWait { serial, suspension }) {
            let wait = self.waiting.remove(&fiber);
            self.outer_waits
                .entry(fiber)
                .or_default()
                .push(OuterWait { at: outer, wait });
        }
        serial
    }

    /// Begins a suspension of `fiber`: it waits for a value (a value that came early wakes it
    /// at once) or an exception; `why` and `what` for gdb's list.
    pub fn begin_suspension(&mut self, fiber: VALUE, why: Why, what: VALUE) -> u64 {
        let listed = self.debug.begin_suspension(fiber, why, what);
        let serial = self.begin_listed_wait(fiber, Some(listed));
        self.waiting.insert(fiber, Wait::Suspended);
        if !self.early.is_empty() {
            if let Some(value) = self.early.remove(&fiber) {
                self.wake_suspension(fiber, serial, value);
            }
        }
        serial
    }

    /// Ends wait `serial` of `fiber`: nothing can resume it any more. An outer wait that it set
    /// aside goes on, and the wake-ups held back for that one are queued again, first.
    pub fn end_wait(&mut self, fiber: VALUE, serial: u64) {
        let Some(waits) = self.waits.get_mut(&fiber) else {
            return;
        };
        let ended = match waits.current {
            Some(w) if w.serial == serial => w,
            _ => return, // not this wait's end (cannot happen)
        };
        waits.current = None;
        let nested = !self.outer_waits.is_empty() && self.outer_waits.contains_key(&fiber);
        if let Some(listed) = ended.suspension {
            self.debug.end_suspension(listed);
        }
        if ended.suspension.is_some() && !nested {
            // The episode is over: what was sent before now was for it.
            waits.last_end = self.wakeup.tick();
        }
        self.waiting.remove(&fiber);
        let Some(outer) = self.pop_outer_wait(fiber) else {
            return;
        };
        if let Some(waits) = self.waits.get_mut(&fiber) {
            waits.current = Some(outer.at);
        }
        if let Some(wait) = outer.wait {
            self.waiting.insert(fiber, wait);
        }
        let resumes = Resumes::Wait(outer.at.serial);
        let mut held = Vec::new();
        self.held.retain(|r| {
            let mine = r.fiber == fiber && r.resumes == resumes;
            if mine {
                held.push(*r);
            }
            !mine
        });
        held.into_iter().rev().for_each(|r| self.runqueue.push_front(r));
        if outer.at.suspension.is_some() {
            if let Some(value) = self.early.remove(&fiber) {
                self.wake_suspension(fiber, outer.at.serial, value);
            }
        }
    }

    /// The wait of `fiber` that its ending inner wait had set aside, if any.
    fn pop_outer_wait(&mut self, fiber: VALUE) -> Option<OuterWait> {
        if self.outer_waits.is_empty() {
            return None;
        }
        let stack = self.outer_waits.get_mut(&fiber)?;
        let outer = stack.pop();
        if stack.is_empty() {
            self.outer_waits.remove(&fiber);
        }
        outer
    }

    /// Forgets what this machine knew of a fiber that has finished.
    pub fn forget_fiber(&mut self, fiber: VALUE) {
        self.waits.remove(&fiber);
        self.early.remove(&fiber);
    }

    /// Whether `entry` may run now, is stale, or waits for an inner wait of its fiber to end.
    pub fn entry_state(&self, entry: &Runnable) -> Entry {
        let current = self.wait_of(entry.fiber);
        match entry.resumes {
            Resumes::Wait(serial) if current.is_some_and(|w| w.serial == serial) => Entry::Run,
            Resumes::Wait(serial) if !self.outer_waits.is_empty() && self.is_outer_wait(entry.fiber, serial) => {
                Entry::Hold
            }
            Resumes::Wait(_) => Entry::Drop,
            _ if current.is_some() => Entry::Drop,
            Resumes::Early if !self.early.contains_key(&entry.fiber) => Entry::Drop,
            _ => Entry::Run,
        }
    }

    /// The wait `fiber` is in.
    pub fn wait_of(&self, fiber: VALUE) -> Option<InWait> {
        self.waits.get(&fiber).and_then(|w| w.current)
    }

    /// Whether `fiber` is in a wait (woken or not).
    pub fn is_in_wait(&self, fiber: VALUE) -> bool {
        self.wait_of(fiber).is_some()
    }

    /// Whether `entry` will resume its fiber when it comes up (for lists of what is runnable).
    pub fn is_live(&self, entry: &Runnable) -> bool {
        !matches!(self.entry_state(entry), Entry::Drop)
    }

    fn is_outer_wait(&self, fiber: VALUE, serial: u64) -> bool {
        self.outer_waits
            .get(&fiber)
            .is_some_and(|outer| outer.iter().any(|o| o.at.serial == serial))
    }

    /// The value an entry that is about to run resumes its fiber with.
    pub fn take_value(&mut self, entry: &Runnable) -> VALUE {
        match entry.resumes {
            Resumes::Early => self.early.remove(&entry.fiber).unwrap_or(NIL),
            _ => entry.value,
        }
    }

    /// Queues `fiber` to be resumed with `value` in the wait it is in now (if any).
    pub fn queue_in_wait(&mut self, fiber: VALUE, value: VALUE) {
        let resumes = self.wait_of(fiber).map_or(Resumes::Idle, |w| Resumes::Wait(w.serial));
        self.runqueue.push_back(Runnable { fiber, value, resumes });
    }

    /// Queues a new fiber (in no wait) to start at the next switch.
    pub fn queue_start(&mut self, fiber: VALUE) {
        self.runqueue.push_back(Runnable {
            fiber,
            value: NIL,
            resumes: Resumes::Idle,
        });
    }

    /// Resumes `fiber` with `value` if it is suspended in wait `serial` (its current wait or
    /// one set aside) and nothing woke that wait yet; whether it did.
    pub fn wake_suspension(&mut self, fiber: VALUE, serial: u64, value: VALUE) -> bool {
        if self.wait_of(fiber).is_some_and(|w| w.serial == serial) {
            if self.waiting.get(&fiber) != Some(&Wait::Suspended) {
                return false;
            }
            self.waiting.remove(&fiber);
        } else {
            let outer = self
                .outer_waits
                .get_mut(&fiber)
                .and_then(|outer| outer.iter_mut().find(|o| o.at.serial == serial));
            match outer {
                Some(o) if o.wait == Some(Wait::Suspended) => o.wait = None,
                _ => return false,
            }
        }
        self.runqueue.push_back(Runnable {
            fiber,
            value,
            resumes: Resumes::Wait(serial),
        });
        true
    }

    /// Delivers a wake-up (see `Wake`) on the machine's thread.
    pub fn deliver(&mut self, remote: Remote) {
        if self.entering_wait {
            self.wakeup.signal(); // a trap handler run as the ring wait begins: end that wait
        }
        let Remote {
            fiber,
            value,
            wake,
            stamp,
        } = remote;
        if wake == Wake::Raise {
            self.raise_in(fiber, value);
            return;
        }
        let (current, last_end) = self.waits.get(&fiber).map_or((None, 0), |w| (w.current, w.last_end));
        // Sent before the fiber's last suspension ended (never so for one sent now): it was for
        // that suspension.
        if stamp <= last_end {
            return;
        }
        match current {
            // Unless something woke it already: then this episode has had its wake-up.
            Some(w) if w.suspension.is_some() => {
                self.wake_suspension(fiber, w.serial, value);
            }
            // Running, or busy with an op: the value waits for its next suspension.
            Some(_) => {
                self.early.entry(fiber).or_insert(value);
            }
            None => {
                self.early.entry(fiber).or_insert(value);
                // A fiber in no wait (a new one) starts, unless it suspends first.
                if wake == Wake::Schedule {
                    self.runqueue.push_back(Runnable {
                        fiber,
                        value: NIL,
                        resumes: Resumes::Early,
                    });
                }
            }
        }
    }

    /// Resumes `fiber`'s suspension with `value` (see `Wake::Resume`).
    pub fn resume_suspended(&mut self, fiber: VALUE, value: VALUE) {
        self.deliver(Remote::new(fiber, value, Wake::Resume));
    }

    /// Raises `exception` in `fiber`: it interrupts the wait the fiber is in, or, for a fiber
    /// in none, is raised when it next runs (a new fiber starts for that).
    fn raise_in(&mut self, fiber: VALUE, exception: VALUE) {
        if self.waiting.contains_key(&fiber) {
            self.interrupt(fiber, exception);
            return;
        }
        self.pending.entry(fiber).or_insert(exception);
        if !self.is_in_wait(fiber) {
            self.runqueue.push_back(Runnable {
                fiber,
                value: NIL,
                resumes: Resumes::Idle,
            });
        }
    }

    /// Raises `exception` in `fiber` at its next resumption, waking it if it is parked.
    pub fn interrupt(&mut self, fiber: VALUE, exception: VALUE) {
        if self.entering_wait {
            self.wakeup.signal(); // as in deliver
        }
        let already_pending = self.pending.contains_key(&fiber);
        self.pending.entry(fiber).or_insert(exception);
        match self.waiting.get(&fiber).copied() {
            Some(Wait::Op(id)) => self.cancel(id),
            // A second interrupt must not queue it twice; a wait for several polls checks for
            // a pending exception before it parks.
            Some(Wait::Any) if !already_pending => self.queue_in_wait(fiber, NIL),
            Some(Wait::Any) => {}
            Some(Wait::Suspended) => {
                self.waiting.remove(&fiber);
                self.queue_in_wait(fiber, NIL);
            }
            None => {}
        }
    }
}
