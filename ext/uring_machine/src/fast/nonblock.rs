//! The IO fast path for IO#read_nonblock and IO#syswrite (UringMachine::FastCalls, called by
//! the methods lib/uring_machine/core_ext/io.rb puts in their place; see fast/io.rs for the
//! rest of the fast path). Under a fiber scheduler CRuby's read_nonblock reads through the
//! io_read hook (an IO::Buffer and hook dispatch per call; the hook answers EAGAIN to a
//! *_nonblock caller) and syswrite writes through io_write: about 450 and 350 ns per call above
//! a direct syscall here. These make the one syscall themselves when the IO is in a state where
//! that is exactly what CRuby's method does, and answer false (CRuby's method) otherwise.
//!
//! IO#write_nonblock stays CRuby's: it already is one write(2) with the GVL held, no hook (as
//! fast as the fast IO#write, measured). Sockets have their own read_nonblock/write_nonblock
//! (BasicSocket, recv/send with MSG_DONTWAIT, no hook), which this does not reach.
use magnus::{rb_sys::protect, Error, Value};
use rb_sys::{ruby_value_type, VALUE};

use crate::fast::io::{attempt, count, errno_exception, machine, plain_read_args, set_read_length, setstrbuf};
use crate::fast::plain_io::{plain_fptr, plain_write_fptr, Needs};
use crate::ops::direct_io::would_block;
use crate::ops::io::Direction;
use crate::ruby::names::{names, symbol};
use crate::ruby::value::{self as rb, int, raw, NIL};

/// rb_fd_set_nonblock, as CRuby's read_nonblock does before reading (a side effect callers
/// see: the fd stays O_NONBLOCK). False if fcntl fails (CRuby's method then raises).
fn set_nonblock(fd: i32) -> bool {
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return false;
    }
    // SAFETY: F_SETFL takes an int: the same flags plus O_NONBLOCK, as CRuby sets them.
    flags & libc::O_NONBLOCK != 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == 0
}

/// A regular file (or a block device): its read(2) waits for the disk whatever O_NONBLOCK
/// says, so RWF_NOWAIT's EAGAIN is not the answer CRuby's read would give.
fn reads_wait_for_storage(fd: i32) -> bool {
    // SAFETY: stat is plain old data: all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one stat into the local `st`; a bad fd is an error return.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return true;
    }
    matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFBLK)
}

/// UringMachine::FastCalls.read_nonblock(io, maxlen, outbuf, exception), for IO#read_nonblock
/// (lib/uring_machine/core_ext/io.rb, a Ruby method: keywords cost a Hash per call in a C one):
/// the result, or false to take CRuby's method (nothing was read).
pub fn rb_read_nonblock(io: Value, length: Value, outbuf: Value, exception: Value) -> Result<Value, Error> {
    let exception = match raw(exception) {
        rb::TRUE => true,
        rb::FALSE => false,
        _ => return Ok(rb::value(rb::FALSE)), // CRuby's raises
    };
    Ok(read_nonblock(raw(io), raw(length), raw(outbuf), exception)?.unwrap_or(rb::value(rb::FALSE)))
}

/// Ok(None): take CRuby's method (nothing was read).
fn read_nonblock(io: VALUE, length: VALUE, outbuf: VALUE, exception: bool) -> Result<Option<Value>, Error> {
    let Some(machine) = machine() else {
        return Ok(None); // first: a thread without our scheduler takes CRuby's method at once
    };
    let Some(maxlen) = plain_read_args(length, outbuf) else {
        return Ok(None);
    };
    // Its fd is read at once: nothing in the read-ahead (CRuby serves that first), character
    // buffer (CRuby raises) or write buffer, no duplex write IO (CRuby flushes those first).
    // Encodings do not matter: bytes are read.
    let Some(fptr) = plain_fptr(io, Needs::IDLE_READ) else {
        return Ok(None);
    };
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby frees
    // only with the IO: a close meanwhile only sets its fd to -1.
    let fd = unsafe { (*fptr).fd };
    if !set_nonblock(fd) {
        return Ok(None);
    }
    let string = setstrbuf(outbuf, maxlen)?;
    let res = attempt(machine, fptr, Direction::Read, string, 0, maxlen)?;
    if would_block(res) {
        // EOPNOTSUPP, or a file's RWF_NOWAIT: CRuby's read would have waited for the data.
        if res != -(libc::EAGAIN as i64) || reads_wait_for_storage(fd) {
            return Ok(None);
        }
        count(machine);
        if !exception {
            return Ok(Some(rb::value(symbol(names().wait_readable))));
        }
        let msg = c"read would block";
        // IO::EAGAINWaitReadable, "Resource temporarily unavailable - read would block"
        let wait = rb_sys::rb_io_wait_readwrite::RB_IO_WAIT_READABLE;
        // SAFETY: `msg` is a static C string; the function raises (always), caught by protect.
        return protect(|| -> VALUE { unsafe { rb_sys::rb_readwrite_syserr_fail(wait, libc::EAGAIN, msg.as_ptr()) } })
            .map(|_| None);
    }
    if res < 0 {
        // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby
        // frees only with the IO: a close meanwhile only sets its fd to -1.
        if unsafe { (*fptr).pathv } != NIL {
            return Ok(None); // CRuby's message names the path
        }
        return Err(errno_exception(-res as i32));
    }
    count(machine);
    set_read_length(string, res as usize, outbuf == NIL)?;
    if res > 0 {
        return Ok(Some(rb::value(string)));
    }
    if !exception {
        return Ok(Some(rb::value(NIL)));
    }
    // SAFETY: rb_eof_error raises EOFError, caught by protect.
    protect(|| unsafe { rb_sys::rb_eof_error() }).map(|_| None)
}

/// IO#syswrite(string) with one non-empty String when CRuby's would write it at once: the
/// write side open and writable, no write buffer (CRuby warns), no read-ahead (CRuby seeks
/// back over it), not STDOUT/STDERR (whose EPIPE carries a signal number). One write, as
/// CRuby's syswrite: the count, partial or not.
///
/// IO#syswrite while FastCalls is in place (core_ext/io.rb): that, else CRuby's method (kept
/// as __cruby_syswrite). A method of the extension rather than of Ruby code, so that CRuby's
/// "syswrite for buffered IO" warning names the caller's line, as it does without the gem.
pub fn rb_io_syswrite(io: Value, string: Value) -> Result<Value, Error> {
    if let Some(count) = syswrite(raw(io), raw(string))? {
        return Ok(count);
    }
    let (method, io, string) = (names().cruby_syswrite, raw(io), raw(string));
    // SAFETY: `io` and `string` are this call's live arguments; whatever CRuby's syswrite
    // raises is caught by protect.
    protect(|| unsafe { rb_sys::rb_funcall(io, method, 1, string) }).map(rb::value)
}

fn syswrite(io: VALUE, string: VALUE) -> Result<Option<Value>, Error> {
    let Some(machine) = machine() else {
        return Ok(None); // first: a thread without our scheduler takes CRuby's method at once
    };
    if rb::is_special(string)
        || rb::type_of(string) != ruby_value_type::RUBY_T_STRING
        // SAFETY: `string` is a String (checked just before): RSTRING_LEN reads its header.
        || unsafe { rb_sys::RSTRING_LEN(string) } == 0
    {
        return Ok(None);
    }
    let needs = Needs::WRITABLE | Needs::NO_EPIPE_SIGNAL | Needs::NO_WRITE_BUFFER | Needs::NO_READ_AHEAD;
    let Some(fptr) = plain_write_fptr(io, needs) else {
        return Ok(None);
    };
    // SAFETY: `string` is a String (checked above).
    let len = unsafe { rb_sys::RSTRING_LEN(string) } as usize;
    let res = attempt(machine, fptr, Direction::Write, string, 0, len)?;
    if would_block(res) {
        return Ok(None); // CRuby's syswrite waits in the io_write hook
    }
    if res < 0 {
        // SAFETY: `fptr` is the rb_io_t of the receiver or of its write IO (which the receiver
        // references): live, freed only with its IO; a plain field read.
        if unsafe { (*fptr).pathv } != NIL {
            return Ok(None);
        }
        return Err(errno_exception(-res as i32));
    }
    count(machine);
    Ok(Some(rb::value(int(res))))
}
