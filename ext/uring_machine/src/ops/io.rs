//! Byte-moving operations. read/write/recv/send first try the syscall without blocking (no
//! ring round trip, no fiber switch, GVL held); only what would block goes to the ring, where
//! it waits inside the kernel.
use std::time::Duration;

use io_uring::{opcode, types};
use magnus::{Error, Value};
use rb_sys::VALUE;

use crate::machine::fd_kinds::FdKind;
use crate::machine::Machine;
use crate::ops::direct_io::{preadv2_nowait, would_block};
use crate::ring::readiness::{answers, poll_now, FilteredPoll};
use crate::ruby::args::{arg, arity, file_offset_arg, int_or, len_arg, opt_len_arg};
use crate::ruby::buffer::{ReadTarget, WriteSource};
use crate::ruby::fd::fd_arg;
use crate::ruby::partial_write;
use crate::ruby::value::{self as rb, int, last_errno, NIL};

impl Machine {
    pub fn count_direct(&self, code: u8) {
        self.with(|s| {
            if let Some(count) = s.metrics.direct.get_mut(usize::from(code)) {
                *count += 1;
            }
        });
    }

    /// read(io, buffer, maxlen, buffer_offset = 0, file_offset = -1) → bytes read, 0 at EOF.
    pub fn rb_read(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 3, 5)?;
        self.check_owner()?;
        let fd = fd_arg(arg(args, 0))?;
        let maxlen = len_arg(arg(args, 2), "maxlen")?;
        let buffer_offset = int_or(arg(args, 3), 0, "buffer_offset", i64::MIN, i64::MAX)?;
        let file_offset = file_offset_arg(arg(args, 4))?;
        let mut target = ReadTarget::prepare(arg(args, 1), maxlen, buffer_offset)?;
        let n = self.read_into(fd, &mut target, maxlen, file_offset)?;
        target.finish(n)?;
        Ok(rb::value(int(n as i64)))
    }

    pub fn read_into(&self, fd: i32, target: &mut ReadTarget, maxlen: usize, file_offset: i64) -> Result<usize, Error> {
        let (ptr, pin) = (target.ptr, target.object());
        let res = self.transfer_once(
            Direction::Read,
            fd,
            ptr,
            maxlen,
            file_offset,
            pin,
            Blocking::Wait(None),
            || target.lock(),
        )?;
        rb::check(res, "read").map(|n| n as usize)
    }

    /// One read or write of at most `len` bytes: the count, or -errno. A direct non-blocking
    /// attempt first; if it would block, `prepare` runs and the ring waits (see `Blocking`).
    /// Err carries only Ruby exceptions (interrupts, timeouts). `ptr` must be valid for `len`
    /// bytes (writable for a read) until this returns, and, once `prepare` has run, stay so
    /// while `pin` (marked by the op) lives: callers pass a prepared target or source, a
    /// String made room for, or an IO's rbuf.
    #[allow(clippy::too_many_arguments)]
    pub fn transfer_once(
        &self,
        direction: Direction,
        fd: i32,
        ptr: *mut u8,
        len: usize,
        file_offset: i64,
        pin: VALUE,
        blocking: Blocking,
        prepare: impl FnOnce() -> Result<(), Error>,
    ) -> Result<i64, Error> {
        let is_read = matches!(direction, Direction::Read);
        if is_read && self.reads_wait(fd) {
            if let Some(deadline) = blocking.ring_deadline() {
                prepare()?;
                return self.read_in_ring(fd, ptr, len, file_offset, pin, deadline);
            }
        }
        let res = self.try_direct(direction, fd, ptr, len, file_offset);
        let code = match direction {
            Direction::Read => opcode::Read::CODE,
            Direction::Write => opcode::Write::CODE,
        };
        if !would_block(res) {
            self.count_direct(code);
            return Ok(res);
        }
        if is_read && res == -(libc::EAGAIN as i64) {
            self.with(|s| s.fd_kinds.set_reads_wait(fd, true)); // a pipe, socket or tty
        }
        let deadline = match blocking {
            Blocking::Never => return Ok(res),
            Blocking::AgainIfNonblockCaller(_) if res == -(libc::EAGAIN as i64) && called_from_nonblock() => {
                return Ok(res)
            }
            Blocking::AgainIfNonblockCaller(deadline) | Blocking::Wait(deadline) => deadline,
        };
        prepare()?;
        if is_read {
            return self.read_in_ring(fd, ptr, len, file_offset, pin, deadline);
        }
        self.ring_transfer(direction, fd, ptr, len, file_offset, pin, None, deadline)
    }

    /// Whether the last read of `fd` had to wait (machine/fd_kinds.rs): its next read skips
    /// the direct attempt.
    pub fn reads_wait(&self, fd: i32) -> bool {
        self.with(|s| s.fd_kinds.reads_wait(fd))
    }

    /// A READ waiting in the ring; one that fills its whole buffer (data streaming in) lets
    /// the next read of `fd` try directly again.
    fn read_in_ring(
        &self,
        fd: i32,
        ptr: *mut u8,
        len: usize,
        file_offset: i64,
        pin: VALUE,
        deadline: Option<Duration>,
    ) -> Result<i64, Error> {
        let res = self.ring_transfer(Direction::Read, fd, ptr, len, file_offset, pin, None, deadline)?;
        if res >= len as i64 {
            self.with(|s| s.fd_kinds.set_reads_wait(fd, false));
        }
        Ok(res)
    }

    /// One READ/WRITE waiting in the ring, or READ_FIXED/WRITE_FIXED when `ptr` lies in the
    /// registered buffer of `fixed_slot`; up to `deadline` (then IO::TimeoutError). A close of
    /// `fd` interrupts it. The count or -errno.
    #[allow(clippy::too_many_arguments)]
    pub fn ring_transfer(
        &self,
        direction: Direction,
        fd: i32,
        ptr: *mut u8,
        len: usize,
        file_offset: i64,
        pin: VALUE,
        fixed_slot: Option<u16>,
        deadline: Option<Duration>,
    ) -> Result<i64, Error> {
        let (target, off, len) = (types::Fd(fd), file_offset as u64, len.min(u32::MAX as usize) as u32);
        let code = match (direction, fixed_slot) {
            (Direction::Read, None) => opcode::Read::CODE,
            (Direction::Write, None) => opcode::Write::CODE,
            (Direction::Read, Some(_)) => opcode::ReadFixed::CODE,
            (Direction::Write, Some(_)) => opcode::WriteFixed::CODE,
        };
        let op = || {
            let build = |_: &mut crate::ring::op::Slot| match (direction, fixed_slot) {
                (Direction::Read, None) => opcode::Read::new(target, ptr, len).offset(off).build(),
                (Direction::Write, None) => opcode::Write::new(target, ptr, len).offset(off).build(),
                (Direction::Read, Some(slot)) => opcode::ReadFixed::new(target, ptr, len, slot).offset(off).build(),
                (Direction::Write, Some(slot)) => opcode::WriteFixed::new(target, ptr, len, slot).offset(off).build(),
            };
            let res = match direction {
                Direction::Write => self.until_room(fd, || self.run_fd_op(fd, build, code, pin)),
                Direction::Read => self.run_fd_op(fd, build, code, pin),
            };
            res.map(|r| r as i64)
        };
        match deadline {
            None => op(),
            after => self.with_io_timeout(after, op),
        }
    }

    /// `op` up to `after` (then IO::TimeoutError). Out of line: the timer's frame would
    /// otherwise sit on the machine stack of every fiber waiting without a timeout.
    #[inline(never)]
    fn with_io_timeout(&self, after: Option<Duration>, op: impl FnOnce() -> Result<i64, Error>) -> Result<i64, Error> {
        self.with_timeout(after, io_timeout_error()?, op)
    }

    /// `write` (a ring write to `fd`) again each time it answers EAGAIN, once `fd` has room: a
    /// write in the ring waits for room itself, but on an O_NONBLOCK file (Ruby's default for
    /// pipes and sockets) the kernel answers EAGAIN instead when it was woken twice for nothing,
    /// as it is while a peer's shutdown holds (ring/readiness.rs). The result, or -errno.
    fn until_room(&self, fd: i32, mut write: impl FnMut() -> Result<i32, Error>) -> Result<i32, Error> {
        loop {
            let res = write()?;
            if res != -libc::EAGAIN {
                return Ok(res);
            }
            let polled = self.poll_fd(fd, libc::POLLOUT as u32)?;
            if polled < 0 {
                return Ok(polled);
            }
        }
    }

    /// One attempt that never waits for a peer: recv/send(MSG_DONTWAIT) on a socket,
    /// preadv2/pwritev2 with RWF_NOWAIT otherwise (see write_direct). The count or -errno.
    fn try_direct(&self, direction: Direction, fd: i32, ptr: *mut u8, len: usize, file_offset: i64) -> i64 {
        let kind = self.with(|s| s.fd_kinds.get(fd));
        if file_offset < 0 {
            // SAFETY: `ptr` is valid for `len` bytes, writable for a read and readable for a
            // write (transfer_once's contract, passed down); MSG_DONTWAIT: the kernel uses it
            // during the call only.
            let socket_call = || unsafe {
                match direction {
                    Direction::Read => libc::recv(fd, ptr as *mut libc::c_void, len, libc::MSG_DONTWAIT),
                    Direction::Write => libc::send(fd, ptr as *const libc::c_void, len, libc::MSG_DONTWAIT),
                }
            };
            if let Some(res) = self.try_as_socket(fd, kind, socket_call) {
                return res;
            }
        }
        match direction {
            Direction::Read => preadv2_nowait(fd, ptr, len, file_offset),
            Direction::Write => {
                let iov = [libc::iovec {
                    iov_base: ptr as *mut libc::c_void,
                    iov_len: len,
                }];
                self.write_direct(fd, kind, &iov, file_offset)
            }
        }
    }

    /// One attempt to write all of `iov` at the fd's position that never waits for a peer:
    /// sendmsg(MSG_DONTWAIT) on a socket, pwritev2 with RWF_NOWAIT otherwise (see write_direct).
    /// The count or -errno.
    pub fn try_direct_writev(&self, fd: i32, iov: &[libc::iovec]) -> i64 {
        let kind = self.with(|s| s.fd_kinds.get(fd));
        let socket_call = || {
            // SAFETY: msghdr is plain old data: all zeroes (no name, no control data) is valid.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = iov.len() as _;
            // SAFETY: `msg` names the caller's iovecs, readable for their lengths (pieces of
            // live Strings); sendmsg only reads them, during the call (MSG_DONTWAIT).
            unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) }
        };
        if let Some(res) = self.try_as_socket(fd, kind, socket_call) {
            return res;
        }
        self.write_direct(fd, kind, iov, -1)
    }

    /// `socket_call` (a MSG_DONTWAIT socket syscall) on an fd that is, or may be, a socket:
    /// its count or -errno; None when the fd turned out not to be one (ENOTSOCK), learned.
    fn try_as_socket(&self, fd: i32, kind: FdKind, socket_call: impl FnOnce() -> isize) -> Option<i64> {
        if !matches!(kind, FdKind::Unknown | FdKind::Socket) {
            return None;
        }
        let res = socket_call();
        let res = if res < 0 { last_errno() } else { res as i64 };
        let learned = if res == -(libc::ENOTSOCK as i64) {
            FdKind::NotSocket
        } else {
            FdKind::Socket
        };
        if learned != kind {
            self.with(|s| s.fd_kinds.set(fd, learned));
        }
        (learned == FdKind::Socket).then_some(res)
    }

    /// write(io, buffer, length = nil, file_offset = -1) → bytes written: all of them (short
    /// writes are continued). Or it raises: an Errno, or an interrupt (timeout, Fiber#raise,
    /// schedule with an exception, a close), at once, carrying the count that went out before
    /// (PartialWrite, ruby/partial_write.rs).
    pub fn rb_write(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 2, 4)?;
        self.check_owner()?;
        let fd = fd_arg(arg(args, 0))?;
        let length = opt_len_arg(arg(args, 2), "length")?;
        let file_offset = file_offset_arg(arg(args, 3))?;
        let mut source = WriteSource::prepare(arg(args, 1), length)?;
        let mut iov = [libc::iovec {
            iov_base: source.ptr as *mut libc::c_void,
            iov_len: source.len,
        }];
        let written = self.write_all(fd, &mut iov, file_offset, &mut source)?;
        Ok(rb::value(int(written as i64)))
    }

    /// writev(io, *buffers) → total bytes written: all of them, or it raises (as `write`).
    pub fn rb_writev(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 1, usize::MAX)?;
        self.check_owner()?;
        let fd = fd_arg(arg(args, 0))?;
        let mut sources = args[1..]
            .iter()
            .map(|b| WriteSource::prepare(rb::raw(*b), None))
            .collect::<Result<Vec<_>, _>>()?;
        let mut iov: Vec<libc::iovec> = sources
            .iter()
            .map(|s| libc::iovec {
                iov_base: s.ptr as *mut libc::c_void,
                iov_len: s.len,
            })
            .collect();
        let written = self
            .write_counted(fd, &mut iov, -1, &mut sources)
            .map_err(|(n, e)| partial_write::mark(e, n))?;
        Ok(rb::value(int(written as i64)))
    }

    /// Writes all of `iov` (of `source`); raises as `rb_write` does.
    pub fn write_all(
        &self,
        fd: i32,
        iov: &mut [libc::iovec],
        file_offset: i64,
        source: &mut WriteSource,
    ) -> Result<usize, Error> {
        self.write_counted(fd, iov, file_offset, std::slice::from_mut(source))
            .map_err(|(n, e)| partial_write::mark(e, n))
    }

    /// Writes all of `iov`, continuing short writes: the count, or the exception that stopped
    /// it with the count that went out before it.
    pub fn write_counted(
        &self,
        fd: i32,
        iov: &mut [libc::iovec],
        file_offset: i64,
        sources: &mut [WriteSource],
    ) -> Result<usize, (usize, Error)> {
        let mut written = 0;
        let mut rest: &mut [libc::iovec] = iov;
        while !rest.is_empty() {
            let offset = if file_offset < 0 {
                -1
            } else {
                file_offset + written as i64
            };
            let n = self
                .write_vectors(fd, rest, offset, sources)
                .map_err(|e| (written, e))?;
            written += n;
            rest = advance(rest, n);
            if !rest.is_empty() {
                // An interrupt that came while that piece went out anyway is raised now: the
                // caller must not take a short count for all of it.
                self.raise_pending().map_err(|e| (written, e))?;
            }
        }
        Ok(written)
    }

    /// One write attempt of `iov`: direct first, else through the ring (WRITE or WRITEV).
    fn write_vectors(
        &self,
        fd: i32,
        iov: &mut [libc::iovec],
        offset: i64,
        sources: &mut [WriteSource],
    ) -> Result<usize, Error> {
        let kind = self.with(|s| s.fd_kinds.get(fd));
        let mut res = self.write_direct(fd, kind, iov, offset);
        if would_block(res) {
            for s in sources.iter_mut() {
                s.lock()?;
            }
            let pins: Vec<_> = sources.iter().map(|s| s.object()).collect();
            let off = offset as u64;
            res = self.until_room(fd, || {
                if iov.len() == 1 {
                    let (ptr, len) = (iov[0].iov_base as *const u8, iov[0].iov_len as u32);
                    return self.run_fd_op(
                        fd,
                        |slot| {
                            slot.pinned.extend(&pins);
                            opcode::Write::new(types::Fd(fd), ptr, len).offset(off).build()
                        },
                        opcode::Write::CODE,
                        NIL,
                    );
                }
                let vecs: Box<[libc::iovec]> = iov.to_vec().into_boxed_slice();
                self.run_fd_op(
                    fd,
                    |slot| {
                        slot.pinned.extend(&pins);
                        slot.owned = crate::ring::op::Owned::Iovecs(vecs);
                        let crate::ring::op::Owned::Iovecs(v) = &slot.owned else {
                            unreachable!()
                        };
                        opcode::Writev::new(types::Fd(fd), v.as_ptr(), v.len() as u32)
                            .offset(off)
                            .build()
                    },
                    opcode::Writev::CODE,
                    NIL,
                )
            })? as i64;
        } else {
            self.count_direct(opcode::Write::CODE);
        }
        let n = rb::check(res, "write")? as usize;
        if n == 0 && iov.iter().any(|v| v.iov_len > 0) {
            return Err(rb::errno_error(libc::EIO, "write made no progress"));
        }
        Ok(n)
    }

    /// recv(io, buffer, maxlen, flags = 0) → bytes received, 0 when the peer closed.
    pub fn rb_recv(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 3, 4)?;
        self.check_owner()?;
        let fd = fd_arg(arg(args, 0))?;
        let maxlen = len_arg(arg(args, 2), "maxlen")?;
        let flags = int_or(arg(args, 3), 0, "flags", 0, i32::MAX as i64)? as i32;
        let mut target = ReadTarget::prepare(arg(args, 1), maxlen, 0)?;
        // SAFETY: the prepared target has room for `maxlen` bytes at `ptr`; MSG_DONTWAIT: the
        // kernel writes them during the call only.
        let direct = unsafe { libc::recv(fd, target.ptr as *mut libc::c_void, maxlen, flags | libc::MSG_DONTWAIT) };
        let mut res = if direct < 0 { last_errno() } else { direct as i64 };
        if would_block(res) && flags & libc::MSG_DONTWAIT == 0 {
            target.lock()?;
            let ptr = target.ptr;
            res = self.run_fd_op(
                fd,
                |_| {
                    opcode::Recv::new(types::Fd(fd), ptr, maxlen as u32)
                        .flags(flags)
                        .build()
                },
                opcode::Recv::CODE,
                target.object(),
            )? as i64;
        } else {
            self.count_direct(opcode::Recv::CODE);
        }
        let n = rb::check(res, "recv")? as usize;
        target.finish(n)?;
        Ok(rb::value(int(n as i64)))
    }

    /// send(io, buffer, length = nil, flags = 0) → bytes sent (all of them on a stream socket),
    /// or it raises (as `write`).
    pub fn rb_send(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 2, 4)?;
        self.check_owner()?;
        let fd = fd_arg(arg(args, 0))?;
        let length = opt_len_arg(arg(args, 2), "length")?;
        let flags = int_or(arg(args, 3), 0, "flags", 0, i32::MAX as i64)? as i32 | libc::MSG_NOSIGNAL;
        let mut source = WriteSource::prepare(arg(args, 1), length)?;
        let mut sent = 0;
        loop {
            // SAFETY: sent < source.len (the loop ends once all is sent), so the pointer stays
            // inside the source's bytes.
            let (ptr, len) = (unsafe { source.ptr.add(sent) }, source.len - sent);
            // SAFETY: `len` readable bytes at `ptr` (the source's rest); MSG_DONTWAIT: read
            // during the call only.
            let direct = unsafe { libc::send(fd, ptr as *const libc::c_void, len, flags | libc::MSG_DONTWAIT) };
            let mut res = if direct < 0 { last_errno() } else { direct as i64 };
            if would_block(res) {
                source.lock()?;
                let sent_op = self.run_fd_op(
                    fd,
                    |_| opcode::Send::new(types::Fd(fd), ptr, len as u32).flags(flags).build(),
                    opcode::Send::CODE,
                    source.object(),
                );
                res = sent_op.map_err(|e| partial_write::mark(e, sent))? as i64;
            } else {
                self.count_direct(opcode::Send::CODE);
            }
            sent += rb::check(res, "send").map_err(|e| partial_write::mark(e, sent))? as usize;
            if sent >= source.len || res == 0 {
                return Ok(rb::value(int(sent as i64)));
            }
            // As in write_counted: an interrupt that came meanwhile is raised now.
            self.raise_pending().map_err(|e| partial_write::mark(e, sent))?;
        }
    }

    /// splice(src, dst, length) → bytes moved (one side must be a pipe); 0 at EOF.
    pub fn rb_splice(&self, src: Value, dst: Value, length: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let (fd_in, fd_out) = (fd_arg(rb::raw(src))?, fd_arg(rb::raw(dst))?);
        let len = len_arg(rb::raw(length), "length")? as u32;
        let res = self.pipe_transfer(fd_in, fd_out, || {
            self.run_op(
                |_| opcode::Splice::new(types::Fd(fd_in), -1, types::Fd(fd_out), -1, len).build(),
                opcode::Splice::CODE,
                NIL,
            )
        })?;
        rb::check(res as i64, "splice").map(|n| rb::value(int(n)))
    }

    /// splice/tee on O_NONBLOCK pipes (Ruby's default) answer EAGAIN instead of waiting: wait
    /// for the source to have data, then for the destination to have room, and try again.
    fn pipe_transfer(
        &self,
        fd_in: i32,
        fd_out: i32,
        mut attempt: impl FnMut() -> Result<i32, Error>,
    ) -> Result<i32, Error> {
        let mut wait_for_input = true;
        loop {
            let res = attempt()?;
            if res != -libc::EAGAIN {
                return Ok(res);
            }
            let (fd, events) = if wait_for_input {
                (fd_in, libc::POLLIN)
            } else {
                (fd_out, libc::POLLOUT)
            };
            wait_for_input = !wait_for_input;
            let polled = self.run_op(
                |_| opcode::PollAdd::new(types::Fd(fd), events as u32).build(),
                opcode::PollAdd::CODE,
                NIL,
            )?;
            rb::check(polled as i64, "poll")?;
        }
    }

    /// tee(src, dst, length) → bytes duplicated from one pipe to another.
    pub fn rb_tee(&self, src: Value, dst: Value, length: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let (fd_in, fd_out) = (fd_arg(rb::raw(src))?, fd_arg(rb::raw(dst))?);
        let len = len_arg(rb::raw(length), "length")? as u32;
        let res = self.pipe_transfer(fd_in, fd_out, || {
            self.run_op(
                |_| opcode::Tee::new(types::Fd(fd_in), types::Fd(fd_out), len).build(),
                opcode::Tee::CODE,
                NIL,
            )
        })?;
        rb::check(res as i64, "tee").map(|n| rb::value(int(n)))
    }

    /// poll(io, events) → the ready events mask (POLLIN, POLLOUT, ...).
    pub fn rb_poll(&self, io: Value, events: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(rb::raw(io))?;
        let mask = rb::int_arg(rb::raw(events), "events", 1, 0xffff)? as u32;
        let res = self.poll_fd(fd, mask)?;
        rb::check(res as i64, "poll").map(|n| rb::value(int(n)))
    }

    /// Waits in the ring until `fd` has one of `events` ready, or an error or a hang-up (as
    /// poll(2) would), ended early by a close of `fd`: the ready events, or -errno.
    pub fn poll_fd(&self, fd: i32, events: u32) -> Result<i32, Error> {
        let res = self.poll_add(fd, (fd, events))?;
        if answers(events, res) {
            return Ok(res);
        }
        // The peer's shutdown alone (ring/readiness.rs): wait on as poll(2) would.
        loop {
            let res = match FilteredPoll::new(fd, events) {
                Some(filter) => self.poll_add(fd, filter.target())?,
                None => return self.poll_add(fd, (fd, events)),
            };
            if res < 0 {
                return Ok(res);
            }
            let ready = poll_now(fd, events);
            if ready != 0 {
                return Ok(ready as i32);
            }
        }
    }

    /// One POLL_ADD of `target` (a descriptor and its events), a wait on `fd` that a close of
    /// `fd` ends: the result.
    fn poll_add(&self, fd: i32, (target, events): (i32, u32)) -> Result<i32, Error> {
        self.run_fd_op(
            fd,
            |_| opcode::PollAdd::new(types::Fd(target), events).build(),
            opcode::PollAdd::CODE,
            NIL,
        )
    }

    /// fsync(io) → 0.
    pub fn rb_fsync(&self, io: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(rb::raw(io))?;
        let res = self.run_op(|_| opcode::Fsync::new(types::Fd(fd)).build(), opcode::Fsync::CODE, NIL)?;
        rb::check(res as i64, "fsync").map(|n| rb::value(int(n)))
    }
}

#[derive(Clone, Copy)]
pub enum Direction {
    Read,
    Write,
}

/// What a read or write that would block does.
#[derive(Clone, Copy)]
pub enum Blocking {
    /// Wait in the ring, up to the deadline (then IO::TimeoutError).
    Wait(Option<Duration>),
    /// Answer -EAGAIN when called from a `*_nonblock` method (Ruby passes the same arguments
    /// for read_nonblock as for sysread, which expects the hook to wait); wait otherwise.
    AgainIfNonblockCaller(Option<Duration>),
    /// Never wait: the direct attempt's result, -EAGAIN included (the caller then prepares
    /// its memory for the ring and tries again with `Wait`).
    Never,
}

impl Blocking {
    /// The deadline of a read that would wait in the ring without a direct attempt first;
    /// None when the caller wants the direct attempt's answer (never waits, or a `*_nonblock`
    /// caller, which expects EAGAIN).
    fn ring_deadline(self) -> Option<Option<Duration>> {
        match self {
            Blocking::Never => None,
            Blocking::Wait(deadline) => Some(deadline),
            Blocking::AgainIfNonblockCaller(deadline) => (!called_from_nonblock()).then_some(deadline),
        }
    }
}

/// Whether the Ruby method that called this hook is a `*_nonblock` one (read_nonblock,
/// write_nonblock): frame 0 is the hook itself, frame 1 its caller.
fn called_from_nonblock() -> bool {
    let mut frames = [NIL; 2];
    let mut lines = [0i32; 2];
    // SAFETY: both buffers hold 2 entries, the limit passed; rb_profile_frames only reads the
    // current thread's frames (GVL held) and allocates nothing.
    let count = unsafe { rb_sys::rb_profile_frames(0, 2, frames.as_mut_ptr(), lines.as_mut_ptr()) };
    if count < 2 {
        return false;
    }
    // SAFETY: frames[1] is a frame rb_profile_frames just returned (an iseq or a method entry,
    // both alive while that frame is on the stack); the name is the method ID's existing
    // String: nothing is allocated, nothing raised.
    let name = unsafe { rb_sys::rb_profile_frame_method_name(frames[1]) };
    if !rb::is_string(name) {
        return false;
    }
    // SAFETY: `name` is a String (checked): RSTRING_PTR and RSTRING_LEN describe its bytes,
    // which no Ruby code can change while the slice is used (no call in between).
    let bytes = unsafe {
        std::slice::from_raw_parts(
            rb_sys::RSTRING_PTR(name) as *const u8,
            rb_sys::RSTRING_LEN(name) as usize,
        )
    };
    bytes.ends_with(b"_nonblock")
}

/// The exception IO#timeout= asks for (Ruby 3.2+).
fn io_timeout_error() -> Result<VALUE, Error> {
    let msg = "Blocking operation timed out!";
    let class = rb::class_named("IO::TimeoutError")?;
    // SAFETY: `msg` outlives the call (a static str) and `class` is a constant's class; the
    // String and the exception are allocated and `initialize` runs: protect catches any raise.
    magnus::rb_sys::protect(|| unsafe {
        let text = rb_sys::rb_str_new(msg.as_ptr() as *const _, msg.len() as _);
        rb_sys::rb_class_new_instance(1, &text, class)
    })
}

/// Drops the first `n` written bytes from a vector list.
fn advance(mut iov: &mut [libc::iovec], mut n: usize) -> &mut [libc::iovec] {
    while let Some(first) = iov.first_mut() {
        if n < first.iov_len {
            // SAFETY: n < iov_len: the new base stays inside the same piece.
            first.iov_base = unsafe { (first.iov_base as *mut u8).add(n) } as *mut libc::c_void;
            first.iov_len -= n;
            break;
        }
        n -= first.iov_len;
        iov = &mut iov[1..];
    }
    iov
}
