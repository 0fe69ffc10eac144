//! `spin(on_thread:)` on any thread that runs a machine: other threads queue requests here
//! (Machine#__request_spin__), and the machine's own thread starts the fibers the next time it
//! looks for a fiber to run (in its scheduler's loop, or in any fiber's wait): a fiber can only
//! be created and run on its own thread. A request is a Ruby Array that
//! UringMachine.__serve_spin__ (lib/uring_machine/concurrency/threads.rb) reads and answers
//! through the reply Mailbox at its end.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use magnus::{prelude::*, rb_sys::protect, typed_data::Obj, Error, Value};
use rb_sys::VALUE;

use crate::machine::mailbox::Mailbox;
use crate::machine::Machine;
use crate::ruby::names::names;
use crate::ruby::value::{self as rb, mark, raw, FALSE, NIL};

/// The requests not served yet. Pushed by any thread, taken by the machine's own; every call
/// holds the GVL, the lock only orders them with the mark.
#[derive(Default)]
pub struct SpinRequests {
    queue: Mutex<Vec<VALUE>>,
    /// Whether the queue may be non-empty: the machine's loop reads only this on its hot path.
    pending: AtomicBool,
}

impl SpinRequests {
    fn push(&self, request: VALUE) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(request);
        self.pending.store(true, Ordering::Release);
    }

    /// The oldest request, taken off the queue.
    fn pop(&self) -> Option<VALUE> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.is_empty() {
            self.pending.store(false, Ordering::Release);
            return None;
        }
        Some(queue.remove(0))
    }

    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    pub fn mark(&self) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .for_each(|r| mark(*r));
    }
}

impl Machine {
    /// Starts the fibers other threads asked for, one request at a time: each is held by this
    /// frame (a VALUE on the stack, which GC scans) while Ruby serves it. Called by the loop
    /// with no borrow of the state held.
    pub fn serve_spin_requests(&self) {
        let Ok(module) = rb::class_named("UringMachine") else {
            return;
        };
        while let Some(request) = self.spin_requests().pop() {
            // SAFETY: `module` is a constant's module and `request` a live Array (this frame
            // holds it); __serve_spin__ rescues everything and answers the requester itself,
            // and what still escapes (a throw, a kill) is caught by protect.
            let _ = protect(|| unsafe { rb_sys::rb_funcall(module, names().serve_spin, 1, request) });
        }
    }

    /// At the end of the machine's thread: each request still queued is answered with false
    /// (the thread ended), so that its requester does not wait forever.
    pub fn refuse_spin_requests(&self) {
        while let Some(request) = self.spin_requests().pop() {
            // SAFETY: `request` is an Array (made by the requester, see rb_request_spin) held by
            // this frame; rb_ary_entry reads an element (nil when out of range), never raises.
            let reply = unsafe { rb_sys::rb_ary_entry(request, REPLY_INDEX) };
            if let Ok(mailbox) = Obj::<Mailbox>::try_convert(rb::value(reply)) {
                // The reply mailbox has no limit: the push never waits.
                let _ = Mailbox::rb_push(mailbox, rb::value(FALSE));
            }
        }
    }

    /// __request_spin__(request) → nil: queues a spin request for this machine's thread, from
    /// any thread. ArgumentError once the machine is closed (its thread has ended).
    pub fn rb_request_spin(&self, request: Value) -> Result<Value, Error> {
        let request = raw(request);
        if rb::is_special(request) || rb::type_of(request) != rb_sys::ruby_value_type::RUBY_T_ARRAY {
            return Err(rb::type_error("a spin request is an Array"));
        }
        if self.is_closed() || self.is_inherited_by_fork() {
            return Err(rb::arg_error("the thread's machine is closed: the thread has ended"));
        }
        self.spin_requests().push(request);
        self.wakeup().signal();
        Ok(rb::value(NIL))
    }
}

/// Where the reply Mailbox is in a request (see UringMachine.spin_on_thread).
const REPLY_INDEX: std::os::raw::c_long = 6;
