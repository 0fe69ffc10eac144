//! Multishot operations: one SQE, a stream of CQEs. accept_each yields each accepted fd;
//! read_each reads into a ring of kernel-provided buffers and yields each chunk as a String.
use io_uring::{opcode, squeue, types};
use magnus::{rb_sys::protect, Error, Value};

use crate::machine::{deferrable, exception_error, Machine, Wait};
use crate::ring::buf_ring::{BufferRing, BUFFER_GROUP, BUFFER_SIZE};
use crate::ring::buffer_id;
use crate::ring::op::Kind;
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, fiber_current, int, raw, NIL};

enum Flow {
    Continue,
    /// The stream ended without F_MORE for a reason we can resume from: submit it again.
    Rearm,
}

impl Machine {
    /// Runs a multishot op, calling `each` for every CQE until the op is over and drained. An
    /// interrupt (an exception raised into the fiber, a timeout) cancels the op, but every CQE
    /// that still brings a result (an accepted connection, a chunk read) goes to `each` first:
    /// the exception is raised once the stream has ended. `discard` gets the CQEs that arrive
    /// after `each` itself failed (an exception from the block, or a break).
    fn multishot(
        &self,
        fd: i32,
        sqe: squeue::Entry,
        code: u8,
        closes_fds: bool,
        mut each: impl FnMut(&Self, i32, u32) -> Result<Flow, Error>,
        mut discard: impl FnMut(&Self, i32, u32),
    ) -> Result<(), Error> {
        self.raise_pending()?;
        let current = fiber_current();
        let start = |m: &Self| {
            m.with(|s| {
                let id = s.ops.alloc(Kind::Multishot, current);
                s.ops.tag_fd(id, fd);
                s.submit(&sqe.clone().user_data(id.user_data()), code);
                id
            })
        };
        let mut id = start(self);
        let mut failure: Option<Error> = None;
        let mut interrupt: Option<Error> = None;
        let mut rearm = false;
        loop {
            // An interrupt delivered as a pending exception is taken out of the way, so that
            // the block can still run (and wait) for the results that arrive before the end.
            if let Some(exc) = self.with(|s| s.take_pending(current)) {
                self.with(|s| s.cancel(id));
                interrupt.get_or_insert(exception_error(exc));
            }
            let next = self.with(|s| s.ops.get_mut(id).and_then(|slot| slot.pop_completion()));
            if let Some((res, flags)) = next {
                // ECANCELED ends a stream we cancelled; the reason (if any) is raised below. So
                // does any error once an interrupt came: a close of the fd (IOError pending)
                // makes an op still in the SQ fail with EBADF, which is not news to the caller.
                if failure.is_some() || res == -libc::ECANCELED || (interrupt.is_some() && res < 0) {
                    discard(self, res, flags);
                    continue;
                }
                match each(self, res, flags) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Rearm) => rearm = true,
                    // A break or throw out of the block unwinds now: see abandon.
                    Err(e) if deferrable(&e).is_none() => {
                        self.abandon(id, closes_fds, &mut discard);
                        return Err(e);
                    }
                    Err(e) => {
                        self.with(|s| s.cancel(id));
                        failure = Some(e);
                    }
                }
                continue;
            }
            if self.with(|s| s.ops.is_done(id)) {
                self.with(|s| s.ops.release(id));
                if std::mem::take(&mut rearm) && failure.is_none() && interrupt.is_none() {
                    id = start(self);
                    continue;
                }
                break;
            }
            // One wait per park: the block runs (and may wait) between them.
            let serial = self.with(|s| {
                let serial = s.begin_wait(current);
                s.waiting.insert(current, Wait::Op(id));
                if let Some(slot) = s.ops.get_mut(id) {
                    slot.parked = true;
                    slot.wait = serial;
                }
                serial
            });
            let resumed = self.switch();
            self.with(|s| s.end_wait(current, serial));
            if let Err(e) = resumed {
                if deferrable(&e).is_none() {
                    // Fiber#kill, throw: see abandon.
                    self.abandon(id, closes_fds, &mut discard);
                    return Err(e);
                }
                self.with(|s| s.cancel(id));
                interrupt = interrupt.or(Some(e));
            }
        }
        match (failure, interrupt) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => self.raise_pending(),
        }
    }

    /// Leaves a multishot op without waiting for its end, for a break, throw or kill that must
    /// unwind now: while one does, Ruby's $! holds no exception, and a fiber switch (whose
    /// protect restores $! when something is raised into it) would fail. The op is cancelled
    /// and detached: what it still delivers is discarded as it arrives (fds closed, provided
    /// buffers recycled; see State::complete), what it delivered already is discarded now.
    fn abandon(&self, id: crate::ring::op::OpId, closes_fds: bool, discard: &mut impl FnMut(&Self, i32, u32)) {
        let queued = self.with(|s| {
            s.ops
                .get_mut(id)
                .map(|slot| slot.take_completions())
                .unwrap_or_default()
        });
        for (res, flags) in queued {
            discard(self, res, flags);
        }
        self.with(|s| {
            if s.ops.is_done(id) {
                s.ops.release(id);
                return;
            }
            if let Some(slot) = s.ops.get_mut(id) {
                slot.kind = Kind::Detached;
                slot.fiber = NIL;
                slot.parked = false;
                slot.close_fds = closes_fds;
            }
            s.cancel(id);
        });
    }

    /// accept_each(io) { |fd| }: accepts connections until the block breaks or raises.
    pub fn rb_accept_each(&self, io: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        let sqe = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build();
        self.multishot(
            fd,
            sqe,
            opcode::AcceptMulti::CODE,
            true,
            |_, res, _| {
                let conn = rb::check(res as i64, "accept")?;
                // SAFETY: the block gets a Fixnum; whatever it raises, breaks or throws is
                // caught by protect (and handled by `multishot`).
                protect(|| unsafe { rb_sys::rb_yield(int(conn)) })?;
                Ok(Flow::Continue)
            },
            |_, res, _| {
                if res >= 0 {
                    // SAFETY: a connection accepted after the block stopped taking them: a new
                    // fd nobody has seen, closed once here.
                    unsafe { libc::close(res) };
                }
            },
        )?;
        Ok(rb::value(NIL))
    }

    /// read_each(io) { |chunk| }: yields binary Strings as data arrives, until EOF.
    pub fn rb_read_each(&self, io: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        if !self.with(|s| s.ring.supports(opcode::ReadMulti::CODE)) {
            return self.read_each_fallback(fd);
        }
        // The Errno exception is made after `with` returns: making it allocates.
        self.with(|s| -> std::io::Result<()> {
            if s.buffers.is_none() {
                s.buffers = Some(s.ring.submitter().and_then(|submitter| BufferRing::new(&submitter))?);
            }
            Ok(())
        })
        .map_err(|e| rb::errno_error(e.raw_os_error().unwrap_or(libc::EIO), "registering read buffers"))?;
        let sqe = opcode::ReadMulti::new(types::Fd(fd), 0, BUFFER_GROUP).build();
        self.multishot(
            fd,
            sqe,
            opcode::ReadMulti::CODE,
            false,
            |m, res, flags| {
                if res == -libc::ENOBUFS {
                    return Ok(Flow::Rearm);
                }
                let len = rb::check(res as i64, "read")? as usize;
                let Some(bid) = buffer_id(flags) else {
                    return Ok(Flow::Continue);
                };
                let chunk = m.with(|s| {
                    let bytes = s.buffers.as_ref().expect("buffer ring").bytes(bid, len).to_vec();
                    s.buffers.as_mut().expect("buffer ring").recycle(bid);
                    bytes
                });
                if len > 0 {
                    // SAFETY: `chunk` outlives the call (CRuby copies it); the String's
                    // allocation and whatever the block raises, breaks or throws are caught by
                    // protect. The String is on this fiber's stack while the block runs.
                    protect(|| unsafe {
                        let s = rb_sys::rb_str_new(chunk.as_ptr() as *const _, chunk.len() as _);
                        rb_sys::rb_yield(s)
                    })?;
                }
                Ok(Flow::Continue)
            },
            |m, _, flags| {
                if let Some(bid) = buffer_id(flags) {
                    m.with(|s| s.buffers.as_mut().expect("buffer ring").recycle(bid));
                }
            },
        )?;
        Ok(rb::value(NIL))
    }

    fn read_each_fallback(&self, fd: i32) -> Result<Value, Error> {
        loop {
            let s = rb::str_buf_new(BUFFER_SIZE)?;
            let mut target = crate::ruby::buffer::ReadTarget::prepare(s, BUFFER_SIZE, 0)?;
            let n = self.read_into(fd, &mut target, BUFFER_SIZE, -1)?;
            target.finish(n)?;
            if n == 0 {
                return Ok(rb::value(NIL));
            }
            // SAFETY: `s` is the String just filled, on this fiber's stack; whatever the block
            // raises, breaks or throws is caught by protect.
            protect(|| unsafe { rb_sys::rb_yield(s) })?;
        }
    }
}
