//! Argument checks shared by the Ruby-facing methods.
use magnus::{Error, Value};
use rb_sys::VALUE;

use crate::ruby::value::{self as rb, raw, NIL};

pub fn arity(args: &[Value], min: usize, max: usize) -> Result<(), Error> {
    if args.len() < min || args.len() > max {
        let expected = if min == max {
            min.to_string()
        } else {
            format!("{min}..{max}")
        };
        return Err(rb::arg_error(format!(
            "wrong number of arguments (given {}, expected {expected})",
            args.len()
        )));
    }
    Ok(())
}

/// The i-th argument, nil when absent.
pub fn arg(args: &[Value], i: usize) -> VALUE {
    args.get(i).map_or(NIL, |v| raw(*v))
}

/// The largest single transfer io_uring accepts (lengths are 32-bit).
pub const MAX_LEN: i64 = i32::MAX as i64;

pub fn len_arg(v: VALUE, name: &str) -> Result<usize, Error> {
    rb::int_arg(v, name, 0, MAX_LEN).map(|n| n as usize)
}

/// An optional length: nil means "all of it".
pub fn opt_len_arg(v: VALUE, name: &str) -> Result<Option<usize>, Error> {
    if v == NIL {
        Ok(None)
    } else {
        len_arg(v, name).map(Some)
    }
}

/// -1 (or nil) means the fd's current position.
pub fn file_offset_arg(v: VALUE) -> Result<i64, Error> {
    if v == NIL {
        Ok(-1)
    } else {
        rb::int_arg(v, "file_offset", -1, i64::MAX)
    }
}

pub fn int_or(v: VALUE, default: i64, name: &str, min: i64, max: i64) -> Result<i64, Error> {
    if v == NIL {
        Ok(default)
    } else {
        rb::int_arg(v, name, min, max)
    }
}
