//! Counters a user (and the tests) can read through `Machine#metrics`.
use magnus::{Error, Value};
use rb_sys::VALUE;

use crate::ring::opcodes::opcode_name;
use crate::ruby::value as rb;

#[derive(Clone)]
pub struct Metrics {
    /// io_uring ops submitted, indexed by opcode.
    pub ops: [u64; 64],
    /// Operations completed by a direct non-blocking syscall, without the ring.
    pub direct: [u64; 64],
    pub submits: u64,
    pub waits: u64,
    pub switches: u64,
    /// IO method calls (readpartial, sysread, read(n), write) served by the scheduler's
    /// fast path (fast/io.rs) instead of CRuby's method and the hooks.
    pub fast_io: u64,
    /// copy_file_range calls that moved bytes (file to file IO.copy_stream: no ring op exists).
    pub copy_file_range: u64,
    /// Fibers this machine started (spin, Fiber.schedule) that have not finished: a gauge.
    pub fibers: u64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            ops: [0; 64],
            direct: [0; 64],
            submits: 0,
            waits: 0,
            switches: 0,
            fast_io: 0,
            copy_file_range: 0,
            fibers: 0,
        }
    }
}

impl Metrics {
    /// The counters, then the `gauges` read off the machine's state, as a Hash (every
    /// allocation here may raise: each goes through `rb`'s protected helpers).
    pub fn to_hash(&self, gauges: &[(&str, u64)]) -> Result<Value, Error> {
        let hash = rb::hash_new()?;
        rb::hash_aset(hash, rb::symbol("ops")?, counts(&self.ops)?)?;
        rb::hash_aset(hash, rb::symbol("direct")?, counts(&self.direct)?)?;
        let scalars = [
            ("submits", self.submits),
            ("waits", self.waits),
            ("switches", self.switches),
            ("fast_io", self.fast_io),
            ("copy_file_range", self.copy_file_range),
            ("fibers", self.fibers),
        ];
        for &(name, count) in scalars.iter().chain(gauges) {
            rb::hash_aset(hash, rb::symbol(name)?, rb::uinteger(count)?)?;
        }
        Ok(rb::value(hash))
    }
}

fn counts(table: &[u64; 64]) -> Result<VALUE, Error> {
    let hash = rb::hash_new()?;
    for (code, count) in table.iter().enumerate().filter(|(_, c)| **c > 0) {
        rb::hash_aset(hash, rb::symbol(opcode_name(code as u8))?, rb::uinteger(*count)?)?;
    }
    Ok(hash)
}
