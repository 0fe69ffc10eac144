//! The IO fast path for BasicSocket#recv (UringMachine::FastCalls.recv, called by the method
//! lib/uring_machine/core_ext/basic_socket.rb puts in its place). CRuby's makes the syscall in a
//! GVL-released blocking region (with its String locked) and waits through io_wait when it
//! would block; this makes it with MSG_DONTWAIT and the GVL held when the current fiber is
//! non-blocking under our Scheduler (see fast::io::machine), and leaves it to CRuby's method
//! (which waits) when it would block, when the arguments need a conversion, and in every other
//! state: about 11% less per 64-byte recv on a UNIX socket here.
//!
//! BasicSocket#send stays CRuby's: the same treatment measured no gain (1540 vs 1521 ns per
//! 64-byte send, the syscall is most of it) and the wrapper costs ~110 ns when CRuby's runs.
//!
//! Results are CRuby's: a new binary String or `outbuf` (encoding kept, length set, capacity
//! not shrunk); at a stream socket's EOF CRuby's recv (whose answer changed in 3.3, "" to nil)
//! answers again. Errors are CRuby's Errno with "recvfrom(2)", IO::TimeoutError for ETIMEDOUT
//! on 3.3+.
use magnus::{rb_sys::protect, Error, Value};
use rb_sys::VALUE;

use crate::fast::io::{count, machine, setstrbuf, syserr};
use crate::fast::plain_io::{plain_fptr, Needs};
use crate::ruby::value::{self as rb, last_errno, raw, NIL};

/// recv flags whose answer does not depend on whether the call may wait once data is there
/// (MSG_WAITALL does; MSG_TRUNC can answer more than the buffer holds).
const RECV_FLAGS: i32 = libc::MSG_PEEK | libc::MSG_OOB | libc::MSG_DONTWAIT;

/// An Integer that NUM2INT takes as it is.
fn c_int(v: VALUE) -> Option<i32> {
    if !rb::is_fixnum(v) {
        return None;
    }
    i32::try_from(rb::fixnum_value(v)).ok()
}

/// The fd of a socket that CRuby's recv would use at once: open, nothing buffered to read.
fn socket_fd(io: VALUE) -> Option<i32> {
    let fptr = plain_fptr(io, Needs::NO_READ_AHEAD | Needs::NO_CHAR_BUFFER)?;
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO), freed only with the IO.
    Some(unsafe { (*fptr).fd })
}

/// The exception CRuby's recv raises for `errno` after `syscall` failed.
fn socket_error(errno: i32, syscall: &std::ffi::CStr) -> Error {
    #[cfg(ruby_gte_3_3)]
    if errno == libc::ETIMEDOUT {
        // rb_thread_io_blocking_call (3.3+) turns it into IO::TimeoutError.
        let msg = "Blocking operation timed out!";
        let class = rb::class_named("IO::TimeoutError").ok().map(rb::value);
        return Error::new(
            class
                .and_then(magnus::ExceptionClass::from_value)
                .unwrap_or_else(|| rb::ruby().exception_io_error()),
            msg,
        );
    }
    syserr(
        // SAFETY: `syscall` is a C string that outlives the call; the allocation may raise,
        // caught by protect.
        protect(|| unsafe { rb_sys::rb_syserr_new(errno, syscall.as_ptr()) }),
        errno,
    )
}

/// SO_TYPE of `fd`.
fn socket_type(fd: i32) -> i32 {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_TYPE writes one c_int into `kind`, a local whose size `len` gives.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            &mut kind as *mut _ as *mut _,
            &mut len,
        )
    };
    kind
}

/// UringMachine::FastCalls.recv(io, maxlen, flags, outbuf), for BasicSocket#recv(maxlen,
/// flags = nil, outbuf = nil): the String (or nil), or false to take CRuby's method.
pub fn rb_recv(io: Value, length: Value, flags: Value, outbuf: Value) -> Result<Value, Error> {
    Ok(recv(raw(io), raw(length), raw(flags), raw(outbuf))?.unwrap_or(rb::value(rb::FALSE)))
}

/// Ok(None): take CRuby's method (nothing was received).
fn recv(io: VALUE, length: VALUE, flags: VALUE, outbuf: VALUE) -> Result<Option<Value>, Error> {
    let Some(maxlen) = c_int(length).filter(|&n| n > 0) else {
        return Ok(None);
    };
    let flags = if flags == NIL { Some(0) } else { c_int(flags) };
    let Some(flags) = flags.filter(|f| f & !RECV_FLAGS == 0) else {
        return Ok(None);
    };
    if outbuf != NIL && (!rb::is_string(outbuf) || rb::is_frozen(outbuf)) {
        return Ok(None);
    }
    let Some(fd) = socket_fd(io) else {
        return Ok(None);
    };
    let Some(machine) = machine() else {
        return Ok(None);
    };
    let string = setstrbuf(outbuf, maxlen as usize)?;
    // SAFETY: `string` is the String setstrbuf made room for `maxlen` bytes in.
    let ptr = unsafe { rb_sys::RSTRING_PTR(string) } as *mut libc::c_void;
    // SAFETY: `maxlen` writable bytes at `ptr`; MSG_DONTWAIT: written during the call only,
    // while no Ruby code can move the String.
    let res = unsafe { libc::recv(fd, ptr, maxlen as usize, flags | libc::MSG_DONTWAIT) };
    if res < 0 {
        let errno = -last_errno() as i32;
        if errno == libc::EAGAIN || errno == libc::EINTR {
            return Ok(None); // CRuby's recv waits (or handles the interrupt) and receives
        }
        return Err(socket_error(errno, c"recvfrom(2)"));
    }
    if res == 0 {
        match socket_type(fd) {
            // EOF answers again: CRuby's recv says it its way ("" before 3.3, nil since).
            libc::SOCK_STREAM => return Ok(None),
            libc::SOCK_DGRAM => {}
            // rsock_is_dgram is false for the rest: nil since 3.3.
            _ if cfg!(ruby_gte_3_3) => {
                count(machine);
                return Ok(Some(rb::value(NIL)));
            }
            _ => {}
        }
    }
    count(machine);
    // SAFETY: no protect needed: rb_str_set_len raises only for a frozen, tmp-locked or shared
    // String, and `string` is none of these. setstrbuf made it (new) or just ran rb_str_modify
    // on it (which raised for those and unshared it), and only recv(2) ran since: no Ruby code
    // (no fiber switch, the GVL held). `res` <= maxlen, the room setstrbuf made.
    unsafe { rb_sys::rb_str_set_len(string, res as _) };
    Ok(Some(rb::value(string)))
}
