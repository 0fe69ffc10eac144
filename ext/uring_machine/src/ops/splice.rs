//! Zero-copy transfers between two descriptors with splice(2): straight through when one end
//! is a pipe, otherwise through a pipe pair that the thread keeps and reuses. A splice between
//! ends that cannot block (pipes, non-blocking sockets) is tried directly first; anything that
//! may wait (a file on disk, a full socket) runs as a SPLICE op in the ring. Ends that splice
//! cannot serve (O_APPEND files, some devices) are copied through a buffer instead, and so are
//! socket to socket copies, where splicing measured slower. File to file goes through
//! copy_file_range first (copy_range.rs).
mod copy_range;
mod copy_thread;
mod reserve;

use std::cell::RefCell;

use io_uring::{opcode, types};
use magnus::Error;

use copy_range::Ranged;

use crate::machine::Machine;
use crate::ring::private_fds::PrivateFd;
use crate::ruby::buffer::{ReadTarget, WriteSource};
use crate::ruby::partial_write;
use crate::ruby::value::{self as rb, last_errno, NIL};

/// The most one splice moves; also the size asked for the pipe pair.
const CHUNK: usize = 1 << 20;
/// The buffer of the copy fallback.
const BOUNCE: usize = 1 << 16;
/// The buffer of a socket to socket copy. Through a pipe, a loopback TCP to TCP copy of 1 GiB
/// took 1.2-1.4x the time of plain reads and writes (each splice took what one segment brought,
/// about 16 KiB, at twice the syscalls); with reads and writes of this size it matched CRuby's
/// (its own size), larger ones took 1.1x (benchmark/copy_stream.rb).
const SOCKET_BOUNCE: usize = 1 << 14;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pipe,
    Socket,
    /// Regular files and block devices: they have offsets and may wait on a disk.
    File,
    Other,
}

/// One end of a transfer, as splice sees it.
#[derive(Clone, Copy)]
pub struct End {
    fd: i32,
    kind: Kind,
    nonblocking: bool,
    append: bool,
    /// A regular file's size.
    size: Option<u64>,
    /// One of our own pipe pair's ends.
    ours: bool,
}

impl End {
    pub fn probe(fd: i32) -> Result<End, Error> {
        // SAFETY: stat is plain old data: all zeroes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one stat into the local `st`; a bad fd is an error return.
        if unsafe { libc::fstat(fd, &mut st) } < 0 {
            return Err(rb::errno_error(-last_errno() as i32, "fstat"));
        }
        let is_regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFIFO => Kind::Pipe,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFREG | libc::S_IFBLK => Kind::File,
            _ => Kind::Other,
        };
        // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(rb::errno_error(-last_errno() as i32, "fcntl"));
        }
        Ok(End {
            fd,
            kind,
            nonblocking: flags & libc::O_NONBLOCK != 0,
            append: flags & libc::O_APPEND != 0,
            size: is_regular.then_some(st.st_size as u64),
            ours: false,
        })
    }

    fn pipe(fd: i32) -> End {
        End {
            fd,
            kind: Kind::Pipe,
            nonblocking: false,
            append: false,
            size: None,
            ours: true,
        }
    }

    /// How many bytes a copy from here will move, when that is known in advance.
    fn expected(&self, length: Option<u64>, src_offset: Option<i64>) -> Option<u64> {
        let left_in_file = self.size.map(|size| {
            // SAFETY: lseek(fd, 0, SEEK_CUR) only asks for the position.
            let start = src_offset.unwrap_or_else(|| unsafe { libc::lseek(self.fd, 0, libc::SEEK_CUR) });
            size.saturating_sub(start.max(0) as u64)
        });
        match (length, left_in_file) {
            (Some(l), Some(f)) => Some(l.min(f)),
            (l, f) => l.or(f),
        }
    }

    /// SPLICE_F_NONBLOCK covers the pipe side; a socket must be O_NONBLOCK itself.
    fn never_blocks(&self) -> bool {
        self.kind == Kind::Pipe || (self.kind == Kind::Socket && self.nonblocking)
    }
}

/// A pipe pair for ends that are not pipes; returned to the pool only when empty.
struct PipePair {
    read: PrivateFd,
    write: PrivateFd,
    capacity: usize,
}

thread_local! {
    /// Idle pipe pairs, with the pid that made them: a forked child must not share them.
    static POOL: RefCell<(libc::pid_t, Vec<PipePair>)> = const { RefCell::new((0, Vec::new())) };
}

fn take_pipe() -> Result<PipePair, Error> {
    // SAFETY: getpid takes nothing and cannot fail.
    let pid = unsafe { libc::getpid() };
    let idle = POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.0 != pid {
            *pool = (pid, Vec::new());
        }
        pool.1.pop()
    });
    if let Some(pair) = idle {
        return Ok(pair);
    }
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(rb::errno_error(-last_errno() as i32, "pipe2 (for splice)"));
    }
    // Private: a child forked while a splice loop holds the pair closes it at once.
    let (read, write) = (PrivateFd::new(fds[0]), PrivateFd::new(fds[1]));
    // A bigger pipe means fewer splices; unprivileged users may be capped below CHUNK.
    // SAFETY: F_SETPIPE_SZ takes an int on our own pipe; a refusal is an error return.
    unsafe { libc::fcntl(write.raw(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
    // SAFETY: F_GETPIPE_SZ takes no argument.
    let size = unsafe { libc::fcntl(write.raw(), libc::F_GETPIPE_SZ) };
    Ok(PipePair {
        read,
        write,
        capacity: if size > 0 { size as usize } else { 1 << 16 },
    })
}

fn give_back(pair: PipePair) {
    POOL.with(|p| p.borrow_mut().1.push(pair));
}

/// One copy: its ends, how much (None: until EOF), from where in `src` (None: its position).
#[derive(Clone, Copy)]
struct Plan {
    src: End,
    dst: End,
    length: Option<u64>,
    src_offset: Option<i64>,
    more: Hint,
}

impl Plan {
    /// The most the next piece may move after `total`, capped at `cap` (length None: no end).
    fn want(&self, total: u64, cap: usize) -> usize {
        self.length
            .map_or(usize::MAX, |l| (l - total).min(usize::MAX as u64) as usize)
            .min(cap)
    }

    /// Socket to socket: copied through a buffer, not spliced (SOCKET_BOUNCE).
    fn between_sockets(&self) -> bool {
        self.src.kind == Kind::Socket && self.dst.kind == Kind::Socket
    }

    /// The buffer size of a copy through a buffer.
    fn bounce(&self) -> usize {
        if self.between_sockets() {
            SOCKET_BOUNCE
        } else {
            BOUNCE
        }
    }

    /// Where in `src` the next piece starts: -1 for its file position.
    fn offset(&self, total: u64) -> i64 {
        self.src_offset.map_or(-1, |o| o + total as i64)
    }
}

/// SPLICE_F_MORE into a socket while more data is known to follow, as sendfile(2) does: TCP
/// then sends full segments instead of pushing at every splice. Never on the last piece, which
/// would otherwise sit corked.
#[derive(Clone, Copy)]
struct Hint {
    expected: Option<u64>,
    to_socket: bool,
}

impl Hint {
    /// The flags for a splice that ends the copy's first `upto` bytes.
    fn flags(&self, upto: u64) -> u32 {
        match self.expected {
            Some(expected) if self.to_socket && upto < expected => libc::SPLICE_F_MORE,
            _ => 0,
        }
    }
}

impl Machine {
    /// Moves up to `length` bytes (None: until EOF) from `src` to `dst`, reading `src` at
    /// `src_offset` (None: at and advancing its file position). Returns the count moved, all
    /// of it; an exception after some bytes reached `dst` carries their count (PartialWrite).
    pub fn splice_copy(&self, src: End, dst: End, length: Option<u64>, src_offset: Option<i64>) -> Result<u64, Error> {
        let plan = Plan {
            src,
            dst,
            length,
            src_offset,
            more: Hint {
                expected: src.expected(length, src_offset),
                to_socket: dst.kind == Kind::Socket,
            },
        };
        if dst.append || plan.between_sockets() {
            // splice(2) refuses O_APPEND destinations; sockets: SOCKET_BOUNCE.
            return self.copy_through_buffer(plan, 0);
        }
        if plan.in_kernel() {
            if let Ranged::Copied(total) = self.copy_in_kernel(plan)? {
                return Ok(total);
            }
        }
        if src.kind == Kind::Pipe || dst.kind == Kind::Pipe {
            return self.splice_direct(plan);
        }
        self.splice_through_pipe(plan)
    }

    fn splice_direct(&self, plan: Plan) -> Result<u64, Error> {
        let mut total = 0u64;
        loop {
            let want = plan.want(total, CHUNK);
            if want == 0 {
                return Ok(total);
            }
            self.no_interrupt_since(total)?;
            let flags = plan.more.flags(total + want as u64);
            let res = self
                .splice_once(plan.src, plan.offset(total), plan.dst, want, flags)
                .map_err(|e| moved(e, total))?;
            if res == -(libc::EINVAL as i64) && total == 0 {
                return self.copy_through_buffer(plan, 0);
            }
            match rb::check(res, "splice").map_err(|e| moved(e, total))? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }

    fn splice_through_pipe(&self, plan: Plan) -> Result<u64, Error> {
        let pair = take_pipe()?;
        let (pipe_in, pipe_out) = (End::pipe(pair.write.raw()), End::pipe(pair.read.raw()));
        let mut total = 0u64;
        loop {
            let want = plan.want(total, pair.capacity);
            if want == 0 {
                break;
            }
            self.no_interrupt_since(total)?;
            let res = self.splice_once(plan.src, plan.offset(total), pipe_in, want, 0);
            let filled = match res {
                Ok(r) if r == -(libc::EINVAL as i64) && total == 0 => {
                    give_back(pair);
                    return self.copy_through_buffer(plan, 0);
                }
                Ok(r) if r >= 0 => r as usize,
                // The splice failed, so the pipe is still empty: it can serve the next transfer.
                Ok(r) => {
                    give_back(pair);
                    return rb::check(r, "splice").map(|_| total).map_err(|e| moved(e, total));
                }
                // Interrupted, and the cancel won, so nothing moved (the pipe is closed anyway).
                Err(e) => return Err(moved(e, total)),
            };
            if filled == 0 {
                break;
            }
            // From here on the pipe holds data; on error it is dropped (closed), not reused.
            // Whatever stops the copy while our pipe holds bytes taken from `src` (an
            // interrupt, an error): a file read at its position gets them back (it is moved
            // back), and the count says what reached `dst`.
            let mut drained = 0;
            while drained < filled {
                let flags = plan.more.flags(total + filled as u64);
                let res = self.splice_once(pipe_out, -1, plan.dst, filled - drained, flags);
                if matches!(res, Ok(r) if r == -(libc::EINVAL as i64)) && total == 0 && drained == 0 {
                    // The destination takes no splices: write out what the pipe holds, then
                    // copy the rest through a buffer.
                    if let Err((written, e)) = self.write_pipe_contents(pair.read.raw(), plan.dst, filled) {
                        self.unread(plan, filled - written);
                        return Err(moved(e, written as u64));
                    }
                    give_back(pair);
                    return self.copy_through_buffer(plan, filled as u64);
                }
                match res.and_then(|r| rb::check(r, "splice")) {
                    Ok(n) => drained += n as usize,
                    Err(e) => {
                        self.unread(plan, filled - drained);
                        return Err(moved(e, total + drained as u64));
                    }
                }
            }
            total += filled as u64;
        }
        give_back(pair);
        Ok(total)
    }

    /// Gives `count` bytes back to a source read at its file position; other sources (a
    /// socket) cannot take bytes back: see the README, "Interrupted writes".
    fn unread(&self, plan: Plan, count: usize) {
        if count > 0 && plan.src.kind == Kind::File && plan.src_offset.is_none() {
            // SAFETY: moves a file's position back by the bytes it gave: integers only.
            unsafe { libc::lseek(plan.src.fd, -(count as i64), libc::SEEK_CUR) };
        }
    }

    /// One splice of at most `len` bytes: the count, or -errno. EAGAIN (a non-blocking end
    /// not ready) is waited out in the ring.
    fn splice_once(&self, src: End, off_in: i64, dst: End, len: usize, flags: u32) -> Result<i64, Error> {
        let len = len.min(i32::MAX as usize);
        loop {
            let res = if src.never_blocks() && dst.never_blocks() {
                let mut off = off_in;
                let off_ptr = if off_in < 0 {
                    std::ptr::null_mut()
                } else {
                    &mut off as *mut i64
                };
                let flags = flags | libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
                // SAFETY: `off_ptr` is null or points at the local `off`, which outlives the call;
                // splice moves bytes between two fds and touches no other memory.
                let n = unsafe { libc::splice(src.fd, off_ptr, dst.fd, std::ptr::null_mut(), len, flags) };
                self.count_direct(opcode::Splice::CODE);
                if n < 0 {
                    last_errno()
                } else {
                    n as i64
                }
            } else {
                let (fd_in, fd_out) = (types::Fd(src.fd), types::Fd(dst.fd));
                // A close of the user's end (never ours) interrupts the op.
                let user_fd = if src.ours { dst.fd } else { src.fd };
                let res = self.run_fd_op(
                    user_fd,
                    |_| {
                        opcode::Splice::new(fd_in, off_in, fd_out, -1, len as u32)
                            .flags(flags)
                            .build()
                    },
                    opcode::Splice::CODE,
                    NIL,
                )?;
                res as i64
            };
            if res != -(libc::EAGAIN as i64) {
                return Ok(res);
            }
            self.wait_until_spliceable(src, dst)?;
        }
    }

    /// Waits in the ring for the end that is not ready: input first, then room for output.
    fn wait_until_spliceable(&self, src: End, dst: End) -> Result<(), Error> {
        let mut fds = [
            libc::pollfd {
                fd: src.fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: dst.fd,
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        // SAFETY: two pollfds in a local array; timeout 0: it never waits.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, 0) };
        let (fd, events) = if fds[0].revents == 0 {
            (src.fd, libc::POLLIN)
        } else if fds[1].revents == 0 {
            (dst.fd, libc::POLLOUT)
        } else {
            // Both report ready yet the splice could not proceed (less room than a page):
            // let the other fibers run, then try again.
            return self.snooze();
        };
        let res = self.poll_fd(fd, events as u32)?;
        rb::check(res as i64, "poll").map(|_| ())
    }

    /// Empties `len` bytes out of our own pipe into `dst` with plain writes; or fails with
    /// the count that reached `dst` before the error.
    fn write_pipe_contents(&self, pipe_read: i32, dst: End, len: usize) -> Result<(), (usize, Error)> {
        let string = rb::str_buf_new(len).map_err(|e| (0, e))?;
        let target = ReadTarget::prepare(string, len, 0).map_err(|e| (0, e))?;
        let mut got = 0;
        while got < len {
            // The bytes are already in the pipe: these reads never wait.
            // SAFETY: the target has room for `len` bytes and got < len: the read lands inside.
            let n = unsafe { libc::read(pipe_read, target.ptr.add(got) as *mut libc::c_void, len - got) };
            if n <= 0 {
                return Err((0, rb::errno_error(-last_errno() as i32, "read (splice pipe)")));
            }
            got += n as usize;
        }
        target.finish(len).map_err(|e| (0, e))?;
        self.write_string(dst.fd, string, len)
    }

    /// Writes the `len` bytes of `string`, or fails with the count written before the error.
    fn write_string(&self, fd: i32, string: rb_sys::VALUE, len: usize) -> Result<(), (usize, Error)> {
        let mut source = WriteSource::prepare(string, Some(len)).map_err(|e| (0, e))?;
        let mut iov = [libc::iovec {
            iov_base: source.ptr as *mut libc::c_void,
            iov_len: len,
        }];
        self.write_counted(fd, &mut iov, -1, std::slice::from_mut(&mut source))
            .map(|_| ())
    }

    /// A copy promises all of it: an interrupt that came while its last piece moved anyway is
    /// raised before the next piece, with the count moved so far.
    fn no_interrupt_since(&self, total: u64) -> Result<(), Error> {
        if total == 0 {
            return Ok(());
        }
        self.raise_pending().map_err(|e| moved(e, total))
    }

    /// The fallback: read into a buffer, write it out, through the same waits as IO#read.
    fn copy_through_buffer(&self, plan: Plan, done: u64) -> Result<u64, Error> {
        let bounce = plan.bounce();
        let string = rb::str_buf_new(bounce)?;
        let mut total = done;
        loop {
            let want = plan.want(total, bounce);
            if want == 0 {
                return Ok(total);
            }
            self.no_interrupt_since(total)?;
            let mut target = ReadTarget::prepare(string, want, 0).map_err(|e| moved(e, total))?;
            let n = self
                .read_into(plan.src.fd, &mut target, want, plan.offset(total))
                .map_err(|e| moved(e, total))?;
            target.finish(n).map_err(|e| moved(e, total))?;
            if n == 0 {
                return Ok(total);
            }
            if let Err((written, e)) = self.write_string(plan.dst.fd, string, n) {
                self.unread(plan, n - written);
                return Err(moved(e, total + written as u64));
            }
            total += n as u64;
        }
    }
}

/// `e`, which ended a copy after `total` bytes reached the destination, carrying that count.
fn moved(e: Error, total: u64) -> Error {
    partial_write::mark(e, total as usize)
}
