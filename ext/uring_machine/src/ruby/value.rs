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

/// The VALUEs of a method's arguments, without a copy.
pub fn raw_slice(args: &[magnus::Value]) -> &[VALUE] {
    // No arguments: CRuby may call a method with a NULL argv (an Enumerator does), which the
    // slice magnus makes of it keeps; a slice made here must never be null (that is None to an
    // Option around it: a closure holding it was taken for one).
    if args.is_empty() {
        return &[];
    }
    // SAFETY: magnus::Value is #[repr(transparent)] over VALUE (plus a zero-sized marker), so a
    // non-empty slice of them (non-null, checked above) has the layout of a slice of VALUEs,
    // for the same lifetime.
    unsafe { std::slice::from_raw_parts(args.as_ptr() as *const VALUE, args.len()) }
}

pub fn value(v: VALUE) -> magnus::Value {
    // SAFETY: a magnus Value is the same word, wrapped; making one calls nothing. Every VALUE
    // this crate converts is live (an argument, a Ruby call's result, or held by a table its
    // owner marks), as magnus requires of a Value it will use.
    unsafe { magnus::rb_sys::FromRawValue::from_raw(v) }
}

pub fn ruby() -> Ruby {
    Ruby::get().expect("called from a Ruby thread")
}

/// The running fiber. CRuby makes a thread's root Fiber object at its first rb_fiber_current,
/// an allocation that may raise: every entry point that can be a thread's first use of the gem
/// calls `root_fiber_ready` before anything calls this.
pub fn fiber_current() -> VALUE {
    // SAFETY: called on a Ruby thread with the GVL (from a method or hook Ruby called), after
    // root_fiber_ready ran on this thread (Machine.new on a machine's own thread, or the entry
    // point itself): rb_fiber_current then only reads the running fiber, and cannot raise.
    unsafe { rb_sys::rb_fiber_current() }
}

/// Makes sure this thread's root Fiber object exists (see `fiber_current`).
pub fn root_fiber_ready() -> Result<(), Error> {
    // SAFETY: called with the GVL on a Ruby thread; the allocation of the root Fiber object
    // (the first time on this thread) may raise NoMemoryError, which protect catches.
    protect(|| unsafe { rb_sys::rb_fiber_current() }).map(|_| ())
}

/// Whether `fiber` (a Fiber check_fiber accepted, or one the machine's tables hold, which only
/// accepted or current fibers enter) has not finished.
pub fn fiber_alive(fiber: VALUE) -> bool {
    // SAFETY: rb_fiber_alive_p raises only for a non-Fiber or an uninitialized one
    // (Fiber.allocate), which check_fiber refuses before any fiber reaches a table or a call
    // here; for a real Fiber it reads its status.
    unsafe { rb_sys::rb_fiber_alive_p(fiber) == TRUE }
}

/// Transfers control to `fiber`; returns what the next transfer back to us passes, or the
/// exception raised into us (Fiber#raise, Thread#raise, ...).
pub fn transfer(fiber: VALUE, value: VALUE) -> Result<VALUE, Error> {
    // SAFETY: `fiber` is an initialized Fiber (see fiber_alive) and `value` lives on this
    // stack for the call; an exception raised into this fiber while it is away comes back
    // through protect as Err.
    protect(|| unsafe { rb_sys::rb_fiber_transfer(fiber, 1, &value) })
}

/// `v.kind_of?(class)`; `class` must be a Class or Module (callers pass core classes and our own).
pub fn is_kind_of(v: VALUE, class: VALUE) -> bool {
    // SAFETY: rb_obj_is_kind_of raises only when `class` is not a Class or Module, and every
    // caller passes one (a core class global or a constant's class); it walks the ancestry
    // without calling a method or allocating.
    unsafe { rb_sys::rb_obj_is_kind_of(v, class) == TRUE }
}

/// `v.is_a?(class)`, the usual case (exactly `class`) answered without a call into Ruby.
pub fn is_a(v: VALUE, class: VALUE) -> bool {
    // SAFETY: a VALUE that is not a special constant points at a live object, whose header
    // starts with RBasic: reading its class is a field read.
    !is_special(v) && (unsafe { (*(v as *const rb_sys::RBasic)).klass } == class || is_kind_of(v, class))
}

pub fn is_exception(v: VALUE) -> bool {
    // SAFETY: rb_eException is a global CRuby sets at boot, before any extension loads.
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
    // SAFETY: RB_TYPE answers special constants from their bits and reads the header flags of
    // any other (live) object: no call, no allocation.
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

/// The range of Integers CRuby stores inline as a Fixnum (no object, no allocation).
const FIXNUM_MAX: i64 = i64::MAX >> 1;
const FIXNUM_MIN: i64 = i64::MIN >> 1;

/// A byte count, a descriptor or a mask as an Integer: a Fixnum, made without a call into Ruby
/// (nothing allocated, nothing raised). Saturates at the Fixnum range (2**62), which no count of
/// bytes reaches; a value that may lie beyond it goes through `integer`.
pub fn int(n: i64) -> VALUE {
    let n = n.clamp(FIXNUM_MIN, FIXNUM_MAX);
    ((n << 1) | rb_sys::ruby_special_consts::RUBY_FIXNUM_FLAG as i64) as VALUE
}

/// Any i64 as an Integer: a Bignum beyond the Fixnum range, whose allocation may raise.
pub fn integer(n: i64) -> Result<VALUE, Error> {
    if (FIXNUM_MIN..=FIXNUM_MAX).contains(&n) {
        return Ok(int(n));
    }
    // SAFETY: rb_ll2inum takes any i64; its Bignum allocation may raise NoMemoryError, which
    // protect turns into Err.
    protect(|| unsafe { rb_sys::rb_ll2inum(n) })
}

/// Any u64 as an Integer (see `integer`).
pub fn uinteger(n: u64) -> Result<VALUE, Error> {
    if n <= FIXNUM_MAX as u64 {
        return Ok(int(n as i64));
    }
    // SAFETY: as in `integer`: the Bignum allocation may raise, under protect.
    protect(|| unsafe { rb_sys::rb_ull2inum(n) })
}

/// A Float; a value outside the flonum range is an object, whose allocation may raise.
pub fn float(f: f64) -> Result<VALUE, Error> {
    // SAFETY: rb_float_new takes any f64; its allocation (for a non-flonum value) may raise
    // NoMemoryError, which protect turns into Err.
    protect(|| unsafe { rb_sys::rb_float_new(f) })
}

/// An ivar of `obj` (nil when unset); never raises (rb_attr_get does not warn).
pub fn ivar_get(obj: VALUE, id: ID) -> VALUE {
    // SAFETY: rb_attr_get reads an ivar of any object (a special constant has none: nil) and
    // returns nil when it is unset, without the "not initialized" warning; it allocates nothing.
    unsafe { rb_sys::rb_attr_get(obj, id) }
}

/// Sets an ivar of `obj`: FrozenError when `obj` is frozen (a user may freeze a Fiber), and
/// growing the ivar table may raise NoMemoryError.
pub fn ivar_set(obj: VALUE, id: ID, v: VALUE) -> Result<(), Error> {
    // SAFETY: rb_ivar_set raises (FrozenError, NoMemoryError) only through Ruby's longjmp, which
    // protect catches; `obj` and `v` are live VALUEs held by the caller.
    protect(|| unsafe { rb_sys::rb_ivar_set(obj, id, v) }).map(|_| ())
}

pub fn is_frozen(v: VALUE) -> bool {
    // SAFETY: rb_obj_frozen_p reads the frozen flag (special constants are frozen); it calls
    // nothing and cannot raise.
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

pub fn io_error(msg: impl Into<String>) -> Error {
    exception(ruby().exception_io_error(), msg)
}

pub fn frozen_error(msg: impl Into<String>) -> Error {
    exception(ruby().exception_frozen_error(), msg)
}

/// The Errno::* exception for a positive errno, with `context` in its message.
pub fn errno_error(errno: i32, context: &str) -> Error {
    let msg = CString::new(context).unwrap_or_default();
    // SAFETY: `msg` is NUL-terminated and outlives the call; building the exception allocates
    // (NoMemoryError), under protect: that error is then the one returned.
    let made = protect(|| unsafe { rb_sys::rb_syserr_new(errno, msg.as_ptr()) });
    match made.map(|exc| Exception::from_value(value(exc))) {
        Ok(Some(e)) => Error::from(e),
        Ok(None) => arg_error(context.to_string()),
        Err(e) => e,
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
    // SAFETY: rb_cInteger is set at boot.
    } else if is_kind_of(v, unsafe { rb_sys::rb_cInteger }) {
        // A Bignum: rb_num2long raises RangeError when it does not fit.
        // SAFETY: `v` is an Integer; the RangeError is caught by protect.
        protect(|| unsafe { rb_sys::rb_num2long(v) as VALUE })? as c_long as i64
    } else {
        return Err(type_error(format!("{name} must be an Integer")));
    };
    if n < min || n > max {
        return Err(arg_error(format!("{name} out of range: {n}")));
    }
    Ok(n)
}

/// A class by its constant path (Fiber, IO::TimeoutError, ...): classes bound to constants
/// never move. ArgumentError when there is no such constant (a user may remove one).
pub fn class_named(name: &str) -> Result<VALUE, Error> {
    let c = CString::new(name).expect("class name without NUL");
    // SAFETY: `c` is NUL-terminated and outlives the call; rb_path2class allocates the path
    // String and raises for an unknown constant, both under protect.
    protect(|| unsafe { rb_sys::rb_path2class(c.as_ptr()) })
}

/// A new Hash (its allocation may raise).
pub fn hash_new() -> Result<VALUE, Error> {
    // SAFETY: rb_hash_new takes nothing; its allocation may raise NoMemoryError, under protect.
    protect(|| unsafe { rb_sys::rb_hash_new() })
}

/// hash[key] = value. Hashing `key` may call its #hash and #eql? (a Fiber subclass may redefine
/// them), and the table may grow: either may raise.
pub fn hash_aset(hash: VALUE, key: VALUE, value: VALUE) -> Result<(), Error> {
    // SAFETY: `hash` is a Hash of ours, `key` and `value` live VALUEs of the caller; anything
    // raised from the key's methods or the allocation is caught by protect.
    protect(|| unsafe { rb_sys::rb_hash_aset(hash, key, value) }).map(|_| ())
}

/// hash.delete(key) (see `hash_aset` for what may raise).
pub fn hash_delete(hash: VALUE, key: VALUE) -> Result<(), Error> {
    // SAFETY: as in `hash_aset`.
    protect(|| unsafe { rb_sys::rb_hash_delete(hash, key) }).map(|_| ())
}

/// A new empty Array with room for `n` elements (its allocation may raise).
pub fn ary_new_capa(n: usize) -> Result<VALUE, Error> {
    // SAFETY: rb_ary_new_capa takes any length (it raises ArgumentError past the maximum) and
    // may raise NoMemoryError: both under protect.
    protect(|| unsafe { rb_sys::rb_ary_new_capa(n as c_long) })
}

/// ary << v: growing the Array may raise (NoMemoryError), as may a frozen Array (not ours).
pub fn ary_push(ary: VALUE, v: VALUE) -> Result<(), Error> {
    // SAFETY: `ary` is an Array the caller made, `v` a live VALUE; what rb_ary_push raises is
    // caught by protect.
    protect(|| unsafe { rb_sys::rb_ary_push(ary, v) }).map(|_| ())
}

/// A new empty String with room for `capa` bytes (its allocation may raise).
pub fn str_buf_new(capa: usize) -> Result<VALUE, Error> {
    // SAFETY: rb_str_buf_new takes any capacity (ArgumentError past the maximum) and may raise
    // NoMemoryError: both under protect.
    protect(|| unsafe { rb_sys::rb_str_buf_new(capa as c_long) })
}

/// A new String with `text` (UTF-8); its allocation may raise.
pub fn str_new(text: &str) -> Result<VALUE, Error> {
    // SAFETY: the pointer and length describe `text`, which outlives the call (CRuby copies
    // it); the allocation may raise NoMemoryError, under protect.
    protect(|| unsafe { rb_sys::rb_utf8_str_new(text.as_ptr() as *const _, text.len() as c_long) })
}

/// A new binary (ASCII-8BIT) String with a copy of `bytes`; its allocation may raise.
pub fn bytes_new(bytes: &[u8]) -> Result<VALUE, Error> {
    // SAFETY: the pointer and length describe `bytes`, which outlives the call (CRuby copies
    // them); the allocation may raise NoMemoryError, under protect.
    protect(|| unsafe { rb_sys::rb_str_new(bytes.as_ptr() as *const _, bytes.len() as c_long) })
}

/// The Symbol of `name`; making a new one allocates (and may raise).
pub fn symbol(name: &str) -> Result<VALUE, Error> {
    // SAFETY: the pointer and length describe `name`, which outlives the call; interning may
    // allocate (NoMemoryError), under protect. A Symbol made from a name is static: never freed.
    protect(|| unsafe { rb_sys::rb_id2sym(rb_sys::rb_intern2(name.as_ptr() as *const _, name.len() as c_long)) })
}

/// The (key, value) pairs of one of our Hashes, read without calling a method (Hash#to_a may
/// be redefined, and builds Arrays). The VALUEs are held by the Hash, not by the Vec (which GC
/// does not see): the caller keeps the Hash and leaves it unchanged while it uses them.
pub fn hash_pairs(hash: VALUE) -> Result<Vec<(VALUE, VALUE)>, Error> {
    /// # Safety
    ///
    /// `out` must be the address of a live `Vec<(VALUE, VALUE)>` nothing else uses meanwhile.
    unsafe extern "C" fn collect(key: VALUE, value: VALUE, out: VALUE) -> std::os::raw::c_int {
        // SAFETY: `out` is the address of `pairs` below, which outlives rb_hash_foreach, and
        // nothing else touches that Vec during the iteration.
        let pairs = unsafe { &mut *(out as *mut Vec<(VALUE, VALUE)>) };
        pairs.push((key, value));
        rb_sys::st_retval::ST_CONTINUE as std::os::raw::c_int
    }
    let mut pairs: Vec<(VALUE, VALUE)> = Vec::new();
    let out = &mut pairs as *mut Vec<(VALUE, VALUE)> as VALUE;
    // SAFETY: `hash` is a Hash of ours (a hidden ivar); `collect` matches rb_foreach_func and
    // never raises or changes the Hash; whatever rb_hash_foreach raises is caught by protect.
    protect(|| unsafe {
        rb_sys::rb_hash_foreach(hash, Some(collect), out);
        NIL
    })?;
    Ok(pairs)
}

/// Ends the process from a GC mark function that found the state it marks borrowed mutably:
/// reading it would alias the live `&mut`, skipping it would let GC free what it holds. Only an
/// allocation made while such a borrow is live can get here, and the code makes none (see
/// `Machine::with`): this turns a broken invariant into a clear crash report, not a heap
/// corrupted later.
pub fn gc_mark_conflict(what: &str) -> ! {
    let msg = CString::new(format!(
        "uring_machine: GC marked a {what} whose state was borrowed mutably (an allocation inside a borrow)"
    ))
    .unwrap_or_default();
    // SAFETY: rb_bug takes a printf format and its arguments: "%s" with one NUL-terminated
    // string that outlives the call. It prints Ruby's crash report and aborts; it never returns.
    unsafe { rb_sys::rb_bug(c"%s".as_ptr(), msg.as_ptr()) }
}

pub fn mark(v: VALUE) {
    if !is_special(v) {
        // SAFETY: called from a mark function, during GC, with a VALUE its owner holds (so the
        // object is live); rb_gc_mark also pins it against compaction.
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
    // SAFETY: the header and typed-data fields are read only after `obj` is known to be a
    // live typed T_DATA object, and its data pointer is used as a T only when its type is T's
    // own rb_data_type_t (magnus wraps a Box<T> there). The reference lives as long as the
    // caller keeps `v` (a method's receiver), which outlasts every use.
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
