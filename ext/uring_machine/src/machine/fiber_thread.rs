//! The thread a fiber belongs to. Only the thread that created a fiber can run it: CRuby raises
//! "fiber called across threads" when another one switches to it, which would break whichever
//! fiber of the machine happened to switch. CRuby keeps a fiber's thread private, so from the
//! moment the gem loads, Fiber's allocator is wrapped to record the allocating thread in a
//! hidden ivar (`Fiber.new` allocates and initializes on the same thread): `Machine#schedule`
//! and `Scheduler#unblock` refuse a fiber of another thread up front, created, running or dead.
use std::sync::OnceLock;

use magnus::rb_sys::{protect, resume_error};
use magnus::Error;
use rb_sys::VALUE;

use crate::ruby::names::names;
use crate::ruby::value::{self as rb};

type Alloc = unsafe extern "C" fn(VALUE) -> VALUE;

/// CRuby's own allocator of Fiber.
static ORIGINAL: OnceLock<Alloc> = OnceLock::new();

/// Wraps Fiber's allocator (once, at load). Fibers allocated before are not traced. Listed in
/// UringMachine.patches (lib/uring_machine/core_ext/fiber.rb).
pub fn install() -> Result<(), Error> {
    let fiber = rb::class_named("Fiber")?;
    // SAFETY: Fiber is a class; reading its allocator and replacing it are plain C API calls
    // that allocate nothing and cannot raise, made once, at load, with the GVL.
    unsafe {
        if let Some(original) = rb_sys::rb_get_alloc_func(fiber) {
            if ORIGINAL.set(original).is_ok() {
                rb_sys::rb_define_alloc_func(fiber, Some(alloc_recording_thread));
            }
        }
    }
    Ok(())
}

/// Fiber's allocator: CRuby's, then the current thread recorded on the new fiber.
///
/// # Safety
///
/// Called by Ruby only, with the GVL, as the allocator of Fiber (or a subclass): `class` is
/// that class.
unsafe extern "C" fn alloc_recording_thread(class: VALUE) -> VALUE {
    let Some(original) = ORIGINAL.get().copied() else {
        // SAFETY: installed only after ORIGINAL was set, so this is never reached.
        unsafe { rb_sys::rb_bug(c"uring_machine: Fiber allocator without the original".as_ptr()) }
    };
    // SAFETY: CRuby's allocator, called as Ruby would call it; what it raises (NoMemoryError)
    // is caught by protect and re-raised below.
    let allocated = protect(|| unsafe { original(class) });
    match allocated {
        Ok(fiber) => {
            // SAFETY: rb_thread_current returns the current Thread object; it allocates nothing.
            let thread = unsafe { rb_sys::rb_thread_current() };
            // A fresh, unfrozen fiber: only NoMemoryError can come out of this, and the fiber
            // then goes untraced.
            let _ = rb::ivar_set(fiber, names().fiber_thread, thread);
            fiber
        }
        // SAFETY: nothing with a destructor is alive in this frame (the Error is moved in);
        // raising from an allocator is how CRuby's own allocators fail.
        Err(e) => unsafe { resume_error(e) },
    }
}

/// The Thread that created `fiber`, or nil when it cannot be told (a fiber allocated before
/// the gem was loaded, a thread's root fiber).
pub fn thread_of(fiber: VALUE) -> VALUE {
    rb::ivar_get(fiber, names().fiber_thread)
}
