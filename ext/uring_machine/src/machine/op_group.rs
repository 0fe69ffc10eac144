//! Several ops of one fiber in one wait: they are submitted together (one io_uring_enter
//! carries them all), the fiber parks until any completes, handles what completed, may submit
//! more, and parks again, all within the same wait. A DNS exchange uses it: the queries' sends
//! and recvs and the deadline's timer are one group.
//!
//! Every op owns the native memory the kernel touches (`Owned`), so the group never has to
//! wait for a cancelled op: when it ends, what is still in flight is cancelled and detached,
//! and the slot frees that memory at its CQE.
use std::time::Duration;

use io_uring::squeue;
use magnus::Error;
use rb_sys::VALUE;

use crate::machine::{exception_error, Machine, Wait};
use crate::ring::op::{Kind, OpId, Owned, Slot};
use crate::ruby::value::{self as rb, fiber_current, NIL};

/// An op of the group that has completed: its result and the memory it owned.
pub struct Completed {
    pub id: OpId,
    pub result: i32,
    pub owned: Owned,
}

pub struct OpGroup<'m> {
    machine: &'m Machine,
    fiber: VALUE,
    serial: u64,
    in_flight: Vec<OpId>,
    ended: bool,
}

impl<'m> OpGroup<'m> {
    /// Begins the wait of the current fiber (an exception pending for it is raised first).
    pub fn begin(machine: &'m Machine) -> Result<OpGroup<'m>, Error> {
        machine.raise_pending()?;
        let fiber = fiber_current();
        let serial = machine.with(|s| {
            let serial = s.begin_wait(fiber);
            // Wait::Any: an interrupt queues the fiber with the exception pending (waits.rs).
            s.waiting.insert(fiber, Wait::Any);
            serial
        });
        Ok(OpGroup {
            machine,
            fiber,
            serial,
            in_flight: Vec::new(),
            ended: false,
        })
    }

    /// Queues one op (`build` makes its SQE and gives its slot the memory it needs); it is
    /// submitted with the others at the fiber's next park. Its completion wakes the fiber when
    /// `wakes`; else it is only collected with the next one that does (an op linked to a later
    /// one, whose failure cancels that one, need not wake it).
    pub fn submit(&mut self, code: u8, wakes: bool, build: impl FnOnce(&mut Slot) -> squeue::Entry) -> OpId {
        let (fiber, serial) = (self.fiber, self.serial);
        let id = self.machine.with(|s| {
            let id = s.ops.alloc(Kind::Await, fiber);
            let slot = s.ops.get_mut(id).expect("fresh slot");
            slot.parked = wakes;
            slot.wait = serial;
            let sqe = build(slot).user_data(id.user_data());
            s.submit(&sqe, code);
            id
        });
        self.in_flight.push(id);
        id
    }

    /// A timer op that completes after `after` (its result: -ETIME).
    pub fn timer(&mut self, after: Duration) -> OpId {
        let id = self.machine.start_timer(Kind::Await, after, NIL, self.serial);
        self.machine.with(|s| {
            if let Some(slot) = s.ops.get_mut(id) {
                slot.parked = true;
            }
        });
        self.in_flight.push(id);
        id
    }

    /// Parks until at least one op has completed, and returns those that have (released). An
    /// exception raised into the fiber meanwhile ends the group (see `end`) and is returned.
    pub fn next(&mut self) -> Result<Vec<Completed>, Error> {
        loop {
            let fiber = self.fiber;
            let (done, interrupted) = self.machine.with(|s| {
                let mut done = Vec::new();
                self.in_flight.retain(|&id| {
                    if !s.ops.is_done(id) {
                        return true;
                    }
                    let owned = s
                        .ops
                        .get_mut(id)
                        .map_or(Owned::None, |slot| std::mem::replace(&mut slot.owned, Owned::None));
                    let (result, _) = s.ops.release(id);
                    done.push(Completed { id, result, owned });
                    false
                });
                (done, s.pending.contains_key(&fiber))
            });
            if !done.is_empty() {
                return Ok(done);
            }
            if interrupted {
                // (end takes the exception: it was pending a moment ago)
                let missing = || rb::io_error("an interrupted wait lost its exception");
                return Err(self.abort().err().unwrap_or_else(missing));
            }
            if let Err(e) = self.machine.switch() {
                // Raised by a plain transfer (Fiber#raise): ours to return, after the end.
                let _ = self.abort();
                return Err(e);
            }
        }
    }

    /// Ends the wait: what is still in flight is cancelled and detached (its slot frees its
    /// memory at its CQE). Returns the exception raised into the fiber during the wait, if any.
    pub fn end(&mut self) -> Result<(), Error> {
        self.finish(false)
    }

    /// `end` for a wait cut short (an exception, an early return): ops queued since the fiber
    /// last parked have not reached the kernel yet, and must before the caller closes the
    /// descriptors they name (a later submission could reach a new file with the same number).
    fn abort(&mut self) -> Result<(), Error> {
        self.finish(true)
    }

    fn finish(&mut self, flush: bool) -> Result<(), Error> {
        if !self.close_wait(flush) {
            return Ok(());
        }
        let fiber = self.fiber;
        match self.machine.with(|s| s.take_pending(fiber)) {
            Some(exc) => Err(exception_error(exc)),
            None => Ok(()),
        }
    }

    /// Detaches what is in flight and ends the fiber's wait (`flush`: submitting what is
    /// queued first); false if it had ended already.
    fn close_wait(&mut self, flush: bool) -> bool {
        if std::mem::replace(&mut self.ended, true) {
            return false;
        }
        let (fiber, serial) = (self.fiber, self.serial);
        let ids = std::mem::take(&mut self.in_flight);
        self.machine.with(|s| {
            for id in ids {
                if s.ops.is_done(id) {
                    s.ops.release(id); // its CQE came: nothing else would free it
                    continue;
                }
                if let Some(slot) = s.ops.get_mut(id) {
                    slot.kind = Kind::Detached;
                    slot.fiber = NIL;
                    slot.parked = false;
                }
                s.cancel(id);
            }
            s.end_wait(fiber, serial);
            if flush {
                s.enter_nowait();
            }
        });
        true
    }
}

impl Drop for OpGroup<'_> {
    /// A group left without `end` (an early return) ends here; an exception still pending
    /// stays pending for the fiber's next wait.
    fn drop(&mut self) {
        self.close_wait(true);
    }
}
