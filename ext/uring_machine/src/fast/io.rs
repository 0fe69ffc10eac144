//! The IO fast path: UringMachine::FastIO (IO#readpartial, IO#sysread, IO#read(length)),
//! prepended to IO by lib/uring_machine/core_ext/io.rb, and the one-String IO#write of
//! CoalescedWrites (coalesce.rs). Under a fiber scheduler CRuby's own methods reach the fd
//! through hook dispatch and an IO::Buffer per call; when the current fiber is non-blocking
//! under our Scheduler and the IO is in a state where going straight to the fd is exactly what
//! CRuby would do (nothing in its read-ahead, character or write buffer; no duplex write IO; no
//! encoding conversion or newline decorator; sync writes without a write lock), these move the
//! bytes themselves with a direct non-blocking syscall. When that would block, CRuby's own
//! method moves the rest (its hooks then wait in the ring): so every wait is CRuby's, with its
//! IO#timeout, its interrupts and, on 4.0, the blocking-operation record through which an
//! IO#close from another thread finds the waiting fiber. In every other state, and for every
//! argument that needs a conversion or raises, they are CRuby's own methods (`super`).
//!
//! Results are CRuby's: readpartial/sysread/read(n) return a new binary String or fill
//! `outbuf` (its encoding kept, resized as CRuby resizes it), EOFError (nil for read(n)) at
//! EOF; write returns the String's bytesize after writing all of it. Errno exceptions are
//! raised as CRuby raises them for an IO without a path; an IO with a path (a File) whose
//! syscall fails before any byte moved takes CRuby's method instead, which raises its own.
use std::os::raw::c_long;

use magnus::{rb_sys::protect, Error, Value};
use rb_sys::{ruby_value_type, VALUE};

use crate::fast::coalesce::{call_super, our_scheduler};
use crate::fast::plain_io::{plain_fptr, plain_write_fptr, Needs};
use crate::fast::switch::Switch;
use crate::fast::write_count::counted;
use crate::machine::Machine;
use crate::ops::direct_io::would_block;
use crate::ops::io::{Blocking, Direction};
use crate::ruby::partial_write;
use crate::ruby::value::{self as rb, int, raw, NIL};
use crate::scheduler::Scheduler;

static ENABLED: Switch = Switch::on();

/// UringMachine.fast_io = bool
pub fn rb_set_enabled(flag: Value) -> Value {
    ENABLED.set(flag)
}

/// UringMachine.fast_io → bool
pub fn rb_enabled() -> bool {
    ENABLED.is_on()
}

/// The machine of the current fiber's scheduler when the fast path is on, the fiber is
/// non-blocking under our Scheduler on its own thread, and that scheduler's class keeps our
/// io_read/io_write hooks.
pub(crate) fn machine() -> Option<&'static Machine> {
    if !ENABLED.is_on() {
        return None;
    }
    let scheduler = our_scheduler()?;
    let scheduler = rb::typed_ref::<Scheduler>(rb::value(scheduler)).ok()?;
    if !scheduler.has_own_io_hooks() {
        return None; // a subclass's io_read/io_write must see every read and write
    }
    let machine = scheduler.bound_machine().ok()?;
    machine.check_owner().ok()?;
    Some(machine)
}

/// One direct, never waiting read or write of `len` bytes at byte `offset` of `string`: the
/// count or -errno (would-block included).
pub(crate) fn attempt(
    machine: &Machine,
    fptr: *mut rb_sys::rb_io_t,
    direction: Direction,
    string: VALUE,
    offset: usize,
    len: usize,
) -> Result<i64, Error> {
    let fd = check_closed(fptr)?;
    // SAFETY: `string` is a live String with room for offset + len bytes (setstrbuf made it
    // for a read; a write's offset + len is within its length), so the pointer stays inside;
    // transfer_once never waits here (Blocking::Never), so it cannot move meanwhile.
    let ptr = unsafe { (rb_sys::RSTRING_PTR(string) as *mut u8).add(offset) };
    machine.transfer_once(direction, fd, ptr, len, -1, string, Blocking::Never, || Ok(()))
}

/// IOError "closed stream" when the IO was closed meanwhile (rb_io_check_closed).
fn check_closed(fptr: *mut rb_sys::rb_io_t) -> Result<i32, Error> {
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby frees
    // only with the IO: a close meanwhile only sets its fd to -1.
    let fd = unsafe { (*fptr).fd };
    if fd < 0 {
        // SAFETY: as above; the IOError it raises is caught by protect.
        protect(|| unsafe {
            rb_sys::rb_io_check_closed(fptr);
            NIL
        })?;
    }
    Ok(fd)
}

/// The Errno exception CRuby raises for an IO without a path (its message is strerror alone).
pub(crate) fn errno_exception(errno: i32) -> Error {
    // SAFETY: a nil message is allowed; the allocation may raise, caught by protect.
    syserr(protect(|| unsafe { rb_sys::rb_syserr_new_str(errno, NIL) }), errno)
}

/// The SystemCallError CRuby built (`made`) for `errno`, as an Error to raise.
pub(crate) fn syserr(made: Result<VALUE, Error>, errno: i32) -> Error {
    match made {
        Ok(exc) => match magnus::Exception::from_value(rb::value(exc)) {
            Some(e) => Error::from(e),
            None => rb::errno_error(errno, "IO"),
        },
        Err(e) => e,
    }
}

pub(crate) fn count(machine: &Machine) {
    machine.with(|s| s.metrics.fast_io += 1);
}

/// io_setstrbuf: a new String of `maxlen` bytes, or `outbuf` (a mutable String) made room for
/// `maxlen` bytes, its length and encoding kept.
pub(crate) fn setstrbuf(outbuf: VALUE, maxlen: usize) -> Result<VALUE, Error> {
    // SAFETY: `outbuf` is nil or a non-frozen String (plain_read_args checked); allocating,
    // modifying (locked, frozen meanwhile) and growing raise only through protect.
    protect(|| unsafe {
        if outbuf == NIL {
            // Room for maxlen bytes, length 0 (set once read): unlike rb_str_new(NULL, maxlen)
            // on Ruby 4.0, nothing zero-fills it.
            return rb_sys::rb_str_buf_new(maxlen as c_long);
        }
        let len = rb_sys::RSTRING_LEN(outbuf) as usize;
        if len >= maxlen {
            rb_sys::rb_str_modify(outbuf);
        } else {
            rb_sys::rb_str_modify_expand(outbuf, (maxlen - len) as c_long);
        }
        outbuf
    })
}

/// io_set_read_length, with io_shrink_read_string for a String made by setstrbuf.
pub(crate) fn set_read_length(string: VALUE, total: usize, shrinkable: bool) -> Result<(), Error> {
    // SAFETY: `string` is the String setstrbuf made room for at least `total` bytes (so no
    // overflow); what setting its length or shrinking it raises is caught by protect.
    protect(|| unsafe {
        if rb_sys::RSTRING_LEN(string) as usize != total {
            rb_sys::rb_str_set_len(string, total as c_long);
            if shrinkable && (rb_sys::rb_str_capacity(string) as usize).saturating_sub(total) > 4096 {
                rb_sys::rb_str_resize(string, total as c_long);
            }
        }
        NIL
    })
    .map(|_| ())
}

/// A positive Integer length and nil or a mutable String: the arguments a direct read takes
/// as they are (anything else needs CRuby's conversion or raises).
pub(crate) fn plain_read_args(length: VALUE, outbuf: VALUE) -> Option<usize> {
    if !rb::is_fixnum(length) || rb::fixnum_value(length) <= 0 {
        return None;
    }
    if outbuf != NIL
        && (rb::is_special(outbuf) || rb::type_of(outbuf) != ruby_value_type::RUBY_T_STRING || rb::is_frozen(outbuf))
    {
        return None;
    }
    Some(rb::fixnum_value(length) as usize)
}

#[derive(Clone, Copy, PartialEq)]
enum ReadKind {
    /// readpartial: one read, EOFError at EOF.
    Partial,
    /// sysread: the same on an IO with nothing buffered.
    Sys,
    /// read(length): reads until `length` bytes or EOF, nil at EOF.
    Full,
}

/// Ok(None): take CRuby's method (nothing was read).
fn read(io: VALUE, args: &[Value], kind: ReadKind) -> Result<Option<Value>, Error> {
    let Some(machine) = machine() else {
        return Ok(None); // first: a thread without our scheduler takes CRuby's method at once
    };
    let (length, outbuf) = match args {
        [l] => (raw(*l), NIL),
        [l, b] => (raw(*l), raw(*b)),
        _ => return Ok(None),
    };
    // Anything else: CRuby's method converts, raises, or answers without a syscall.
    let Some(maxlen) = plain_read_args(length, outbuf) else {
        return Ok(None);
    };
    // A byte read is exactly a read(2) of the fd: nothing buffered, no conversion.
    let Some(fptr) = plain_fptr(io, Needs::IDLE_READ | Needs::RAW_READS) else {
        return Ok(None);
    };
    // readpartial/sysread of an IO without a path (CRuby's errors for those name no file)
    // wait in the ring here (fast/wait.rs); read(length) leaves its waits to CRuby's method.
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby frees
    // only with the IO: a close meanwhile only sets its fd to -1.
    let waits_here = kind != ReadKind::Full && unsafe { (*fptr).pathv } == NIL;
    // SAFETY: as above.
    if !waits_here && machine.reads_wait(unsafe { (*fptr).fd }) {
        return Ok(None); // its last read waited: CRuby's method goes straight to the ring
    }
    let string = setstrbuf(outbuf, maxlen)?;
    if waits_here {
        return read_waiting(machine, io, fptr, string, maxlen, outbuf == NIL);
    }
    read_attempts(machine, fptr, string, outbuf, maxlen, kind)
}

/// read's direct attempts, for an IO whose waits CRuby's method does. Out of line: its frame
/// would otherwise sit on the machine stack of every fiber that waits in read_waiting.
#[inline(never)]
fn read_attempts(
    machine: &Machine,
    fptr: *mut rb_sys::rb_io_t,
    string: VALUE,
    outbuf: VALUE,
    maxlen: usize,
    kind: ReadKind,
) -> Result<Option<Value>, Error> {
    let mut total = 0usize;
    let mut would_wait = false;
    loop {
        let res = attempt(machine, fptr, Direction::Read, string, total, maxlen - total)?;
        if would_block(res) {
            would_wait = true;
            break;
        }
        if res < 0 {
            // SAFETY: as above.
            let path = unsafe { (*fptr).pathv };
            if path != NIL && total == 0 {
                return Ok(None);
            }
            return Err(errno_exception(-res as i32));
        }
        total += res as usize;
        if res == 0 || kind != ReadKind::Full || total >= maxlen {
            break;
        }
    }
    if would_wait && total == 0 {
        return Ok(None); // nothing read, nothing changed: CRuby's method waits and reads
    }
    count(machine);
    set_read_length(string, total, outbuf == NIL)?;
    if would_wait {
        // read(length) got part of it: CRuby's read(rest) waits for the rest (nil at EOF).
        let rest = call_super(&[int((maxlen - total) as i64)])?;
        if raw(rest) != NIL {
            // SAFETY: both are live Strings (ours, and super's answer); growing ours may raise,
            // under protect.
            protect(|| unsafe { rb_sys::rb_str_buf_append(string, raw(rest)) })?;
        }
    }
    if total > 0 {
        return Ok(Some(rb::value(string)));
    }
    match kind {
        ReadKind::Full => Ok(Some(rb::value(NIL))),
        // SAFETY: rb_eof_error raises EOFError, caught by protect.
        _ => protect(|| unsafe { rb_sys::rb_eof_error() }).map(|_| None),
    }
}

/// readpartial/sysread through fast::wait::read: the String, EOFError at EOF, CRuby's Errno
/// exception; None (CRuby's method) where this Ruby's wait cannot be recorded.
fn read_waiting(
    machine: &Machine,
    io: VALUE,
    fptr: *mut rb_sys::rb_io_t,
    string: VALUE,
    maxlen: usize,
    shrinkable: bool,
) -> Result<Option<Value>, Error> {
    let fd = check_closed(fptr)?;
    let Some(res) = crate::fast::wait::read(machine, io, fd, string, maxlen)? else {
        return Ok(None);
    };
    if res < 0 {
        return Err(errno_exception(-res as i32));
    }
    count(machine);
    set_read_length(string, res as usize, shrinkable)?; // an outbuf is emptied at EOF too
    if res == 0 {
        // SAFETY: rb_eof_error raises EOFError, caught by protect.
        return protect(|| unsafe { rb_sys::rb_eof_error() }).map(|_| None);
    }
    Ok(Some(rb::value(string)))
}

fn read_or_super(rb_self: Value, args: &[Value], kind: ReadKind) -> Result<Value, Error> {
    match read(raw(rb_self), args, kind)? {
        Some(v) => Ok(v),
        None => call_super(rb::raw_slice(args)),
    }
}

/// IO#readpartial(maxlen, outbuf = nil)
pub fn rb_readpartial(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    read_or_super(rb_self, args, ReadKind::Partial)
}

/// IO#sysread(maxlen, outbuf = nil)
pub fn rb_sysread(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    read_or_super(rb_self, args, ReadKind::Sys)
}

/// IO#read(length = nil, outbuf = nil): the fast path for a positive length only.
pub fn rb_read(rb_self: Value, args: &[Value]) -> Result<Value, Error> {
    read_or_super(rb_self, args, ReadKind::Full)
}

/// IO#write(string) with one non-empty String, when `io` writes it unchanged and at once
/// (Needs::WRITES_AT_ONCE: sync mode, nothing buffered, no conversion), no other writer
/// holds its write lock (CRuby serialises writers on it; 3.3+ create it on an IO's first
/// write, 3.1 with a write buffer only), it has no read-ahead to seek back over, and is not
/// STDOUT/STDERR. None: take CRuby's method.
pub fn write(io: VALUE, string: VALUE) -> Option<Result<Value, Error>> {
    if !ENABLED.is_on()
        || rb::is_special(string)
        || rb::type_of(string) != ruby_value_type::RUBY_T_STRING
        // SAFETY: `string` is a String (checked just before): RSTRING_LEN reads its header.
        || unsafe { rb_sys::RSTRING_LEN(string) } == 0
    {
        return None;
    }
    let fptr = fast_write_fptr(io)?;
    let machine = machine()?;
    write_all(machine, io, fptr, string).transpose()
}

/// The rb_io_t that a fast write to `io` goes through (see `write`), if it may.
fn fast_write_fptr(io: VALUE) -> Option<*mut rb_sys::rb_io_t> {
    let fptr = plain_write_fptr(
        io,
        Needs::WRITES_AT_ONCE | Needs::NO_EPIPE_SIGNAL | Needs::NO_READ_AHEAD,
    )?;
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby frees
    // only with the IO: a close meanwhile only sets its fd to -1.
    let locked = write_lock_held(unsafe { (*fptr).write_lock });
    (!locked).then_some(fptr)
}

/// IO#write(a, b, ...) with Strings only, when `io` takes the fast write (see `write`): all of
/// them in one direct writev/sendmsg, with no String joined; once one would block, CRuby's
/// IO#write writes the rest as one String. None: nothing written, CRuby's method takes it.
pub fn write_pieces(io: VALUE, pieces: &[Value]) -> Option<Result<Value, Error>> {
    if !ENABLED.is_on() || !pieces.iter().all(|p| rb::is_string(raw(*p))) {
        return None;
    }
    let fptr = fast_write_fptr(io)?;
    let machine = machine()?;
    write_vectored(machine, io, fptr, pieces).transpose()
}

fn write_vectored(
    machine: &Machine,
    io: VALUE,
    fptr: *mut rb_sys::rb_io_t,
    pieces: &[Value],
) -> Result<Option<Value>, Error> {
    // SAFETY: pending interrupts run Ruby code (trap handlers, Thread#raise) whose raise
    // protect catches; the IO and pieces are re-checked after it.
    protect(|| unsafe {
        rb_sys::rb_thread_check_ints(); // io_binwrite: pending interrupts first
        NIL
    })?;
    let fd = check_closed(fptr)?;
    let iov: Vec<libc::iovec> = pieces
        .iter()
        // SAFETY: every piece is a String (write_pieces checked), held by the caller's arguments;
        // its pointer and length stay valid while no Ruby code runs (until the writev below).
        .map(|&p| unsafe {
            libc::iovec {
                iov_base: rb_sys::RSTRING_PTR(raw(p)) as *mut libc::c_void,
                iov_len: rb_sys::RSTRING_LEN(raw(p)) as usize,
            }
        })
        .filter(|v| v.iov_len > 0)
        .collect();
    let total: usize = iov.iter().map(|v| v.iov_len).sum();
    if iov.len() > libc::UIO_MAXIOV as usize || total == 0 {
        return Ok(None);
    }
    let res = machine.try_direct_writev(fd, &iov);
    if would_block(res) {
        return Ok(None);
    }
    if res < 0 {
        // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby
        // frees only with the IO: a close meanwhile only sets its fd to -1.
        if unsafe { (*fptr).pathv } != NIL {
            return Ok(None); // a File: CRuby's method raises with its path
        }
        return Err(errno_exception(-res as i32));
    }
    count(machine);
    let written = res as usize;
    if written == total {
        machine.count_written(fd, total);
        return Ok(Some(rb::value(int(total as i64))));
    }
    // The bytes not written yet, as one String for CRuby's write (which waits for room).
    // (Pointers re-read from the Strings: the allocation may run the GC.)
    // SAFETY: every piece is a String (checked by write_pieces) held by the caller's arguments,
    // unchanged since the attempt (no Ruby code ran), so `len - take` lies inside it; the new
    // String is ours. Allocating and growing it may raise NoMemoryError, under protect.
    let rest = protect(|| unsafe {
        let rest = rb_sys::rb_str_buf_new((total - written) as c_long);
        let mut skip = written;
        for piece in pieces.iter().map(|p| raw(*p)) {
            let len = rb_sys::RSTRING_LEN(piece) as usize;
            let take = len.saturating_sub(skip);
            if take > 0 {
                let from = rb_sys::RSTRING_PTR(piece).add(len - take);
                rb_sys::rb_str_buf_cat(rest, from, take as c_long);
            }
            skip = skip.saturating_sub(len);
        }
        rest
    })?;
    let rest_written: i64 = magnus::TryConvert::try_convert(counted(io, written, || call_super(&[rest]))?)?;
    Ok(Some(rb::value(int(written as i64 + rest_written))))
}

/// Whether a writer holds an IO's write lock: one waiting in the middle of its String, whose
/// bytes must not be interleaved with ours. Direct attempts cannot switch fibers, and when they
/// hand the rest to CRuby's method, it takes the free lock without switching either.
fn write_lock_held(lock: VALUE) -> bool {
    // SAFETY: a set write_lock is the Mutex CRuby made for the IO (a hidden object it marks);
    // rb_mutex_locked_p raises only for a non-Mutex, and reads its owner field otherwise.
    lock != 0 && lock != NIL && unsafe { rb_sys::rb_mutex_locked_p(lock) } != rb::FALSE
}

/// Writes all of `string` with direct attempts (no fiber switch can happen meanwhile, so it
/// cannot change); once one would block, CRuby's IO#write writes the rest (waiting through the
/// hooks), counting for the exception that may stop it (fast/write_count.rs). None:
/// nothing written, CRuby's method takes it all.
fn write_all(machine: &Machine, io: VALUE, fptr: *mut rb_sys::rb_io_t, string: VALUE) -> Result<Option<Value>, Error> {
    // io_binwrite: pending interrupts first.
    // SAFETY: they run Ruby code (trap handlers, Thread#raise) whose raise protect catches;
    // the String's length is read after it.
    protect(|| unsafe {
        rb_sys::rb_thread_check_ints();
        NIL
    })?;
    // SAFETY: `string` is a String (checked by `write`): RSTRING_LEN reads its header.
    let total = unsafe { rb_sys::RSTRING_LEN(string) } as usize;
    let mut written = 0usize;
    loop {
        let res = attempt(machine, fptr, Direction::Write, string, written, total - written)?;
        if would_block(res) {
            break;
        }
        if res < 0 {
            // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which
            // CRuby frees only with the IO: a close meanwhile only sets its fd to -1.
            let path = unsafe { (*fptr).pathv };
            if path != NIL && written == 0 {
                return Ok(None);
            }
            // SAFETY: as above.
            machine.count_written(unsafe { (*fptr).fd }, written);
            return Err(partial_write::mark(errno_exception(-res as i32), written));
        }
        written += res as usize;
        if written >= total {
            count(machine);
            // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO), freed only with the IO.
            machine.count_written(unsafe { (*fptr).fd }, total);
            return Ok(Some(rb::value(int(total as i64))));
        }
    }
    if written == 0 {
        return Ok(None);
    }
    count(machine);
    // SAFETY: written < total <= the String's length: a valid range of a live String; the
    // new String's allocation may raise, under protect.
    let rest = protect(|| unsafe { rb_sys::rb_str_substr(string, written as c_long, (total - written) as c_long) })
        .map_err(|e| partial_write::mark(e, written))?;
    let rest_written = counted(io, written, || call_super(&[rest]))?;
    let rest_written: i64 = magnus::TryConvert::try_convert(rest_written)?;
    Ok(Some(rb::value(int(written as i64 + rest_written))))
}
