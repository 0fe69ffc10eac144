//! The fast path's reads that wait (readpartial, sysread): when nothing is there, they wait in
//! the ring themselves instead of calling CRuby's method, whose path allocates (and, on 4.0,
//! zero-fills) a String of the full length and dispatches the io_read hook, only to wait in the
//! ring the same way. The wait is the hook's: up to IO#timeout, interruptible, the String
//! tmp-locked and pinned while the kernel may write into it, the op cancelled and drained
//! before an exception leaves. On Ruby 4.0 the wait is also recorded in the IO's list of
//! blocking operations (rb_thread_io_blocking_operation, as CRuby records the hook's), through
//! which an IO#close on another thread interrupts the fiber; where that function cannot be
//! found, CRuby's method waits instead.
use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::machine::Machine;
use crate::ops::io::{Blocking, Direction};
use crate::scheduler::io::io_deadline;

/// A read of at most `len` bytes into `string` from byte 0 that waits in the ring if need be:
/// the count or -errno; None when this Ruby's wait cannot be recorded (see the module's
/// comment): nothing was read then.
pub fn read(machine: &Machine, io: VALUE, fd: i32, string: VALUE, len: usize) -> Result<Option<i64>, Error> {
    let deadline = io_deadline(io)?;
    let wait = || {
        // SAFETY: `string` is the String setstrbuf made room for `len` bytes in; no Ruby code
        // runs before the read, and the lock below keeps it in place once the ring has it.
        let ptr = unsafe { rb_sys::RSTRING_PTR(string) as *mut u8 };
        // Locked only if the read goes to the ring (a direct read cannot let Ruby run).
        let mut locked = false;
        let lock = || {
            // SAFETY: `string` is a live String; locking a locked one raises, under protect.
            protect(|| unsafe { rb_sys::rb_str_locktmp(string) })?;
            locked = true;
            Ok(())
        };
        let res = machine.transfer_once(
            Direction::Read,
            fd,
            ptr,
            len,
            -1,
            string,
            Blocking::Wait(deadline),
            lock,
        );
        if locked {
            // SAFETY: the String this wait locked; an unlock error is caught by protect.
            protect(|| unsafe { rb_sys::rb_str_unlocktmp(string) })?;
        }
        res
    };
    recorded(io, wait)
}

#[cfg(not(ruby_gte_4_0))]
fn recorded<F: FnOnce() -> Result<i64, Error>>(_io: VALUE, wait: F) -> Result<Option<i64>, Error> {
    wait().map(Some)
}

/// Runs `wait` inside rb_thread_io_blocking_operation(io, ...). The callback never raises (it
/// keeps the Result), so no Ruby exception unwinds through Rust frames.
#[cfg(ruby_gte_4_0)]
fn recorded<F: FnOnce() -> Result<i64, Error>>(io: VALUE, wait: F) -> Result<Option<i64>, Error> {
    type Wrapped = unsafe extern "C" fn(VALUE, unsafe extern "C" fn(VALUE) -> VALUE, VALUE) -> VALUE;
    static FUNCTION: std::sync::OnceLock<Option<Wrapped>> = std::sync::OnceLock::new();
    let found = FUNCTION.get_or_init(|| {
        let name = c"rb_thread_io_blocking_operation";
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated static name only looks it up.
        let ptr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        // SAFETY: the symbol is CRuby 4.0's rb_thread_io_blocking_operation, whose C signature
        // is VALUE (*)(VALUE io, VALUE (*function)(VALUE), VALUE argument): `Wrapped`.
        (!ptr.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, Wrapped>(ptr) })
    });
    let Some(blocking_operation) = *found else {
        return Ok(None);
    };

    struct Call<G> {
        wait: Option<G>,
        result: Option<Result<i64, Error>>,
    }
    /// # Safety
    ///
    /// `data` must be the address of a live `Call<G>` that nothing else uses during the call.
    unsafe extern "C" fn run<G: FnOnce() -> Result<i64, Error>>(data: VALUE) -> VALUE {
        // SAFETY: the caller's contract: `data` is `call` below, which outlives
        // rb_thread_io_blocking_operation and is not touched until it returns.
        let call = unsafe { &mut *(data as *mut Call<G>) };
        if let Some(wait) = call.wait.take() {
            call.result = Some(wait());
        }
        crate::ruby::value::NIL
    }
    let mut call = Call {
        wait: Some(wait),
        result: None,
    };
    let data = &mut call as *mut Call<F> as VALUE;
    // SAFETY: `io` is a live IO (the hook's), `data` points at `call` (run's contract), and
    // `run` never raises (it keeps the Result); CRuby's own raise (an interrupt found when
    // the operation ends) is caught by protect.
    protect(|| unsafe { blocking_operation(io, run::<F>, data) })?;
    call.result.expect("the blocking operation ran its function").map(Some)
}
