//! Filling an IO's read-ahead buffer (rb_io_t.rbuf) with a direct read, for the buffered
//! read methods of fast/lines.rs. CRuby's gets, getc, eof?, ... read through rbuf: when it is
//! empty, io_fillbuf reads up to rbuf.capa bytes into it, which under a fiber scheduler goes
//! through the io_read hook with a new IO::Buffer each time. `fill` does that read itself,
//! without waiting, when io_fillbuf would be exactly one read(2) of the fd into rbuf; CRuby's
//! method then finds the bytes in rbuf and calls no hook. When the read would block, nothing
//! changed and CRuby's method fills rbuf itself, waiting in the ring through the hooks (so
//! IO#timeout and interrupts stay CRuby's).
use std::os::raw::{c_char, c_int};

use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::fast::io::{count, machine, syserr};
use crate::fast::plain_io::{plain_fptr, Needs};
use crate::ops::direct_io::would_block;
use crate::ops::io::{Blocking, Direction};
use crate::ruby::value::NIL;

/// CRuby's IO_RBUF_CAPA_MIN: the capacity io_fillbuf gives rbuf of an IO without read
/// conversion (IO_RBUF_CAPA_FOR), the same in 3.1-4.0.
const RBUF_CAPA: c_int = 8192;

extern "C" {
    // error.c; exported but declared in an internal header (no binding).
    fn rb_syserr_new_path_in(func_name: *const c_char, n: c_int, path: VALUE) -> VALUE;
}

pub enum Fill {
    /// rbuf holds the bytes just read: CRuby's method takes them from there.
    Filled,
    /// The read returned 0: CRuby's io_fillbuf would report EOF (rbuf stays empty).
    Eof,
    /// Nothing read, nothing changed: CRuby's method as it is.
    Cruby,
}

/// The rb_io_t of `io` when CRuby's io_fillbuf would be one plain read(2) of its fd into an
/// empty rbuf: open for reading, rbuf empty, no read conversion (NEED_READCONV: an internal
/// encoding or text mode; its rbuf would also be bigger), no decorator, nothing in cbuf, no write
/// buffer and no duplex write IO (rb_io_check_char_readable would flush them first), no tty.
/// `any_rbuf`: whatever rbuf holds (for `may_fill`).
fn fillable_fptr(io: VALUE, any_rbuf: bool) -> Option<*mut rb_sys::rb_io_t> {
    let needs = Needs::READABLE
        | Needs::NO_CHAR_BUFFER
        | Needs::NO_WRITE_BUFFER
        | Needs::NOT_DUPLEX
        | Needs::RAW_READS
        | Needs::NOT_TTY;
    plain_fptr(io, if any_rbuf { needs } else { needs | Needs::NO_READ_AHEAD })
}

/// Whether `fill` may fill `io`'s rbuf once it is empty (the IO's state and the current fiber
/// allow it).
pub fn may_fill(io: VALUE) -> bool {
    fillable_fptr(io, true).is_some() && machine().is_some()
}

/// Fills `io`'s empty rbuf as io_fillbuf would, with one direct read, when the current fiber is
/// non-blocking under our Scheduler with the fast path on and the IO's state allows (see
/// `fillable_fptr`). Errors are io_fillbuf's: a read that failed is not retried (a socket reports
/// ECONNRESET once, then EOF), so the exception is raised here, as CRuby raises it.
pub fn fill(io: VALUE) -> Result<Fill, Error> {
    let Some(fptr) = fillable_fptr(io, false) else {
        return Ok(Fill::Cruby);
    };
    let Some(machine) = machine() else {
        return Ok(Fill::Cruby);
    };
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby frees
    // only with the IO: a close meanwhile only sets its fd to -1.
    if machine.reads_wait(unsafe { (*fptr).fd }) {
        return Ok(Fill::Cruby); // its last read waited: CRuby's method goes straight to the ring
    }
    // SAFETY: `fptr` is the open IO's rb_io_t (fillable_fptr), which lives as long as the IO
    // (the caller's receiver); no Ruby code runs while these fields are read.
    if unsafe { (*fptr).rbuf.ptr.is_null() } {
        // As io_fillbuf allocates it (ALLOC_N): CRuby frees it with the IO. ruby_xmalloc raises
        // NoMemoryError when even a GC frees too little: under protect.
        // SAFETY: ruby_xmalloc takes any size, with the GVL held.
        let buffer = protect(|| unsafe { rb_sys::ruby_xmalloc(RBUF_CAPA as _) as VALUE })?;
        // SAFETY: as above; the buffer is RBUF_CAPA bytes, as capa says.
        unsafe {
            let f = &mut *fptr;
            f.rbuf.off = 0;
            f.rbuf.len = 0;
            f.rbuf.capa = RBUF_CAPA;
            f.rbuf.ptr = buffer as *mut c_char;
        }
    }
    // SAFETY: as above.
    let (fd, ptr, capa) = unsafe {
        let f = &*fptr;
        (f.fd, f.rbuf.ptr as *mut u8, f.rbuf.capa as usize)
    };
    let res = machine.transfer_once(Direction::Read, fd, ptr, capa, -1, NIL, Blocking::Never, || Ok(()))?;
    if would_block(res) {
        return Ok(Fill::Cruby);
    }
    if res < 0 {
        return Err(fillbuf_error(fptr, -res as c_int));
    }
    // SAFETY: as above; `res` bytes (<= capa) were just read into rbuf.ptr, so rbuf now
    // describes them, as io_fillbuf would leave it. No Ruby code ran since the read.
    unsafe {
        (*fptr).rbuf.off = 0;
        (*fptr).rbuf.len = res as c_int;
    }
    count(machine);
    Ok(if res == 0 { Fill::Eof } else { Fill::Filled })
}

/// io_fillbuf's exception: rb_syserr_fail_path(e, "fd:N " + path), raised in io_fillbuf.
fn fillbuf_error(fptr: *mut rb_sys::rb_io_t, errno: c_int) -> Error {
    // SAFETY: `fptr` is the rb_io_t of the receiver (a live IO on the VM stack), which CRuby frees
    // only with the IO: a close meanwhile only sets its fd to -1; the format takes one int, as
    // passed; the Strings and the
    // exception are allocated under protect (NoMemoryError), rb_syserr_new_path_in (an
    // exported error.c function) takes the function name, errno and path String.
    let made = protect(|| unsafe {
        let path = rb_sys::rb_sprintf(c"fd:%d ".as_ptr(), (*fptr).fd as c_int);
        if (*fptr).pathv != NIL {
            rb_sys::rb_str_append(path, (*fptr).pathv);
        }
        rb_syserr_new_path_in(c"io_fillbuf".as_ptr(), errno, path)
    });
    syserr(made, errno)
}
