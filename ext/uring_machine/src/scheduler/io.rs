//! The Fiber::Scheduler I/O hooks. Buffers are the IO::Buffers Ruby passes; results are byte
//! counts or -errno, as `rb_fiber_scheduler_io_result` expects. Before interface version 4
//! (Ruby 4.1) `length` is the minimum to transfer (0: at least one attempt); from 4 it is one
//! transfer of at most `length` (0: no I/O), and the offset comes before the length.
use std::time::Duration;

use magnus::{rb_sys::protect, Error, Symbol, TryConvert, Value};
use rb_sys::VALUE;

use crate::ops::io::{Blocking, Direction};
use crate::ring::readiness::poll_now;
use crate::ruby::args::{arg, arity};
use crate::ruby::duration;
use crate::ruby::fd::fd_arg;
use crate::ruby::io_stream::{in_stream_buffers, open_fptr};
use crate::ruby::partial_write;
use crate::ruby::value::{self as rb, int, raw, NIL};
use crate::scheduler::Scheduler;

/// The memory of an IO::Buffer; locked for the hook's duration unless someone (Ruby itself,
/// for its own I/O) already holds the lock, which protects it just as well.
struct HookBuffer {
    value: VALUE,
    base: *mut u8,
    size: usize,
    locked_here: bool,
}

impl HookBuffer {
    fn new(value: VALUE, writable: bool) -> Result<HookBuffer, Error> {
        const LOCKED: u32 = 32;
        const READONLY: u32 = 128;
        // SAFETY: rb_cIOBuffer is set at boot.
        if !rb::is_a(value, unsafe { rb_sys::rb_cIOBuffer }) {
            return Err(rb::type_error("buffer must be an IO::Buffer"));
        }
        let mut base: *mut libc::c_void = std::ptr::null_mut();
        let mut size: usize = 0;
        // Returns the flags and never raises (a freed buffer has no base); Ruby's own buffers
        // come locked, so only user buffers are locked here.
        // SAFETY: `value` is an IO::Buffer (checked), the one case in which it raises nothing;
        // `base` and `size` are locals that outlive the call.
        let flags =
            unsafe { rb_sys::rb_io_buffer_get_bytes(value, &mut base, &mut size as *mut usize as *mut _) } as u32;
        if base.is_null() && size == 0 && flags == 0 {
            return Err(rb::arg_error("IO::Buffer has no memory (freed or empty)"));
        }
        if writable && flags & READONLY != 0 {
            return Err(rb::arg_error("cannot read into a read-only IO::Buffer"));
        }
        // SAFETY: `value` is an IO::Buffer the hook's caller holds; LockedError is caught by
        // protect (then someone else holds the lock, which protects it just as well).
        let locked_here = flags & LOCKED == 0 && protect(|| unsafe { rb_sys::rb_io_buffer_lock(value) }).is_ok();
        Ok(HookBuffer {
            value,
            base: base as *mut u8,
            size,
            locked_here,
        })
    }

    /// The window at `offset`, which must lie inside the buffer.
    fn window(&self, offset: usize) -> Result<(*mut u8, usize), Error> {
        if offset > self.size {
            return Err(rb::arg_error(format!(
                "offset {offset} is beyond the buffer size {}",
                self.size
            )));
        }
        // SAFETY: offset <= size (checked above): the pointer stays inside the buffer or one
        // past its end.
        Ok((unsafe { self.base.add(offset) }, self.size - offset))
    }
}

impl Drop for HookBuffer {
    fn drop(&mut self) {
        if self.locked_here {
            let value = self.value;
            // SAFETY: the buffer this HookBuffer locked; an unlock error (someone unlocked it
            // meanwhile) is caught by protect, and moot as the hook ends.
            let _ = protect(|| unsafe { rb_sys::rb_io_buffer_unlock(value) });
        }
    }
}

fn size_arg(v: VALUE, name: &str) -> Result<usize, Error> {
    rb::int_arg(v, name, 0, i64::MAX).map(|n| n as usize)
}

/// IO#timeout (Ruby 3.2+), the longest a hook may wait on `io`; None: no limit (none set, or
/// one past the clock's range). IO#timeout= checked it as Kernel#sleep would.
#[cfg(ruby_gte_3_2)]
pub fn io_deadline(io: VALUE) -> Result<Option<Duration>, Error> {
    // SAFETY: rb_cIO is set at boot.
    if rb::is_special(io) || !rb::is_kind_of(io, unsafe { rb_sys::rb_cIO }) {
        return Ok(None);
    }
    // SAFETY: an IO is an RFile: its fptr field is read from a live object (the caller's).
    if unsafe { (*(io as *mut rb_sys::RFile)).fptr }.is_null() {
        return Ok(None); // IO.allocate: no stream, no timeout (rb_io_timeout would raise)
    }
    // SAFETY: rb_io_timeout raises only for an IO without a stream (excluded above); it reads
    // a field and allocates nothing.
    match unsafe { rb_sys::rb_io_timeout(io) } {
        NIL => Ok(None),
        t => duration::interval(t),
    }
}

/// Whether `e` is the IO::TimeoutError of an IO#timeout deadline (Ruby 3.2+).
fn is_io_timeout(e: &Error) -> bool {
    let Ok(class) = rb::class_named("IO::TimeoutError") else {
        return false;
    };
    e.value().is_some_and(|v| rb::is_kind_of(raw(v), class))
}

#[cfg(not(ruby_gte_3_2))]
pub fn io_deadline(_io: VALUE) -> Result<Option<Duration>, Error> {
    Ok(None)
}

/// The Fiber::Scheduler interface of the Ruby headers this was built against: their
/// RUBY_FIBER_SCHEDULER_VERSION, read by build.rs (1 for Ruby 3.1, whose headers predate the
/// constant). It, not the Ruby version, selects the hooks' contract: 4 is Ruby 4.1's.
pub const INTERFACE_VERSION: u32 = include!(concat!(env!("OUT_DIR"), "/fiber_scheduler_version"));

/// What a byte-moving hook's arguments ask for.
struct Request {
    io: VALUE,
    buffer: VALUE,
    length: usize,
    buffer_offset: usize,
    /// -1: the fd's current position (io_read, io_write).
    file_offset: i64,
    /// Interface 4+: one transfer of at most `length`, 0 meaning no I/O. Before: at least
    /// `length` bytes (0: at least one attempt).
    single_transfer: bool,
}

/// Decodes the arguments of io_read/io_write (`positioned` false) or io_pread/io_pwrite
/// (`positioned` true) as interface `version` orders them:
///
/// | version | io_read, io_write | io_pread, io_pwrite |
/// |---|---|---|
/// | 1 (3.1) | io, buffer, length | io, buffer, length, from |
/// | 2–3 (3.2–4.0) | io, buffer, length[, offset] | io, buffer, from, length, offset |
/// | 4 (4.1) | io, buffer, offset, length | io, buffer, from, offset, length |
///
/// The hooks pass INTERFACE_VERSION; the test suite every version (see rb_hook_arguments).
fn decode_request(positioned: bool, version: u32, args: &[Value]) -> Result<Request, Error> {
    // (fewest and most arguments, then where the length, buffer offset and file offset are)
    let (min, max, length, offset, from) = match (positioned, version) {
        (false, ..=3) => (3, 4, 2, Some(3), None),
        (false, _) => (4, 4, 3, Some(2), None),
        (true, ..=1) => (4, 4, 2, None, Some(3)),
        (true, 2..=3) => (5, 5, 3, Some(4), Some(2)),
        (true, _) => (5, 5, 4, Some(3), Some(2)),
    };
    arity(args, min, max)?;
    let offset = offset.map_or(NIL, |i| arg(args, i));
    Ok(Request {
        io: arg(args, 0),
        buffer: arg(args, 1),
        length: size_arg(arg(args, length), "length")?,
        buffer_offset: if offset == NIL { 0 } else { size_arg(offset, "offset")? },
        file_offset: match from {
            Some(i) => rb::int_arg(arg(args, i), "from", 0, i64::MAX)?,
            None => -1,
        },
        single_transfer: version >= 4,
    })
}

/// UringMachine::Scheduler.__hook_arguments__(hook, version, *args), for the test suite: how
/// `hook` (:io_read, :io_write, :io_pread or :io_pwrite) reads `args` under interface
/// `version`, as [length, buffer_offset, file_offset (-1: the fd's position), single_transfer].
/// Lets every Ruby test every interface's argument order, not only its own.
pub fn rb_hook_arguments(args: &[Value]) -> Result<Value, Error> {
    if args.len() < 2 {
        return Err(rb::arg_error(
            "expected a hook name, an interface version and its arguments",
        ));
    }
    let (hook, version) = (Symbol::try_convert(args[0])?, u32::try_convert(args[1])?);
    let positioned = match hook.name()?.as_ref() {
        "io_read" | "io_write" => false,
        "io_pread" | "io_pwrite" => true,
        other => return Err(rb::arg_error(format!("not a byte-moving hook: {other}"))),
    };
    let req = decode_request(positioned, version, &args[2..])?;
    let flag = if req.single_transfer { rb::TRUE } else { rb::FALSE };
    let decoded = [
        rb::uinteger(req.length as u64)?,
        rb::uinteger(req.buffer_offset as u64)?,
        rb::integer(req.file_offset)?,
        flag,
    ];
    let ary = rb::ary_new_capa(decoded.len())?;
    for v in decoded {
        rb::ary_push(ary, v)?;
    }
    Ok(rb::value(ary))
}

/// Memory of our own that a read or write of an IO's own buffer (rbuf, wbuf: CRuby's
/// io_fillbuf and flush come through the hooks with them) goes through: CRuby frees those when
/// the IO is closed, from any thread, while the ring may still read or write them; this lives
/// until the op's last CQE (the transfer returns only then). Bytes read are copied back only
/// while the IO is open and still owns that memory.
struct Bounce {
    memory: Vec<u8>, // its capacity holds the bytes moved
    target: *mut u8,
    reading: bool,
}

impl Bounce {
    fn new(direction: Direction, target: *mut u8, len: usize) -> Bounce {
        // Only its capacity is used, through raw pointers: never read as a slice, so it needs
        // no zeroing (the kernel, or the copy below, writes whatever is read back).
        // (try_with: no panic however late in the thread's life this runs)
        let mut memory = SPARE
            .try_with(|spare| spare.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        memory.reserve(len);
        let reading = matches!(direction, Direction::Read);
        if !reading {
            // SAFETY: `target` is the hook buffer's window of at least `len` bytes (checked by
            // the caller), in memory the IO owns and that nothing frees while we hold the GVL;
            // `memory` has room for `len` bytes.
            unsafe { std::ptr::copy_nonoverlapping(target, memory.as_mut_ptr(), len) };
        }
        Bounce {
            memory,
            target,
            reading,
        }
    }

    fn transfer(mut self, io: VALUE, run: impl FnOnce(*mut u8) -> Result<i64, Error>) -> Result<i64, Error> {
        let res = run(self.memory.as_mut_ptr())?;
        if self.reading && res > 0 {
            if !in_stream_buffers(io, self.target) || open_fptr(io).is_none() {
                return Err(rb::io_error("stream closed in another thread")); // CRuby 4.0 says so too
            }
            // SAFETY: the IO is open and `target` still lies in its buffer (checked just
            // above, with the GVL held since), which has room for the `len` >= res bytes the
            // hook asked for; the two do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(self.memory.as_ptr(), self.target, res as usize) };
        }
        Ok(res)
    }
}

impl Drop for Bounce {
    /// Its memory waits for the next Bounce of the thread: an allocation of 8 KiB per ring read
    /// cost a tenth of a request/response round trip through `gets`.
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        if memory.capacity() <= SPARE_CAPACITY {
            let _ = SPARE.try_with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() < SPARE_KEPT {
                    spare.push(memory);
                }
            });
        }
    }
}

thread_local! {
    /// Bounce memory that no op uses now (see Bounce's drop).
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many spare bounce buffers a thread keeps, and how large one may be.
const SPARE_KEPT: usize = 16;
const SPARE_CAPACITY: usize = 256 * 1024;

impl Scheduler {
    /// Moves bytes between `io` and the buffer until `length` is reached (or in a single
    /// transfer, see Request), EOF, or an error; returns the count or -errno. A write that
    /// stops after some bytes went out raises, carrying their count (PartialWrite); a read
    /// returns what it read, an interrupt then coming at the next wait.
    fn transfer(&self, req: Request, direction: Direction) -> Result<Value, Error> {
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        let fd = fd_arg(req.io)?;
        let buffer = HookBuffer::new(req.buffer, matches!(direction, Direction::Read))?;
        let (_, available) = buffer.window(req.buffer_offset)?;
        if req.length > available {
            return Err(rb::arg_error(format!(
                "length {} exceeds the buffer space {available}",
                req.length
            )));
        }
        if req.single_transfer && req.length == 0 {
            return Ok(rb::value(int(0)));
        }
        // read_nonblock/write_nonblock call the hook like any read (length 0): they get
        // EAGAIN; every other caller waits in the ring, up to IO#timeout.
        let deadline = io_deadline(req.io)?;
        let blocking = if req.length == 0 || req.single_transfer {
            Blocking::AgainIfNonblockCaller(deadline)
        } else {
            Blocking::Wait(deadline)
        };
        let writing = matches!(direction, Direction::Write);
        let mut total = 0usize;
        loop {
            let (ptr, room) = buffer.window(req.buffer_offset + total)?;
            let want = if req.single_transfer { req.length } else { room };
            let file_offset = if req.file_offset < 0 {
                -1
            } else {
                req.file_offset + total as i64
            };
            let moved = match machine.registered_slot(ptr, want) {
                Some(slot) => machine.transfer_fixed(direction, fd, ptr, want, file_offset, slot, deadline),
                None if in_stream_buffers(req.io, ptr) => {
                    Bounce::new(direction, ptr, want).transfer(req.io, |bounce| {
                        machine.transfer_once(
                            direction,
                            fd,
                            bounce,
                            want,
                            file_offset,
                            req.buffer,
                            blocking,
                            || Ok(()),
                        )
                    })
                }
                None => machine.transfer_once(direction, fd, ptr, want, file_offset, req.buffer, blocking, || Ok(())),
            };
            // A read interrupted after some bytes came: their count, the exception at the next
            // wait; IO#timeout's own deadline is this call's business only: just the count.
            let res = match moved {
                Ok(res) => res,
                Err(e) if writing => return Err(partial_write::mark(e, total)),
                Err(e) if total > 0 && deadline.is_some() && is_io_timeout(&e) => {
                    return Ok(rb::value(int(total as i64)))
                }
                Err(e) => return machine.keep_progress(total, e).map(|n| rb::value(int(n as i64))),
            };
            if res < 0 && writing && total > 0 {
                return Err(partial_write::mark(rb::errno_error(-res as i32, "write"), total));
            }
            if res < 0 {
                return Ok(rb::value(int(if total > 0 { total as i64 } else { res })));
            }
            total += res as usize;
            if writing {
                machine.count_written(fd, res as usize);
            }
            let done = res == 0 || total >= req.length || req.single_transfer;
            if done || total >= available {
                return Ok(rb::value(int(total as i64)));
            }
            if writing {
                // An interrupt that came while that piece went out anyway: raised now.
                machine.raise_pending().map_err(|e| partial_write::mark(e, total))?;
            }
        }
    }

    // The byte-moving hooks take their receiver as a plain Value: see rb::typed_ref.

    /// io_read(io, buffer, length[, offset]); 4.1: io_read(io, buffer, offset, length)
    pub fn rb_io_read(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
        let req = decode_request(false, INTERFACE_VERSION, args)?;
        rb::typed_ref::<Scheduler>(rb_self)?.transfer(req, Direction::Read)
    }

    pub fn rb_io_write(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
        let req = decode_request(false, INTERFACE_VERSION, args)?;
        rb::typed_ref::<Scheduler>(rb_self)?.transfer(req, Direction::Write)
    }

    /// io_pread(io, buffer, from, length, offset); 4.1: (io, buffer, from, offset, length);
    /// 3.1: (io, buffer, length, from).
    pub fn rb_io_pread(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
        let req = decode_request(true, INTERFACE_VERSION, args)?;
        rb::typed_ref::<Scheduler>(rb_self)?.transfer(req, Direction::Read)
    }

    pub fn rb_io_pwrite(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
        let req = decode_request(true, INTERFACE_VERSION, args)?;
        rb::typed_ref::<Scheduler>(rb_self)?.transfer(req, Direction::Write)
    }

    /// io_wait(io, events, timeout) → the ready events (a subset of `events`), or false when
    /// the timeout passed.
    pub fn rb_io_wait(&self, io: Value, events: Value, timeout: Value) -> Result<Value, Error> {
        let machine = self.bound_machine()?;
        if let Err(e) = machine.check_owner() {
            // Only a live machine's own process, on another thread: see wait_on_foreign_thread.
            if !machine.is_inherited_by_fork() && !machine.is_closed() {
                return wait_on_foreign_thread(io, events, timeout);
            }
            return Err(e);
        }
        let fd = fd_arg(raw(io))?;
        let events = rb::int_arg(raw(events), "events", 1, 7)? as u32;
        // IO::READABLE, PRIORITY and WRITABLE are POLLIN, POLLPRI and POLLOUT. Ruby also asks
        // about fds that are ready already (3.1 waits for "writable" after every buffered
        // File#write that flushes): a poll(2) answers those without the ring.
        let mut ready = poll_now(fd, events);
        if ready == 0 {
            // The timeout converts as IO#wait_readable's (Kernel#sleep's, ruby/duration.rs).
            let after = match raw(timeout) {
                NIL => None,
                t => duration::interval(t)?,
            };
            ready = match after {
                None => rb::check(machine.poll_fd(fd, events)? as i64, "io_wait")? as u32,
                after => {
                    if !machine.await_any_poll(&[(fd, events)], after)? {
                        return Ok(rb::value(rb::FALSE));
                    }
                    poll_now(fd, events)
                }
            };
        }
        // Errors and hang-ups make every requested direction "ready": the next call reports it.
        let mask = if ready & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) as u32 != 0 {
            events
        } else {
            ready & events
        };
        Ok(rb::value(int(mask as i64)))
    }
}

/// io_wait called on a thread that is not the scheduler's: Ruby 3.4+ runs CRuby's own
/// IO.copy_stream in blocking_operation_wait's worker thread (scheduler/blocking_workers.rb),
/// and that copy asks the fiber's scheduler to wait for its descriptors from there. The
/// calling thread waits on its own, as Ruby does where no scheduler is set (rb_io_wait, with
/// the GVL released); its interrupts raise there.
fn wait_on_foreign_thread(io: Value, events: Value, timeout: Value) -> Result<Value, Error> {
    fd_arg(raw(io))?;
    rb::int_arg(raw(events), "events", 1, 7)?;
    // SAFETY: rb_io_wait converts `io` and `timeout` (raising on bad ones) and waits with the
    // GVL released; whatever it raises is caught by protect.
    let ready = protect(|| unsafe { rb_sys::rb_io_wait(raw(io), raw(events), raw(timeout)) })?;
    Ok(rb::value(ready))
}

impl Scheduler {
    /// IO#pwrite on Ruby 3.3/3.4, routed here by lib/uring_machine/core_ext/io.rb: CRuby calls
    /// the io_pwrite hook from inside a GVL-released region there, so it must not be reached
    /// that way. One positioned write of `string` at `offset`, like pwrite(2).
    pub fn rb_pwrite_string(&self, io: Value, string: Value, offset: Value) -> Result<Value, Error> {
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        let fd = fd_arg(raw(io))?;
        let offset = rb::int_arg(raw(offset), "offset", 0, i64::MAX)?;
        let mut source = crate::ruby::buffer::WriteSource::prepare(raw(string), None)?;
        let (ptr, len, pin) = (source.ptr, source.len, source.object());
        let deadline = io_deadline(raw(io))?;
        let ptr = ptr as *mut u8; // only read from: this is a write
        let res = machine.transfer_once(
            Direction::Write,
            fd,
            ptr,
            len,
            offset,
            pin,
            Blocking::Wait(deadline),
            || source.lock(),
        )?;
        rb::check(res, "pwrite").map(|n| rb::value(int(n)))
    }
}
