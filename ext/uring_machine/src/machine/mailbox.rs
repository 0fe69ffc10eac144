//! UringMachine::Mailbox: the message queue of a fiber (Fiber#<<, UringMachine.receive), in
//! Rust because it is on the hot path of every message. Any fiber of any thread may push;
//! waiting receivers and senders (a full mailbox, when it has a limit) park on their own
//! machine and are woken through it (its thread-safe queue from another thread). No lock: every
//! call holds the GVL, and no borrow is held across a call back into Ruby: every borrow of the
//! queue spans plain Rust only (no allocation, so no GC and no mark while one is live).
use std::cell::RefCell;
use std::collections::VecDeque;

use magnus::{prelude::*, rb_sys::protect, typed_data::Obj, DataTypeFunctions, Error, TypedData, Value};
use rb_sys::VALUE;

use crate::machine::debug_record::Why;
use crate::machine::fibers::{check_fiber, machine_value_of};
use crate::machine::Machine;
use crate::ring::wakeup::{Remote, Wake};
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, fiber_current, raw, NIL};

/// A fiber waiting on a mailbox, and the machine that runs it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Waiter {
    fiber: VALUE,
    machine: VALUE,
}

#[derive(Default)]
struct Inner {
    messages: VecDeque<VALUE>,
    /// 0: no limit.
    limit: usize,
    receivers: VecDeque<Waiter>,
    senders: VecDeque<Waiter>,
}

impl Inner {
    fn has_room(&self) -> bool {
        self.limit == 0 || self.messages.len() < self.limit
    }

    /// The senders that may go on now that there is room.
    fn senders_to_wake(&mut self) -> Vec<Waiter> {
        let room = if self.limit == 0 {
            self.senders.len()
        } else {
            self.limit.saturating_sub(self.messages.len())
        };
        let n = room.min(self.senders.len());
        self.senders.drain(..n).collect()
    }
}

#[derive(TypedData, Default)]
#[magnus(class = "UringMachine::Mailbox", free_immediately, size, mark)]
pub struct Mailbox {
    inner: RefCell<Inner>,
}

impl DataTypeFunctions for Mailbox {
    fn mark(&self, _marker: &magnus::gc::Marker) {
        // GC runs at an allocation, and none happens while the queue is borrowed mutably (see
        // the module comment); were one to, marking could neither read the queue (that would
        // alias the live &mut) nor skip it (its messages would be freed): stop there.
        let Ok(inner) = self.inner.try_borrow() else {
            rb::gc_mark_conflict("UringMachine::Mailbox")
        };
        inner.messages.iter().for_each(|m| rb::mark(*m));
        for w in inner.receivers.iter().chain(inner.senders.iter()) {
            rb::mark(w.fiber);
            rb::mark(w.machine);
        }
    }
}

/// The current fiber, and the machine it waits on: the one that started it, else
/// UringMachine.current_machine's choice.
fn current_waiter() -> Result<(Waiter, Obj<Machine>), Error> {
    rb::root_fiber_ready()?; // any thread may park here first
    let fiber = fiber_current();
    let mut machine = machine_value_of(fiber);
    if machine == NIL {
        let module = rb::class_named("UringMachine")?;
        // SAFETY: `module` is the UringMachine module (a constant); whatever
        // current_machine raises is caught by protect.
        machine = protect(|| unsafe { rb_sys::rb_funcall(module, names().current_machine, 0) })?;
    }
    let obj = Obj::<Machine>::try_convert(rb::value(machine))?;
    Ok((Waiter { fiber, machine }, obj))
}

/// Resumes a waiter that is suspended on its machine, from any thread.
fn wake(w: Waiter) {
    let Ok(machine) = Obj::<Machine>::try_convert(rb::value(w.machine)) else {
        return;
    };
    if machine.is_inherited_by_fork() {
        return;
    }
    machine.deliver_from_any_thread(Remote::new(w.fiber, NIL, Wake::Resume));
}

impl Mailbox {
    /// push(message) → self: adds the message, waiting while the mailbox is full.
    pub fn rb_push(rb_self: Obj<Mailbox>, message: Value) -> Result<Obj<Mailbox>, Error> {
        let message = raw(message);
        let mut me: Option<(Waiter, Obj<Machine>)> = None;
        loop {
            let pushed = {
                let mut inner = rb_self.inner.borrow_mut();
                if inner.has_room() {
                    inner.messages.push_back(message);
                    Some(inner.receivers.pop_front())
                } else {
                    None
                }
            };
            if let Some(receiver) = pushed {
                receiver.into_iter().for_each(wake);
                return Ok(rb_self);
            }
            rb_self.park(&mut me, Why::Send, |inner| &mut inner.senders)?;
        }
    }

    /// receive { |message| } → the oldest message, or the oldest one the block is true for
    /// (the others stay, in order); waits until there is one.
    pub fn rb_receive(&self) -> Result<Value, Error> {
        // SAFETY: rb_block_given_p only reads the current frame (this method's, called from
        // Ruby with the GVL); it allocates nothing and cannot raise.
        let selective = unsafe { rb_sys::rb_block_given_p() } != 0;
        let mut me: Option<(Waiter, Obj<Machine>)> = None;
        loop {
            if let Some(message) = self.take(selective)? {
                return Ok(rb::value(message));
            }
            self.park(&mut me, Why::Receive, |inner| &mut inner.receivers)?;
        }
    }

    /// Suspends the current fiber, listed in `line` (the senders or the receivers: `why`) until
    /// a wake-up; `me`, the fiber and its machine, is looked up on the first call, which returns
    /// without waiting.
    fn park(
        &self,
        me: &mut Option<(Waiter, Obj<Machine>)>,
        why: Why,
        line: fn(&mut Inner) -> &mut VecDeque<Waiter>,
    ) -> Result<(), Error> {
        if me.is_none() {
            *me = Some(current_waiter()?);
            // Finding the machine may run Ruby code (current_machine), and with it a trap
            // handler that sends the very message awaited: the caller looks again first.
            return Ok(());
        }
        let (waiter, machine) = me.as_ref().expect("set above");
        line(&mut self.inner.borrow_mut()).push_back(*waiter);
        let waited = machine.suspend(why, NIL, None);
        line(&mut self.inner.borrow_mut()).retain(|w| w != waiter);
        waited.map(|_| ())
    }

    /// Takes the first (selected) message, waking a sender that waits for room.
    fn take(&self, selective: bool) -> Result<Option<VALUE>, Error> {
        let index = if selective { self.select()? } else { Some(0) };
        let (message, senders) = {
            let mut inner = self.inner.borrow_mut();
            let Some(message) = index.and_then(|i| inner.messages.remove(i)) else {
                return Ok(None);
            };
            (message, inner.senders_to_wake())
        };
        senders.into_iter().for_each(wake);
        Ok(Some(message))
    }

    /// The index of the first message the block is true for. The block may switch fibers:
    /// messages are read one at a time, never with the queue borrowed.
    fn select(&self) -> Result<Option<usize>, Error> {
        let mut i = 0;
        loop {
            let Some(message) = self.inner.borrow().messages.get(i).copied() else {
                return Ok(None);
            };
            // SAFETY: `message` stays in the (marked) queue or is held by this frame; the block
            // runs under protect, which catches its raise, break or throw.
            let chosen = protect(|| unsafe { rb_sys::rb_yield(message) })?;
            if rb::truthy(chosen) {
                // A concurrent receiver may have taken messages meanwhile: find it again.
                return Ok(self.inner.borrow().messages.iter().position(|m| *m == message));
            }
            i += 1;
        }
    }

    /// receive_all_pending → every message there is (an Array), without waiting. The messages
    /// stay in the queue, where GC marks them, until the Array holds them all: making the
    /// Array allocates, and GC may run then.
    pub fn rb_receive_all_pending(&self) -> Result<Value, Error> {
        let ary = rb::ary_new_capa(self.inner.borrow().messages.len())?;
        // Pushing runs no Ruby code (no fiber switch, no other thread): the queue's head is
        // still what was copied when it is taken off below.
        let mut copied = 0;
        loop {
            let next = self.inner.borrow().messages.get(copied).copied();
            let Some(message) = next else {
                break;
            };
            rb::ary_push(ary, message)?;
            copied += 1;
        }
        let senders = {
            let mut inner = self.inner.borrow_mut();
            inner.messages.drain(..copied);
            inner.senders_to_wake()
        };
        senders.into_iter().for_each(wake);
        Ok(rb::value(ary))
    }

    /// __waiters__ → [receivers, senders]: the fibers waiting to take a message, and those
    /// waiting for room (for the debugger's list of fibers).
    pub fn rb_waiters(&self) -> Result<Value, Error> {
        // Each waiting fiber stays listed (and marked) by the mailbox while the Arrays are
        // made: pushing runs no Ruby code that could take it off.
        let list = |line: fn(&Inner) -> &VecDeque<Waiter>| -> Result<VALUE, Error> {
            let ary = rb::ary_new_capa(line(&self.inner.borrow()).len())?;
            let mut i = 0;
            loop {
                let next = line(&self.inner.borrow()).get(i).map(|w| w.fiber);
                let Some(fiber) = next else {
                    return Ok(ary);
                };
                rb::ary_push(ary, fiber)?;
                i += 1;
            }
        };
        let pair = rb::ary_new_capa(2)?;
        rb::ary_push(pair, list(|inner| &inner.receivers)?)?;
        rb::ary_push(pair, list(|inner| &inner.senders)?)?;
        Ok(rb::value(pair))
    }

    pub fn rb_size(&self) -> usize {
        self.inner.borrow().messages.len()
    }

    pub fn rb_limit(&self) -> Result<Value, Error> {
        let limit = self.inner.borrow().limit;
        match limit {
            0 => Ok(rb::value(NIL)),
            n => rb::integer(n.min(i64::MAX as usize) as i64).map(rb::value),
        }
    }

    /// limit = n (a positive Integer) or nil (no limit): senders waiting for room go on.
    pub fn rb_set_limit(&self, limit: Value) -> Result<Value, Error> {
        let raw_limit = raw(limit);
        let n = if raw_limit == NIL {
            0
        } else {
            rb::int_arg(raw_limit, "mailbox limit", 1, i64::MAX)? as usize
        };
        let senders = {
            let mut inner = self.inner.borrow_mut();
            inner.limit = n;
            inner.senders_to_wake()
        };
        senders.into_iter().for_each(wake);
        Ok(limit)
    }
}

/// UringMachine.mailbox_of(fiber) → its Mailbox, created on first use.
pub fn rb_mailbox_of(fiber: Value) -> Result<Value, Error> {
    let fiber = raw(fiber);
    check_fiber(fiber)?;
    let id = names().fiber_mailbox;
    let existing = rb::ivar_get(fiber, id);
    if existing != NIL {
        return Ok(rb::value(existing));
    }
    // The wrapper's allocation may raise (NoMemoryError): magnus's obj_wrap does not catch it.
    let mailbox = protect(|| raw(rb::ruby().obj_wrap(Mailbox::default()).as_value()))?;
    rb::ivar_set(fiber, id, mailbox)?;
    Ok(rb::value(mailbox))
}

fn mailbox_obj(fiber: VALUE) -> Result<Obj<Mailbox>, Error> {
    Obj::<Mailbox>::try_convert(rb_mailbox_of(rb::value(fiber))?)
}

/// Fiber#<<(message) → the fiber: sends it a message (waiting while its mailbox is full).
/// FiberError for a fiber that has finished: nobody would ever take the message.
pub fn rb_fiber_send(fiber: Value, message: Value) -> Result<Value, Error> {
    check_fiber(raw(fiber))?;
    if !rb::fiber_alive(raw(fiber)) {
        let class = magnus::ExceptionClass::from_value(rb::value(rb::class_named("FiberError")?))
            .ok_or_else(|| rb::type_error("FiberError is not an exception class"))?;
        return Err(rb::exception(
            class,
            "the fiber has finished: nobody will receive the message",
        ));
    }
    Mailbox::rb_push(mailbox_obj(raw(fiber))?, message)?;
    Ok(fiber)
}

/// UringMachine.receive { |message| } → the current fiber's oldest (or first selected)
/// message, waiting for one.
pub fn rb_receive() -> Result<Value, Error> {
    rb::root_fiber_ready()?; // any thread may receive first
    mailbox_obj(fiber_current())?.rb_receive()
}

/// UringMachine.receive_all_pending → every message in the current fiber's mailbox.
pub fn rb_receive_all_pending() -> Result<Value, Error> {
    rb::root_fiber_ready()?; // any thread may receive first
    mailbox_obj(fiber_current())?.rb_receive_all_pending()
}
