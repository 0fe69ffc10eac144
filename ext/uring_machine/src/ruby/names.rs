//! Every method and ivar name the crate uses, interned once at load: creating an ID allocates
//! (so it may raise NoMemoryError), and that is allowed only there, under `protect`. After load
//! these are plain numbers, read without a call into Ruby.
use std::ffi::CString;
use std::sync::OnceLock;

use magnus::{rb_sys::protect, Error};
use rb_sys::{ID, VALUE};

/// The IDs, one field per name (the field's doc is the name when it differs from the field).
pub struct Names {
    // Hidden (non-@) ivars on fibers and exceptions: invisible to Ruby, gone with the object.
    pub fiber_done: ID,
    pub fiber_value: ID,
    pub fiber_error: ID,
    pub fiber_joiners: ID,
    pub fiber_machine: ID,
    pub fiber_home: ID,
    pub fiber_parent: ID,
    pub fiber_children: ID,
    pub fiber_watcher: ID,
    /// The one object (a group) told of this fiber's own end, before its parent's watcher
    pub fiber_reporter: ID,
    /// The fiber a failure of this one was raised in (join there does not raise it again)
    pub fiber_told: ID,
    pub fiber_block: ID,
    pub fiber_args: ID,
    pub fiber_mailbox: ID,
    /// What `spin(name:)` or Fiber#name= called a fiber
    pub fiber_name: ID,
    /// When a fiber started, CLOCK_MONOTONIC nanoseconds
    pub fiber_born: ID,
    /// Set by `spin(isolated: true)`: its failure is reported, not raised in its parent
    pub fiber_isolated: ID,
    /// The thread that allocated a fiber (machine/fiber_thread.rs)
    pub fiber_thread: ID,
    pub signal_target: ID,
    /// On an exception another thread's Thread#raise sent (machine/signals.rs)
    pub raised_by_thread: ID,
    // Methods and ivars of Ruby (or of lib/) that the crate calls or reads.
    /// `@value` of UringMachine::Stop
    pub at_value: ID,
    /// `@bytes_written` of a UringMachine::PartialWrite exception
    pub at_bytes_written: ID,
    pub child_finished: ID,
    pub isolated_failure: ID,
    pub serve_spin: ID,
    pub deadlock: ID,
    pub stop_children: ID,
    pub current_machine: ID,
    pub raise: ID,
    pub instance_method: ID,
    pub owner: ID,
    pub write: ID,
    /// CRuby's IO#syswrite, kept under this name while FastCalls is in place
    pub cruby_syswrite: ID,
    pub gets: ID,
    pub bind_call: ID,
    pub chomp: ID,
    pub wait_readable: ID,
    pub uring_machine: ID,
    pub thread_variable_get: ID,
    pub thread_variable_set: ID,
    /// The constants Timeout and (Timeout::)Error
    pub timeout_module: ID,
    pub error_class: ID,
    pub exit_exception: ID,
    pub to_s: ID,
    pub alive_p: ID,
}

static NAMES: OnceLock<Names> = OnceLock::new();

/// The interned names (set at load, before any method of the gem can run).
pub fn names() -> &'static Names {
    NAMES.get().expect("names are interned when the extension loads")
}

/// A static Symbol's VALUE for an ID interned here (an ID made from a plain name is static:
/// its Symbol is computed, never allocated).
pub fn symbol(id: ID) -> VALUE {
    // SAFETY: rb_id2sym of a static ID only computes the Symbol (STATIC_ID2SYM); it allocates
    // nothing and cannot raise. Called with the GVL, from Ruby's thread.
    unsafe { rb_sys::rb_id2sym(id) }
}

fn intern(name: &str) -> Result<ID, Error> {
    let c = CString::new(name).expect("identifier without NUL");
    // SAFETY: `c` is a NUL-terminated string that outlives the call; rb_intern's allocation
    // (a new Symbol) may raise NoMemoryError, which protect turns into Err.
    protect(|| unsafe { rb_sys::rb_intern(c.as_ptr()) as VALUE }).map(|id| id as ID)
}

/// Interns every name; called once at load (the extension's Init).
pub fn init() -> Result<(), Error> {
    let names = Names {
        fiber_done: intern("__uring_machine_done__")?,
        fiber_value: intern("__uring_machine_value__")?,
        fiber_error: intern("__uring_machine_error__")?,
        fiber_joiners: intern("__uring_machine_joiners__")?,
        fiber_machine: intern("__uring_machine_machine__")?,
        fiber_home: intern("__uring_machine_home__")?,
        fiber_thread: intern("__uring_machine_thread__")?,
        fiber_parent: intern("__uring_machine_parent__")?,
        fiber_children: intern("__uring_machine_children__")?,
        fiber_watcher: intern("__uring_machine_watcher__")?,
        fiber_reporter: intern("__uring_machine_reporter__")?,
        fiber_told: intern("__uring_machine_told__")?,
        fiber_block: intern("__uring_machine_block__")?,
        fiber_args: intern("__uring_machine_args__")?,
        fiber_mailbox: intern("__uring_machine_mailbox__")?,
        fiber_name: intern("__uring_machine_name__")?,
        fiber_born: intern("__uring_machine_born__")?,
        fiber_isolated: intern("__uring_machine_isolated__")?,
        signal_target: intern("__uring_machine_signal_target__")?,
        raised_by_thread: intern("__uring_machine_raised_by_thread__")?,
        at_value: intern("@value")?,
        at_bytes_written: intern("@bytes_written")?,
        child_finished: intern("child_finished")?,
        isolated_failure: intern("__isolated_failure__")?,
        serve_spin: intern("__serve_spin__")?,
        deadlock: intern("__deadlock__")?,
        stop_children: intern("__stop_children__")?,
        current_machine: intern("current_machine")?,
        raise: intern("raise")?,
        instance_method: intern("instance_method")?,
        owner: intern("owner")?,
        write: intern("write")?,
        cruby_syswrite: intern("__cruby_syswrite")?,
        gets: intern("gets")?,
        bind_call: intern("bind_call")?,
        chomp: intern("chomp")?,
        wait_readable: intern("wait_readable")?,
        uring_machine: intern("uring_machine")?,
        thread_variable_get: intern("thread_variable_get")?,
        thread_variable_set: intern("thread_variable_set")?,
        timeout_module: intern("Timeout")?,
        error_class: intern("Error")?,
        exit_exception: intern("ExitException")?,
        to_s: intern("to_s")?,
        alive_p: intern("alive?")?,
    };
    let _ = NAMES.set(names);
    Ok(())
}
