//! An IO's stream (its rb_io_t), read straight from the object: no method call, nothing
//! raised, so the fast paths and the hooks can ask before CRuby's own method would.
use rb_sys::{ruby_value_type, VALUE};

use crate::ruby::value as rb;

/// GetWriteIO (rb_io_get_write_io) without its call: the tied write IO of a duplex IO
/// (IO.popen "r+"), else `io` itself; None for anything but an IO with a stream (IO.allocate
/// has none, and rb_io_get_write_io raises IOError for it).
pub fn write_io(io: VALUE) -> Option<VALUE> {
    if rb::is_special(io) || rb::type_of(io) != ruby_value_type::RUBY_T_FILE {
        return None;
    }
    // SAFETY: a T_FILE object is an RFile: its fptr field is read from a live object.
    let fptr = unsafe { (*(io as *mut rb_sys::RFile)).fptr };
    if fptr.is_null() {
        return None;
    }
    // SAFETY: a non-null fptr of a live IO points at its rb_io_t, which CRuby frees only with
    // the IO; tied_io_for_writing is 0 unless the IO is duplex.
    #[allow(deprecated)]
    let tied = unsafe { (*fptr).tied_io_for_writing };
    Some(if tied != 0 { tied } else { io })
}

/// The rb_io_t of an IO whose descriptor is open (None for anything else).
pub fn open_fptr(io: VALUE) -> Option<*mut rb_sys::rb_io_t> {
    if rb::is_special(io) || rb::type_of(io) != ruby_value_type::RUBY_T_FILE {
        return None;
    }
    // SAFETY: a T_FILE object is an RFile: its fptr field is read from a live object.
    let fptr = unsafe { (*(io as *mut rb_sys::RFile)).fptr };
    // SAFETY: a non-null fptr of a live IO points at its rb_io_t.
    (!fptr.is_null() && unsafe { (*fptr).fd } >= 0).then_some(fptr)
}

/// Whether `ptr` lies in `io`'s read-ahead or write buffer (rbuf, wbuf): memory CRuby owns and
/// frees when the IO is closed, from whichever thread closes it, whatever still uses it (on Ruby
/// 3.x nothing tells the fibers of other threads; io_fillbuf reads into rbuf through the hooks).
pub fn in_stream_buffers(io: VALUE, ptr: *const u8) -> bool {
    if rb::is_special(io) || rb::type_of(io) != ruby_value_type::RUBY_T_FILE {
        return false;
    }
    // SAFETY: a T_FILE object is an RFile: its fptr field is read from a live object.
    let fptr = unsafe { (*(io as *mut rb_sys::RFile)).fptr };
    if fptr.is_null() {
        return false;
    }
    // SAFETY: a non-null fptr of a live IO points at its rb_io_t; the buffers are plain fields
    // (a null ptr is a buffer not allocated).
    let (rbuf, wbuf) = unsafe { ((*fptr).rbuf, (*fptr).wbuf) };
    [rbuf, wbuf].iter().any(|b| {
        let start = b.ptr as *const u8;
        !start.is_null() && ptr >= start && (ptr as usize) < start as usize + b.capa.max(0) as usize
    })
}
