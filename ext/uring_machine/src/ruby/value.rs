//! Raw CRuby calls used on the hot path, each wrapped so that a Ruby exception (a longjmp)
//! never crosses a Rust frame: it comes back as `Err(magnus::Error)` instead.
use std::ffi::CString;
use std::os::raw::c_long;

use magnus::{rb_sys::protect, Error, Exception, ExceptionClass, Ruby, Value};
use rb_sys::{ruby_value_type, Qfalse, Qnil, Qtrue, ID, VALUE};

pub const NIL: VALUE = Qnil as VALUE;
pub const TRUE: VALUE = Qtrue as VALUE;
pub const FALSE: VALUE = Qfalse as VALUE;

pub fn raw<T: magnus::value::ReprValue>(v: T) -> VALUE {
    magnus::rb_sys::AsRawValue::as_raw(v)
}

pub fn value(v: VALUE) -> magnus::Value {
    unsafe { magnus::rb_sys::FromRawValue::from_raw(v) }
}

pub fn ruby() -> Ruby {
    Ruby::get().expect("called from a Ruby thread")
}

pub fn fiber_current() -> VALUE {
    unsafe { rb_sys::rb_fiber_current() }
}

pub fn fiber_alive(fiber: VALUE) -> bool {
    unsafe { rb_sys::rb_fiber_alive_p(fiber) == TRUE }
}

/// Transfers control to `fiber`; returns what the next transfer back to us passes, or the
/// exception raised into us (Fiber#raise, Thread#raise, ...).
pub fn transfer(fiber: VALUE, value: VALUE) -> Result<VALUE, Error> {
    protect(|| unsafe { rb_sys::rb_fiber_transfer(fiber, 1, &value) })
}

pub fn is_kind_of(v: VALUE, class: VALUE) -> bool {
    unsafe { rb_sys::rb_obj_is_kind_of(v, class) == TRUE }
}

/// `v.is_a?(class)`, the usual case (exactly `class`) answered without a call into Ruby.
pub fn is_a(v: VALUE, class: VALUE) -> bool {
    !is_special(v) && (unsafe { (*(v as *const rb_sys::RBasic)).klass } == class || is_kind_of(v, class))
}

pub fn is_exception(v: VALUE) -> bool {
    !is_special(v) && is_kind_of(v, unsafe { rb_sys::rb_eException })
}

/// Ruby's truthiness: anything but nil and false.
pub fn truthy(v: VALUE) -> bool {
    v != NIL && v != FALSE
}

pub fn is_special(v: VALUE) -> bool {
    rb_sys::SPECIAL_CONST_P(v)
}

pub fn type_of(v: VALUE) -> ruby_value_type {
    unsafe { rb_sys::RB_TYPE(v) }
}

pub fn is_string(v: VALUE) -> bool {
    !is_special(v) && type_of(v) == ruby_value_type::RUBY_T_STRING
}

pub fn is_fixnum(v: VALUE) -> bool {
    rb_sys::FIXNUM_P(v)
}

/// The value of a Fixnum (callers check FIXNUM_P first).
pub fn fixnum_value(v: VALUE) -> i64 {
    (v as i64) >> 1
}

pub fn int(n: i64) -> VALUE {
    unsafe { rb_sys::rb_ll2inum(n) }
}

pub fn intern(name: &str) -> ID {
    let c = CString::new(name).expect("identifier without NUL");
    unsafe { rb_sys::rb_intern(c.as_ptr()) }
}

pub fn ivar_get(obj: VALUE, id: ID) -> VALUE {
    unsafe { rb_sys::rb_attr_get(obj, id) }
}

pub fn ivar_set(obj: VALUE, id: ID, v: VALUE) {
    unsafe {
        rb_sys::rb_ivar_set(obj, id, v);
    }
}

pub fn is_frozen(v: VALUE) -> bool {
    unsafe { rb_sys::rb_obj_frozen_p(v) == TRUE }
}

pub fn exception(class: ExceptionClass, msg: impl Into<String>) -> Error {
    Error::new(class, msg.into())
}

pub fn type_error(msg: impl Into<String>) -> Error {
    exception(ruby().exception_type_error(), msg)
}

pub fn arg_error(msg: impl Into<String>) -> Error {
    exception(ruby().exception_arg_error(), msg)
}

pub fn frozen_error(msg: impl Into<String>) -> Error {
    exception(ruby().exception_frozen_error(), msg)
}

/// The Errno::* exception for a positive errno, with `context` in its message.
pub fn errno_error(errno: i32, context: &str) -> Error {
    let msg = CString::new(context).unwrap_or_default();
    let exc = unsafe { rb_sys::rb_syserr_new(errno, msg.as_ptr()) };
    match Exception::from_value(value(exc)) {
        Some(e) => Error::from(e),
        None => arg_error(context.to_string()),
    }
}

/// Turns an io_uring/syscall result into the non-negative value or an Errno exception.
pub fn check(res: i64, context: &str) -> Result<i64, Error> {
    if res < 0 {
        Err(errno_error(-res as i32, context))
    } else {
        Ok(res)
    }
}

pub fn last_errno() -> i64 {
    -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64)
}

/// An Integer argument that must fit `min..=max`.
pub fn int_arg(v: VALUE, name: &str, min: i64, max: i64) -> Result<i64, Error> {
    let n = if is_fixnum(v) {
        fixnum_value(v)
    } else if is_kind_of(v, unsafe { rb_sys::rb_cInteger }) {
        // A Bignum: rb_num2long raises RangeError when it does not fit.
        protect(|| unsafe { rb_sys::rb_num2long(v) as VALUE })? as c_long as i64
    } else {
        return Err(type_error(format!("{name} must be an Integer")));
    };
    if n < min || n > max {
        return Err(arg_error(format!("{name} out of range: {n}")));
    }
    Ok(n)
}

/// A core class by name (Fiber, FiberError, ...): classes bound to constants never move.
pub fn class_named(name: &str) -> VALUE {
    let c = CString::new(name).expect("class name without NUL");
    unsafe { rb_sys::rb_path2class(c.as_ptr()) }
}

pub fn mark(v: VALUE) {
    if !is_special(v) {
        unsafe { rb_sys::rb_gc_mark(v) }
    }
}

/// The Rust value wrapped in `v`, found with the checks rb_check_typeddata makes but inline:
/// magnus's own conversion runs them under rb_protect, a setjmp on every hook call. Any other
/// object gets magnus's TypeError.
pub fn typed_ref<'a, T: magnus::TypedData>(v: Value) -> Result<&'a T, Error> {
    let obj = raw(v);
    // DataType is a transparent wrapper of the rb_data_type_t its objects point to.
    let data_type = T::data_type() as *const magnus::DataType as *const rb_sys::rb_data_type_t;
    unsafe {
        if !is_special(obj)
            && type_of(obj) == ruby_value_type::RUBY_T_DATA
            && rb_sys::RTYPEDDATA_P(obj)
            && rb_sys::RTYPEDDATA_TYPE(obj) == data_type
        {
            // magnus wraps a Box<T>: the data pointer is the T.
            if let Some(data) = (rb_sys::RTYPEDDATA_GET_DATA(obj) as *const T).as_ref() {
                return Ok(data);
            }
        }
    }
    <&T as magnus::TryConvert>::try_convert(v)
}
