//! Scheduler#io_splice, the hook behind IO.copy_stream (lib/uring_machine/core_ext/io.rb),
//! and the one fact about Ruby's IO buffers that copy_stream needs from C.
use magnus::{rb_sys::protect, Error, Value};
use rb_sys::VALUE;

use crate::ops::splice::End;
use crate::ruby::args::{arg, arity};
use crate::ruby::fd::fd_arg;
use crate::ruby::io_stream::write_io;
use crate::ruby::value::{self as rb, raw, NIL};
use crate::scheduler::Scheduler;

fn opt_count(v: VALUE, name: &str) -> Result<Option<i64>, Error> {
    match v {
        NIL => Ok(None),
        v => rb::int_arg(v, name, 0, i64::MAX).map(Some),
    }
}

fn is_io(v: VALUE) -> bool {
    // SAFETY: rb_cIO is set at boot.
    !rb::is_special(v) && rb::is_kind_of(v, unsafe { rb_sys::rb_cIO })
}

/// The descriptor writes to `io` go to: the write half of a duplex IO (IO.popen "r+").
fn write_fd(v: VALUE) -> Result<i32, Error> {
    let fd = fd_arg(v)?;
    if !is_io(v) {
        return Ok(fd);
    }
    // fd_arg accepted `v`, an IO: it has a stream, so write_io finds its write side.
    fd_arg(write_io(v).unwrap_or(v))
}

impl Scheduler {
    /// io_splice(src, dst, length = nil, src_offset = nil) → bytes moved: `length` of them,
    /// or fewer at EOF (nil: until EOF). `src_offset` reads a file there without moving its
    /// position; without it the file position is used and advanced.
    pub fn rb_io_splice(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 2, 4)?;
        let machine = self.bound_machine()?;
        machine.check_owner()?;
        let src = End::probe(fd_arg(arg(args, 0))?)?;
        let dst = End::probe(write_fd(arg(args, 1))?)?;
        let length = opt_count(arg(args, 2), "length")?.map(|n| n as u64);
        let src_offset = opt_count(arg(args, 3), "src_offset")?;
        let moved = machine.splice_copy(src, dst, length, src_offset)?;
        rb::uinteger(moved).map(rb::value)
    }
}

/// UringMachine.__copy_stream_check__(src, dst) → how many bytes Ruby has read ahead into
/// `src`'s buffer, which IO.copy_stream copies before the descriptor's. Like CRuby's
/// copy_stream it first raises IOError unless `src` is byte-readable and `dst` writable, and
/// puts `dst` in binary mode.
pub fn copy_stream_check(src: Value, dst: Value) -> Result<usize, Error> {
    let (src, dst) = (raw(src), raw(dst));
    if !is_io(src) || !is_io(dst) {
        return Err(rb::type_error("expected two IOs"));
    }
    fd_arg(src)?;
    write_fd(dst)?;
    // SAFETY: both are IOs with a stream (fd_arg and write_fd checked), so file_pointer's
    // contract holds; the checks raise IOError only through protect.
    let pending = protect(|| unsafe {
        let write_io = rb_sys::rb_io_get_write_io(dst);
        rb_sys::rb_io_check_writable(file_pointer(write_io));
        rb_sys::rb_io_ascii8bit_binmode(write_io);
        let src_fptr = file_pointer(src);
        rb_sys::rb_io_check_byte_readable(src_fptr);
        rb_sys::rb_io_read_pending(src_fptr) as VALUE
    })?;
    Ok(pending as usize)
}

/// The rb_io_t of an open IO (fd_arg has checked it is open).
///
/// # Safety
///
/// `io` must be a live IO (a T_FILE object).
unsafe fn file_pointer(io: VALUE) -> *mut rb_sys::rb_io_t {
    // SAFETY: the caller's contract: `io` is an RFile, whose fptr field is read.
    unsafe { (*(io as *mut rb_sys::RFile)).fptr }
}
