//! The bytes one IO#write (puts, print) call wrote, for the exception that stops it
//! (ruby/partial_write.rs). CRuby's IO#write hands its String to the io_write hook one transfer
//! at a time, looping until all of it went out, and an exception from a hook call loses the
//! count. So our IO#write, puts and print (CoalescedWrites, prepended to IO) open a count for
//! the current fiber and the descriptor before they hand over to CRuby's method, every write
//! to that descriptor adds to it (the io_write hook, the fast path's direct writes: the count
//! is the machine's, machine/write_counts.rs), and the exception leaving the method carries the
//! total.
use magnus::{Error, Value};
use rb_sys::VALUE;

use crate::fast::coalesce::our_scheduler;
use crate::machine::Machine;
use crate::ruby::io_stream::{open_fptr, write_io};
use crate::ruby::partial_write;
use crate::ruby::value as rb;
use crate::scheduler::Scheduler;

/// The machine of the current fiber's Scheduler, when it is ours and may be used here.
fn current_machine() -> Option<&'static Machine> {
    let scheduler = rb::typed_ref::<Scheduler>(rb::value(our_scheduler()?)).ok()?;
    let machine = scheduler.bound_machine().ok()?;
    machine.is_owner_thread().then_some(machine)
}

/// The descriptor writes to `io` go to (the write half of a duplex IO), if it is open.
fn write_fd(io: VALUE) -> Option<i32> {
    // write_io, not rb_io_get_write_io: that raises IOError for an IO without a stream
    // (IO.allocate), and this runs before CRuby's method could raise it properly.
    // SAFETY: open_fptr returned a live rb_io_t of an open IO (the receiver or its write IO).
    write_io(io).and_then(open_fptr).map(|fptr| unsafe { (*fptr).fd })
}

/// Runs `body` (CRuby's write, puts or print of `io`) with a count open for the current fiber
/// and `io`'s descriptor, `already` bytes written to it before; an exception from `body`
/// carries the total. The count of an enclosing call on the same descriptor (IO#puts calling
/// IO#write) gets this one's added.
pub fn counted(io: VALUE, already: usize, body: impl FnOnce() -> Result<Value, Error>) -> Result<Value, Error> {
    let Some((machine, fd)) = current_machine().zip(write_fd(io)) else {
        return body().map_err(|e| partial_write::mark(e, already));
    };
    let (result, count) = machine.counting_writes(fd, already, body);
    result.map_err(|e| partial_write::mark(e, count))
}
