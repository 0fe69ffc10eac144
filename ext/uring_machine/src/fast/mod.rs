//! The fast layer: the IO methods that, under our Scheduler, move bytes themselves where CRuby's
//! own would go through the hooks (UringMachine::FastIO and FastCalls: direct reads and writes,
//! the read-ahead buffer filled directly, reads that wait in the ring), write several pieces as
//! one (UringMachine::CoalescedWrites), and count what an interrupted IO#write wrote. Each falls
//! back to CRuby's method in every state where it would not do exactly what that method does
//! (plain_io.rs says which states allow it). The top layer, beside scheduler/: uses scheduler/
//! (to find the current Scheduler's machine), ops/, machine/ and ruby/; nothing uses it but
//! lib.rs.
pub mod coalesce;
pub mod fill;
pub mod io;
pub mod lines;
pub mod nonblock;
pub mod plain_io;
pub mod socket;
pub mod switch;
pub mod wait;
pub mod write_count;
