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
        let fptr = unsafe { (*(v as *mut rb_sys::RFile)).fptr };
        if fptr.is_null() {
            return Err(closed("uninitialized stream"));
        }
        let fd = unsafe { (*fptr).fd };
        if fd < 0 {
            return Err(closed("closed stream"));
        }
        return Ok(fd);
    }
    Err(rb::type_error("expected an IO or an Integer file descriptor"))
}

fn closed(msg: &str) -> Error {
    rb::exception(rb::ruby().exception_io_error(), msg)
}
