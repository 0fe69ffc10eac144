//! Closing a descriptor that fibers wait on. An op in the ring holds its own reference to the
//! file, so closing the fd does not end it: a fiber reading a pipe would wait forever. Ops that
//! wait on an fd are therefore tagged with it; a close finds their fibers, cancels the ops and
//! raises IOError in each fiber once its op has drained (as Ruby 4.0's `fiber_interrupt` does).
use io_uring::{opcode, squeue, types};
use magnus::{rb_sys::protect, Error, Value};
use rb_sys::VALUE;

use crate::machine::Machine;
use crate::ring::op::Slot;
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, int, NIL};

const STREAM_CLOSED: &str = "stream closed in another fiber";

impl Machine {
    /// `run_op` for an op whose fiber waits on `fd`: a close of `fd` interrupts it.
    pub fn run_fd_op(
        &self,
        fd: i32,
        build: impl FnOnce(&mut Slot) -> squeue::Entry,
        code: u8,
        pin: VALUE,
    ) -> Result<i32, Error> {
        self.run_tagged_op(Some(fd), build, code, pin)
    }

    /// Raises IOError in every fiber waiting on `fd` through this machine, after cancelling (and
    /// draining) what it waits on; returns how many. A machine a forked child inherited, or one
    /// of another thread, has nothing to wake here.
    pub fn interrupt_fd_waiters(&self, fd: i32) -> Result<usize, Error> {
        self.interrupt_fd_waiters_before(fd, u64::MAX)
    }

    /// interrupt_fd_waiters, for the ops started before op serial `before` only.
    pub fn interrupt_fd_waiters_before(&self, fd: i32, before: u64) -> Result<usize, Error> {
        self.interrupt_waiters_on(fd, before).map(|fibers| fibers.len())
    }

    /// Interrupts the fibers waiting on `fd` (see interrupt_fd_waiters), then runs the others
    /// until each of them has left what it waited on; returns how many.
    pub fn release_fd_waiters(&self, fd: i32) -> Result<usize, Error> {
        let before = crate::ring::op::next_op_serial();
        let fibers = self.interrupt_waiters_on(fd, before)?;
        // Until each has left the op on `fd` it was interrupted in (drained; it may have
        // completed anyway, then the IOError waits for that fiber's next wait). Not a later op:
        // a fiber that had another interrupt pending handles that one first and may wait on
        // `fd` again; the caller wakes such ops once `fd` is closed (core_ext/io.rb).
        while self.with(|s| {
            let still = s.ops.fibers_waiting_on(fd, before);
            fibers.iter().any(|f| still.contains(f))
        }) {
            self.run_others()?;
        }
        Ok(fibers.len())
    }

    /// After `fd` was closed: what the direct attempts learned about the file (machine/fd_kinds.rs)
    /// does not hold for the next one with its number.
    pub fn forget_fd(&self, fd: i32) {
        if !self.is_inherited_by_fork() && self.is_owner_thread() {
            self.with(|s| s.fd_kinds.forget(fd));
        }
    }

    fn interrupt_waiters_on(&self, fd: i32, before: u64) -> Result<Vec<VALUE>, Error> {
        if self.is_inherited_by_fork() || !self.is_owner_thread() {
            return Ok(Vec::new());
        }
        let fibers = self.with(|s| s.ops.fibers_waiting_on(fd, before));
        for fiber in fibers.iter().copied() {
            let error = stream_closed_error()?;
            self.with(|s| s.interrupt(fiber, error));
        }
        if !fibers.is_empty() {
            // An op still in the submission queue must reach the kernel now, while `fd` is
            // closed (it fails with EBADF), not once the number names a newly opened file.
            self.with(|s| s.enter_nowait());
        }
        Ok(fibers)
    }

    /// close(io): an Integer fd is closed through the ring, after the fibers waiting on it were
    /// interrupted; an IO through IO#close, so Ruby forgets the descriptor too.
    pub fn rb_close(&self, io: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let v = rb::raw(io);
        if !rb::is_fixnum(v) {
            fd_arg(v)?;
            return magnus::value::ReprValue::funcall::<_, _, Value>(io, "close", ());
        }
        let fd = fd_arg(v)?;
        self.interrupt_fd_waiters(fd)?;
        self.forget_fd(fd);
        // Even with an exception pending: a close must happen (it never waits for long).
        let res = self.submit_and_await(
            None,
            |_| opcode::Close::new(types::Fd(fd)).build(),
            opcode::Close::CODE,
            NIL,
        )?;
        rb::check(res as i64, "close").map(|_| rb::value(int(fd as i64)))
    }
}

fn stream_closed_error() -> Result<VALUE, Error> {
    // SAFETY: STREAM_CLOSED is a static str and rb_eIOError a class set at boot; allocating the
    // String and the exception (and its `initialize`) may raise, caught by protect.
    protect(|| unsafe {
        let text = rb_sys::rb_str_new(STREAM_CLOSED.as_ptr() as *const _, STREAM_CLOSED.len() as _);
        rb_sys::rb_class_new_instance(1, &text, rb_sys::rb_eIOError)
    })
}
