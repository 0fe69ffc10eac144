//! Waiting with a deadline: a block under a timeout, a suspension that gives up, and a wait
//! for the first of several ops.
use io_uring::{opcode, types};
use magnus::Error;
use rb_sys::VALUE;

use crate::machine::{exception_error, Machine, Wait};
use crate::ring::op::{Kind, OpId, Owned};
use crate::ruby::value::{fiber_current, FALSE, NIL};

pub fn timespec_box(ts: libc::timespec) -> Box<types::Timespec> {
    Box::new(types::Timespec::new().sec(ts.tv_sec as u64).nsec(ts.tv_nsec as u32))
}

impl Machine {
    /// Starts a TIMEOUT op of `kind` for the current fiber.
    fn start_timer(&self, kind: Kind, ts: libc::timespec, exception: VALUE) -> OpId {
        let current = fiber_current();
        self.with(|s| {
            let id = s.ops.alloc(kind, current);
            let slot = s.ops.get_mut(id).expect("fresh slot");
            slot.exception = exception;
            let spec = timespec_box(ts);
            let sqe = opcode::Timeout::new(&*spec as *const _)
                .build()
                .user_data(id.user_data());
            slot.owned = Owned::Timespec(spec);
            s.submit(&sqe, opcode::Timeout::CODE);
            id
        })
    }

    /// Stops a timer that has not fired; its CQE (ECANCELED) is then simply released.
    fn stop_timer(&self, id: OpId) {
        self.with(|s| {
            if let Some(slot) = s.ops.get_mut(id) {
                slot.kind = Kind::Detached;
                slot.fiber = NIL;
                slot.exception = NIL;
                s.cancel(id);
            }
        });
    }

    /// Runs `body`; if it has not returned within `ts`, `exception` is raised in this fiber,
    /// interrupting (cancelling) whatever op it waits on.
    pub fn with_timeout<T>(
        &self,
        ts: libc::timespec,
        exception: VALUE,
        body: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let current = fiber_current();
        let id = self.start_timer(Kind::Timeout, ts, exception);
        let result = body();
        self.stop_timer(id);
        // A timeout that fired but was not delivered must not escape its block.
        self.with(|s| {
            if s.pending.get(&current) == Some(&exception) {
                s.pending.remove(&current);
            }
        });
        result
    }

    /// Parks the current fiber until it is scheduled (→ that value) or `ts` passes (→ false).
    pub fn suspend_with_timeout(&self, ts: libc::timespec) -> Result<VALUE, Error> {
        let id = self.start_timer(Kind::WakeTimer, ts, NIL);
        let resumed = self.suspend_current();
        self.stop_timer(id);
        resumed
    }

    /// Parks the current fiber until the first of `polls` (fd, poll mask) is ready or `timeout`
    /// passes; returns whether a poll fired. Every op is cancelled and drained before returning.
    pub fn await_any_poll(&self, polls: &[(i32, u32)], timeout: Option<libc::timespec>) -> Result<bool, Error> {
        self.raise_pending()?;
        let current = fiber_current();
        let mut ids: Vec<OpId> = self.with(|s| {
            polls
                .iter()
                .map(|&(fd, events)| {
                    let id = s.ops.alloc(Kind::Await, current);
                    s.ops.tag_fd(id, fd);
                    s.ops.get_mut(id).expect("fresh slot").parked = true;
                    let sqe = opcode::PollAdd::new(types::Fd(fd), events)
                        .build()
                        .user_data(id.user_data());
                    s.submit(&sqe, opcode::PollAdd::CODE);
                    id
                })
                .collect()
        });
        let timer = timeout.map(|ts| {
            let id = self.start_timer(Kind::Await, ts, NIL);
            self.with(|s| s.ops.get_mut(id).expect("fresh slot").parked = true);
            id
        });
        ids.extend(timer);
        self.with(|s| s.waiting.insert(current, Wait::Any));
        let mut raised: Option<Error> = None;
        // An interrupt (timeout, close, schedule with an exception) queues the fiber with a
        // pending exception: that ends the wait as well.
        let any_done =
            |m: &Machine| m.with(|s| ids.iter().any(|id| s.ops.is_done(*id)) || s.pending.contains_key(&current));
        while !any_done(self) && raised.is_none() {
            if let Err(e) = self.switch() {
                raised = Some(e);
            }
        }
        self.with(|s| ids.iter().for_each(|id| s.cancel(*id)));
        while !self.with(|s| ids.iter().all(|id| s.ops.is_done(*id))) {
            if let Err(e) = self.switch() {
                raised.get_or_insert(e);
            }
        }
        let (fired, pending) = self.with(|s| {
            s.waiting.remove(&current);
            let fired = ids[..polls.len()]
                .iter()
                .any(|id| s.ops.get(*id).is_some_and(|slot| slot.result > 0));
            ids.iter().for_each(|id| {
                s.ops.release(*id);
            });
            (fired, s.take_pending(current))
        });
        if let Some(e) = raised {
            return Err(e);
        }
        if let Some(exc) = pending {
            return Err(exception_error(exc));
        }
        Ok(fired)
    }
}

/// What a timed suspension returns when its timer fires.
pub const TIMED_OUT: VALUE = FALSE;
