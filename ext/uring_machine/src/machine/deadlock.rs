//! No silent hang: when the machine's loop finds nothing to run and nothing that could ever
//! wake a fiber (no op in flight, so no timer and no fd wait; no wake-up or spin request from
//! another thread queued; no other Ruby thread alive (but the timeout watchdog), so nobody
//! could send one, and no signal trap of the program's, both checked in Ruby; no fiber in a `sleep` without a duration, which CRuby
//! does not call a deadlock either: a signal may end it), every fiber waits for a message, a join or an explicit
//! resume that only a fiber of this thread could give: a deadlock. UringMachine::DeadlockError
//! is raised in the main fiber of the tree (the thread's root fiber), as CRuby raises fatal
//! "No live threads left. Deadlock?" for threads. Conservative: any doubt and the loop waits.
use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::machine::fibers::tree_top;
use crate::machine::run_loop::{State, Wait};
use crate::machine::Machine;
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, fiber_current, NIL};

impl State {
    /// Whether nothing of this machine's own can wake a fiber ever again: nothing queued or
    /// held, no op in flight, no wake-up queued, no fiber lock, no paused timers, no endless
    /// sleep, and every fiber it knows waits in a suspension.
    fn nothing_can_wake(&self) -> bool {
        self.runqueue.is_empty()
            && self.held.is_empty()
            && self.ops.in_flight() == 0
            && !self.wakeup.has_pending()
            && self.locked_to == NIL
            && self.paused_timers.is_none()
            && self.sleeping_forever == 0
            && self.waiting.values().all(|w| matches!(w, Wait::Suspended))
    }
}

impl Machine {
    /// Raises UringMachine::DeadlockError in the thread's main fiber when nothing can ever wake
    /// any fiber of this machine (see the module comment); whether it did. Called by the loop,
    /// with no borrow of the state held, before it would wait on the ring.
    pub fn raise_deadlock(&self) -> Result<bool, Error> {
        if self.spin_requests().has_pending() || !self.with(|s| s.nothing_can_wake()) {
            return Ok(false);
        }
        let main = tree_top(fiber_current());
        if !self.with(|s| s.is_in_wait(main)) {
            return Ok(false); // it runs outside this machine: something else may wake us
        }
        let Ok(module) = rb::class_named("UringMachine") else {
            return Ok(false);
        };
        // SAFETY: `module` is a constant's module and `main` a fiber the machine holds (it is in
        // a wait); __deadlock__ returns the exception, or nil when another thread or a signal
        // trap could still end a wait; whatever it raises is caught by protect.
        // (a signal's exception raised while that Ruby code ran is the caller's to route)
        let error: VALUE = match protect(|| unsafe { rb_sys::rb_funcall(module, names().deadlock, 1, main) }) {
            Ok(v) if v != NIL => v,
            Ok(_) => return Ok(false),
            Err(e) => return Err(e),
        };
        // Another thread may have woken a fiber as it ended (Thread#join's unblock) and left
        // Thread.list meanwhile: its wake-up is then waiting to be delivered. Not a deadlock.
        if self.wakeup().has_pending() || self.spin_requests().has_pending() {
            return Ok(false);
        }
        self.with(|s| s.deliver_signal(main, error));
        Ok(true)
    }
}
