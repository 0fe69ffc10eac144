//! File descriptors from what users pass: an IO (closed ones raise IOError) or an Integer.
use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::rb;

pub fn fd_arg(v: VALUE) -> Result<i32, Error> {
    if rb::is_fixnum(v) {
        let n = rb::fixnum_value(v);
        if !(0..=i32::MAX as i64).contains(&n) {
            return Err(rb::arg_error(format!("invalid file descriptor: {n}")));
        }
        return Ok(n as i32);
    }
    if !rb::is_special(v) && rb::is_kind_of(v, unsafe { rb_sys::rb_cIO }) {
        // Raises IOError ("closed stream") for a closed IO.
        let fd = protect(|| unsafe { rb_sys::rb_io_descriptor(v) as VALUE })?;
        return Ok(fd as i32);
    }
    Err(rb::type_error("expected an IO or an Integer file descriptor"))
}
