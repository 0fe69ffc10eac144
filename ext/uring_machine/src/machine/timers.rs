//! Waiting with a deadline: a block under a timeout, a suspension that gives up, and a wait
//! for the first of several ops. And pausing every timer of the machine (the debugger, while
//! its prompt is up), so that time spent stopped is not program time.
use std::time::{Duration, Instant};

use io_uring::{opcode, types};
use magnus::{Error, Value};
use rb_sys::VALUE;

use crate::machine::run_loop::State;
use crate::machine::{exception_error, watchdog, Machine, Wait};
use crate::ring::op::{Kind, OpId, Owned, Slot, State as OpState};
use crate::ring::readiness::{poll_now, FilteredPoll};
use crate::ruby::duration::ring_timespec;
use crate::ruby::value::{self as rb, fiber_current, FALSE, NIL};

fn duration_box(d: Duration) -> Box<types::Timespec> {
    Box::new(ring_timespec(d))
}

/// The SQE of a TIMEOUT op of `after` for `slot`, which keeps the timespec and its deadline (so
/// that `pause_timers` knows what is left of it). A timer too long for the clock to tell its
/// deadline (ruby/duration.rs) has none: it never fires, and pausing leaves it alone.
pub fn timer_sqe(slot: &mut Slot, after: Duration) -> io_uring::squeue::Entry {
    let spec = duration_box(after);
    let sqe = opcode::Timeout::new(&*spec as *const _).build();
    slot.owned = Owned::Timespec(spec);
    slot.set_deadline(Instant::now().checked_add(after));
    slot.deadline_ns =
        crate::machine::debug_record::now_ns().saturating_add(after.as_nanos().min(u64::MAX as u128) as u64);
    sqe
}

/// How long a paused timer is set to: far enough never to fire while the debugger is stopped.
const PAUSED_FOR: Duration = Duration::from_secs(366 * 24 * 3600);

impl State {
    /// Re-times the live TIMEOUT op `id` in place (IORING_TIMEOUT_UPDATE: no new op, the same
    /// user_data, nothing freed). The new timespec has its own detached slot that keeps it
    /// until the update's CQE; an update that finds the timer already fired gets ENOENT, and
    /// the timer's own CQE follows as usual.
    fn retime(&mut self, id: OpId, after: Duration) {
        let update = self.ops.alloc(Kind::Detached, NIL);
        let spec = duration_box(after.max(Duration::from_nanos(1)));
        let sqe = opcode::TimeoutUpdate::new(id.user_data(), &*spec as *const _)
            .build()
            .user_data(update.user_data());
        self.ops.get_mut(update).expect("fresh slot").owned = Owned::Timespec(spec);
        self.submit(&sqe, opcode::TimeoutUpdate::CODE);
    }

    /// The TIMEOUT ops that are still waiting to fire (not cancelled, not done).
    pub fn live_timers(&self) -> Vec<OpId> {
        self.ops
            .ids()
            .filter(|id| {
                self.ops.get(*id).is_some_and(|s| {
                    s.deadline().is_some()
                        && s.state == OpState::InFlight
                        && !s.cancel_requested
                        && s.kind != Kind::Detached
                })
            })
            .collect()
    }

    /// Time left before timer slot `slot` fires (what it had left when paused, while paused).
    fn time_left(slot: &Slot) -> Option<Duration> {
        slot.paused()
            .or_else(|| slot.deadline().map(|d| d.saturating_duration_since(Instant::now())))
    }
}

impl Machine {
    /// Starts a TIMEOUT op of `kind` for the current fiber; `wait`: the serial number of the
    /// wait it may end (0 for a `timeout`, which interrupts whatever the fiber waits on).
    pub(crate) fn start_timer(&self, kind: Kind, after: Duration, exception: VALUE, wait: u64) -> OpId {
        let current = fiber_current();
        self.with(|s| {
            let id = s.ops.alloc(kind, current);
            let slot = s.ops.get_mut(id).expect("fresh slot");
            slot.exception = exception;
            slot.wait = wait;
            let sqe = timer_sqe(slot, after).user_data(id.user_data());
            s.submit(&sqe, opcode::Timeout::CODE);
            id
        })
    }

    /// Stops a timer that has not fired; its CQE (ECANCELED) is then simply released.
    pub(crate) fn stop_timer(&self, id: OpId) {
        self.with(|s| {
            if let Some(slot) = s.ops.get_mut(id) {
                slot.kind = Kind::Detached;
                slot.fiber = NIL;
                slot.exception = NIL;
                s.cancel(id);
            }
        });
    }

    /// Runs `body`; if it has not returned within `after`, `exception` is raised in this fiber,
    /// interrupting (cancelling) whatever op it waits on. `None`: no time limit.
    pub fn with_timeout<T>(
        &self,
        after: Option<Duration>,
        exception: VALUE,
        body: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let Some(after) = after else {
            return body();
        };
        let current = fiber_current();
        let id = self.start_timer(Kind::Timeout, after, exception, 0);
        // Code that never comes back to the loop is interrupted by the watchdog instead.
        let watch = Instant::now()
            .checked_add(after)
            .map(|deadline| watchdog::watch(&self.progress, current, exception, deadline));
        let result = body();
        if let Some(watch) = watch {
            watchdog::unwatch(watch);
        }
        self.stop_timer(id);
        // A timeout that fired but was not delivered must not escape its block.
        self.with(|s| {
            if s.pending.get(&current) == Some(&exception) {
                s.pending.remove(&current);
            }
        });
        result
    }

    /// Parks the current fiber until the first of `polls` (fd, poll mask) is ready, as poll(2)
    /// says, or `timeout` passes; returns whether one is ready. Every op is cancelled and
    /// drained before returning.
    pub fn await_any_poll(&self, polls: &[(i32, u32)], timeout: Option<Duration>) -> Result<bool, Error> {
        let deadline = timeout.and_then(|after| Instant::now().checked_add(after));
        let mut filtered = false;
        loop {
            let left = timeout.map(|after| deadline.map_or(after, |d| d.saturating_duration_since(Instant::now())));
            if !self.await_polls(polls, left, filtered)? {
                return Ok(false);
            }
            if polls.iter().any(|&(fd, events)| poll_now(fd, events) != 0) {
                return Ok(true);
            }
            // What fired was a peer's shutdown alone (ring/readiness.rs), or readiness that
            // another fiber used up first: wait on, as poll(2) would.
            filtered = true;
        }
    }

    /// One round of await_any_poll: whether a poll fired. `filtered`: through epoll instances
    /// that report only what poll(2) would (ring/readiness.rs).
    fn await_polls(&self, polls: &[(i32, u32)], timeout: Option<Duration>, filtered: bool) -> Result<bool, Error> {
        self.raise_pending()?;
        let current = fiber_current();
        let serial = self.with(|s| s.begin_wait(current));
        let filters: Vec<Option<FilteredPoll>> = polls
            .iter()
            .map(|&(fd, events)| filtered.then(|| FilteredPoll::new(fd, events)).flatten())
            .collect();
        let mut ids: Vec<OpId> = self.with(|s| {
            polls
                .iter()
                .zip(&filters)
                .map(|(&(fd, events), filter)| {
                    let id = s.ops.alloc(Kind::Await, current);
                    s.ops.tag_fd(id, fd);
                    let slot = s.ops.get_mut(id).expect("fresh slot");
                    slot.parked = true;
                    slot.wait = serial;
                    let (target, events) = filter.as_ref().map_or((fd, events), FilteredPoll::target);
                    let sqe = opcode::PollAdd::new(types::Fd(target), events)
                        .build()
                        .user_data(id.user_data());
                    s.submit(&sqe, opcode::PollAdd::CODE);
                    id
                })
                .collect()
        });
        let timer = timeout.map(|after| {
            let id = self.start_timer(Kind::Await, after, NIL, serial);
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
            s.end_wait(current, serial);
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

impl Machine {
    /// __pause_timers__ → how many timers it paused: every TIMEOUT op of this machine that has
    /// not fired (sleeps, timed waits, timeouts) stops counting, until `__resume_timers__`.
    /// Timers started meanwhile run as usual. Pausing twice is a no-op.
    pub fn rb_pause_timers(&self) -> Result<usize, Error> {
        self.check_owner()?;
        Ok(self.with(|s| {
            if s.paused_timers.is_some() {
                return 0;
            }
            let ids = s.live_timers();
            let now = Instant::now();
            for id in ids.iter() {
                let slot = s.ops.get_mut(*id).expect("live timer");
                let left = slot
                    .deadline()
                    .map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
                slot.set_paused(Some(left));
                s.retime(*id, PAUSED_FOR);
            }
            let n = ids.len();
            s.paused_timers = Some(ids);
            n
        }))
    }

    /// __resume_timers__ → how many timers it resumed: each paused timer that still waits gets
    /// the time it had left when paused.
    pub fn rb_resume_timers(&self) -> Result<usize, Error> {
        self.check_owner()?;
        Ok(self.with(|s| {
            let Some(ids) = s.paused_timers.take() else {
                return 0;
            };
            let now = Instant::now();
            let mut resumed = 0;
            for id in ids {
                let Some(slot) = s.ops.get_mut(id) else {
                    continue; // fired or cancelled meanwhile, and released
                };
                let Some(left) = slot.paused() else {
                    continue;
                };
                slot.set_paused(None);
                if slot.state != OpState::InFlight || slot.cancel_requested {
                    continue;
                }
                slot.set_deadline(now.checked_add(left));
                s.retime(id, left);
                resumed += 1;
            }
            resumed
        }))
    }

    /// __timers_paused__ → whether the machine's timers are paused.
    pub fn rb_timers_paused(&self) -> bool {
        self.with(|s| s.paused_timers.is_some())
    }

    /// __waits__ → [[fiber, what, detail], ...]: each fiber parked on this machine and what it
    /// waits for: [:timer, seconds left] (sleep), [:op, "read"] (an op, by opcode name),
    /// [:poll, seconds left or nil] (IO.select / io_wait on several), [:blocked, object] (the
    /// scheduler's block hook: a Mutex, a Queue, ...), [:suspended, seconds left or nil] (a
    /// mailbox, a join, a timed wait). For the debugger's `fibers` command.
    pub fn rb_waits(&self) -> Result<Value, Error> {
        self.check_owner()?;
        let rows: Vec<WaitRow> = self.with(|s| {
            let timer_of = |fiber: VALUE| {
                s.ops.ids().find_map(|id| {
                    let slot = s.ops.get(id)?;
                    (slot.fiber == fiber && is_timer(slot) && slot.kind != Kind::Detached)
                        .then(|| State::time_left(slot))
                        .flatten()
                })
            };
            s.waiting
                .iter()
                .map(|(fiber, wait)| match *wait {
                    Wait::Op(id) => match s.ops.get(id) {
                        Some(slot) if is_timer(slot) => (*fiber, "timer", State::time_left(slot), None, NIL),
                        Some(slot) => (*fiber, "op", None, Some(op_name(slot.opcode)), NIL),
                        None => (*fiber, "op", None, Some("op"), NIL),
                    },
                    Wait::Any => (*fiber, "poll", timer_of(*fiber), None, NIL),
                    Wait::Suspended => match s.blocked_on.get(fiber) {
                        Some(blocker) => (*fiber, "blocked", timer_of(*fiber), None, *blocker),
                        None => (*fiber, "suspended", timer_of(*fiber), None, NIL),
                    },
                })
                .collect()
        });
        // Each fiber and blocker stays held by the machine (waiting, blocked_on) while the
        // rows are made: nothing here runs Ruby code that could resume one.
        let list = rb::ary_new_capa(rows.len())?;
        for (fiber, what, left, name, blocker) in rows {
            let detail = match (left, name) {
                (_, Some(name)) => rb::str_new(name)?,
                (Some(d), None) => rb::float(d.as_secs_f64())?,
                (None, None) => blocker,
            };
            let row = rb::ary_new_capa(3)?;
            rb::ary_push(row, fiber)?;
            rb::ary_push(row, rb::symbol(what)?)?;
            rb::ary_push(row, detail)?;
            rb::ary_push(list, row)?;
        }
        Ok(rb::value(list))
    }

    /// __runqueue__ → the fibers queued to run, in order (a fiber may appear twice).
    pub fn rb_runqueue(&self) -> Result<Value, Error> {
        self.check_owner()?;
        let fibers: Vec<VALUE> = self.with(|s| s.runqueue.iter().filter(|r| s.is_live(r)).map(|r| r.fiber).collect());
        // They stay queued (and marked by the machine) while the Array is made.
        let list = rb::ary_new_capa(fibers.len())?;
        for fiber in fibers {
            rb::ary_push(list, fiber)?;
        }
        Ok(rb::value(list))
    }
}

/// Whether `slot` is a TIMEOUT op (a timer that never fires has no deadline).
fn is_timer(slot: &Slot) -> bool {
    slot.opcode == opcode::Timeout::CODE
}

/// The name of an io_uring opcode, as the debugger shows what a fiber waits on.
fn op_name(code: u8) -> &'static str {
    use io_uring::opcode as o;
    match code {
        c if c == o::Read::CODE || c == o::ReadFixed::CODE || c == o::Readv::CODE => "read",
        c if c == o::Write::CODE || c == o::WriteFixed::CODE || c == o::Writev::CODE => "write",
        c if c == o::Recv::CODE || c == o::RecvMsg::CODE => "recv",
        c if c == o::Send::CODE || c == o::SendMsg::CODE => "send",
        c if c == o::Accept::CODE => "accept",
        c if c == o::Connect::CODE => "connect",
        c if c == o::PollAdd::CODE => "poll",
        c if c == o::Timeout::CODE => "timeout",
        c if c == o::Close::CODE => "close",
        c if c == o::OpenAt::CODE => "open",
        c if c == o::Statx::CODE => "statx",
        c if c == o::Fsync::CODE => "fsync",
        c if c == o::Splice::CODE => "splice",
        c if c == o::Tee::CODE => "tee",
        c if c == o::WaitId::CODE => "waitid",
        c if c == o::FutexWait::CODE => "futex_wait",
        _ => "op",
    }
}

/// One row of `__waits__`: the fiber, what it waits for, time left, the op's name, a blocker.
type WaitRow = (VALUE, &'static str, Option<Duration>, Option<&'static str>, VALUE);

/// What a timed suspension returns when its timer fires.
pub const TIMED_OUT: VALUE = FALSE;
