//! File descriptors from what users pass: an IO (closed ones raise IOError) or an Integer.
use magnus::Error;
use rb_sys::{ruby_value_type, VALUE};

use crate::ruby::value as rb;

pub fn fd_arg(v: VALUE) -> Result<i32, Error> {
    if rb::is_fixnum(v) {
        let n = rb::fixnum_value(v);
        if !(0..=i32::MAX as i64).contains(&n) {
            return Err(rb::arg_error(format!("invalid file descriptor: {n}")));
        }
        return Ok(n as i32);
    }
    if !rb::is_special(v) && rb::type_of(v) == ruby_value_type::RUBY_T_FILE {
        // What rb_io_descriptor does, without the cost of catching its exception: every hook
        // call passes through here.
        // SAFETY: a T_FILE object is an RFile: its fptr field is read from a live object (the
        // caller's argument).
        let fptr = unsafe { (*(v as *mut rb_sys::RFile)).fptr };
        if fptr.is_null() {
            return Err(closed("uninitialized stream"));
        }
        // SAFETY: a non-null fptr of a live IO points at its rb_io_t, freed only with the IO.
        let fd = unsafe { (*fptr).fd };
        if fd < 0 {
            return rebound_write_fd(v, fptr).ok_or_else(|| closed("closed stream"));
        }
        return Ok(fd);
    }
    Err(rb::type_error("expected an IO or an Integer file descriptor"))
}

/// The write half of a duplex IO (IO.popen "r+") after close_read: CRuby moves the write
/// stream into the IO itself and leaves the write IO with the closed read stream, yet still
/// names the write IO when it calls the io_write hook. The closed stream's owner (`self`) is
/// then the IO whose stream writes for `v`.
fn rebound_write_fd(v: VALUE, closed: *mut rb_sys::rb_io_t) -> Option<i32> {
    // SAFETY: `closed` is the non-null rb_io_t of the live IO `v` (fd_arg checked both).
    let owner = unsafe { (*closed).self_ };
    if owner == v || rb::is_special(owner) || rb::type_of(owner) != ruby_value_type::RUBY_T_FILE {
        return None;
    }
    // SAFETY: `owner` is a T_FILE (checked above) and alive: `v`, the write IO only the duplex
    // IO references, reaches a hook through a write made on `owner` (the call's receiver, on
    // the VM stack). An RFile: its fptr field is read.
    let live = unsafe { (*(owner as *mut rb_sys::RFile)).fptr };
    // SAFETY: `live` is non-null (checked first) and belongs to the live IO `owner`.
    if live.is_null() || unsafe { (*live).self_ } != v {
        return None;
    }
    // SAFETY: as above.
    let fd = unsafe { (*live).fd };
    (fd >= 0).then_some(fd)
}

fn closed(msg: &str) -> Error {
    rb::io_error(msg)
}
