//! Whether an IO is in a state where a fast path may go straight to its descriptor: each fast
//! path names what it needs of the IO's stream (`Needs`), and `plain_fptr` checks all of it in
//! one place. What a path needs is what makes its direct syscall exactly CRuby's method:
//! nothing buffered that CRuby would serve or flush first, no conversion of the bytes, no
//! special case (a terminal, STDOUT's EPIPE signal).
use std::ops::BitOr;

use rb_sys::VALUE;

use crate::ruby::io_stream::{open_fptr, write_io};
use crate::ruby::value::NIL;

/// CRuby's newline and stateful decorators (crlf, universal newline, ...): an IO with any of
/// them transforms its bytes.
const DECORATORS: i32 = rb_sys::ruby_econv_flag_type::RUBY_ECONV_DECORATOR_MASK as i32
    | rb_sys::ruby_econv_flag_type::RUBY_ECONV_STATEFUL_DECORATOR_MASK as i32;

/// FMODE_TTY (io.h): a terminal's read after EOF would wait again, and getbyte on STDIN flushes
/// STDOUT first.
const FMODE_TTY: u32 = 0x10;

/// CRuby's FMODE_SIGNAL_ON_EPIPE (io.c, the same bit in 3.1-4.0): STDOUT and STDERR, whose
/// EPIPE carries a signal number.
const FMODE_SIGNAL_ON_EPIPE: u32 = 1 << 17;

/// What a fast path needs of an IO's stream, combined with `|`.
#[derive(Clone, Copy)]
pub struct Needs(u32);

impl Needs {
    /// Open for reading.
    pub const READABLE: Needs = Needs(1);
    /// Open for writing.
    pub const WRITABLE: Needs = Needs(1 << 1);
    /// Sync mode: CRuby writes at once, through no write buffer.
    pub const SYNC: Needs = Needs(1 << 2);
    /// Nothing in the read-ahead buffer (rbuf: getc, ungetc, gets leave bytes there).
    pub const NO_READ_AHEAD: Needs = Needs(1 << 3);
    /// Nothing in the character buffer (cbuf).
    pub const NO_CHAR_BUFFER: Needs = Needs(1 << 4);
    /// Nothing in the write buffer (wbuf).
    pub const NO_WRITE_BUFFER: Needs = Needs(1 << 5);
    /// No duplex write IO (IO.popen "r+") that CRuby flushes before a read.
    pub const NOT_DUPLEX: Needs = Needs(1 << 6);
    /// Bytes read are the answer: no text mode, no conversion (internal encoding), no newline
    /// decorator.
    pub const RAW_READS: Needs = Needs(1 << 7);
    /// Bytes written are the String's: no text mode, no external encoding but binary, no
    /// newline decorator.
    pub const RAW_WRITES: Needs = Needs(1 << 8);
    /// Not a terminal.
    pub const NOT_TTY: Needs = Needs(1 << 9);
    /// Not STDOUT or STDERR, whose EPIPE carries a signal number.
    pub const NO_EPIPE_SIGNAL: Needs = Needs(1 << 10);

    /// What a direct read(2) of the descriptor needs to be CRuby's read (IO#readpartial,
    /// #sysread, #read_nonblock): readable, nothing buffered either way, no duplex write IO.
    pub const IDLE_READ: Needs = Needs::READABLE
        .and(Needs::NO_READ_AHEAD)
        .and(Needs::NO_CHAR_BUFFER)
        .and(Needs::NO_WRITE_BUFFER)
        .and(Needs::NOT_DUPLEX);
    /// What CRuby needs to write a String's bytes unchanged and at once: writable, sync, no
    /// write buffer, no conversion.
    pub const WRITES_AT_ONCE: Needs = Needs::WRITABLE
        .and(Needs::SYNC)
        .and(Needs::NO_WRITE_BUFFER)
        .and(Needs::RAW_WRITES);

    /// Both `self` and `other` (`|` where a constant needs it).
    pub const fn and(self, other: Needs) -> Needs {
        Needs(self.0 | other.0)
    }

    fn has(self, need: Needs) -> bool {
        self.0 & need.0 != 0
    }
}

impl BitOr for Needs {
    type Output = Needs;

    fn bitor(self, other: Needs) -> Needs {
        self.and(other)
    }
}

/// The rb_io_t of `io` when its descriptor is open and its stream has all that `needs` names;
/// None otherwise (anything but an IO included).
pub fn plain_fptr(io: VALUE, needs: Needs) -> Option<*mut rb_sys::rb_io_t> {
    let fptr = open_fptr(io)?;
    // SAFETY: `fptr` is the rb_io_t of a live IO (the caller's receiver, or the write IO it
    // references), which CRuby frees only with the IO: a close meanwhile only sets its fd to -1.
    // Plain field reads, no Ruby code runs meanwhile; rb_ascii8bit_encoding reads a table entry
    // set at boot.
    #[allow(deprecated)]
    let plain = unsafe {
        let f = &*fptr;
        let mode = f.mode as u32;
        let no_decorator = f.encs.ecflags & DECORATORS == 0;
        (!needs.has(Needs::READABLE) || mode & rb_sys::FMODE_READABLE != 0)
            && (!needs.has(Needs::WRITABLE) || mode & rb_sys::FMODE_WRITABLE != 0)
            && (!needs.has(Needs::SYNC) || mode & rb_sys::FMODE_SYNC != 0)
            && (!needs.has(Needs::NO_READ_AHEAD) || f.rbuf.len == 0)
            && (!needs.has(Needs::NO_CHAR_BUFFER) || f.cbuf.len == 0)
            && (!needs.has(Needs::NO_WRITE_BUFFER) || f.wbuf.len == 0)
            && (!needs.has(Needs::NOT_DUPLEX) || f.tied_io_for_writing == 0 || f.tied_io_for_writing == NIL)
            && (!needs.has(Needs::RAW_READS)
                || (mode & rb_sys::FMODE_TEXTMODE == 0 && f.encs.enc2.is_null() && no_decorator))
            && (!needs.has(Needs::RAW_WRITES)
                || (mode & rb_sys::FMODE_TEXTMODE == 0
                    && (f.encs.enc.is_null() || std::ptr::eq(f.encs.enc, rb_sys::rb_ascii8bit_encoding()))
                    && no_decorator))
            && (!needs.has(Needs::NOT_TTY) || mode & FMODE_TTY == 0)
            && (!needs.has(Needs::NO_EPIPE_SIGNAL) || mode & FMODE_SIGNAL_ON_EPIPE == 0)
    };
    plain.then_some(fptr)
}

/// `plain_fptr` of the IO that writes to `io` go through (GetWriteIO: the tied write IO of a
/// duplex IO, else `io`).
pub fn plain_write_fptr(io: VALUE, needs: Needs) -> Option<*mut rb_sys::rb_io_t> {
    plain_fptr(write_io(io)?, needs)
}
