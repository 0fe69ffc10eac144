//! Counters a user (and the tests) can read through `Machine#metrics`.
use magnus::{Error, RHash, Ruby};

use crate::ring::opcodes::opcode_name;

pub struct Metrics {
    /// io_uring ops submitted, indexed by opcode.
    pub ops: [u64; 64],
    /// Operations completed by a direct non-blocking syscall, without the ring.
    pub direct: [u64; 64],
    pub submits: u64,
    pub waits: u64,
    pub switches: u64,
    /// IO method calls (readpartial, sysread, read(n), write) served by the scheduler's
    /// fast path (scheduler/fast_io.rs) instead of CRuby's method and the hooks.
    pub fast_io: u64,
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
        }
    }
}

impl Metrics {
    pub fn to_hash(&self, ruby: &Ruby, in_flight: usize, runqueue: usize) -> Result<RHash, Error> {
        let hash = ruby.hash_new();
        hash.aset(ruby.to_symbol("ops"), counts(ruby, &self.ops)?)?;
        hash.aset(ruby.to_symbol("direct"), counts(ruby, &self.direct)?)?;
        hash.aset(ruby.to_symbol("submits"), self.submits)?;
        hash.aset(ruby.to_symbol("waits"), self.waits)?;
        hash.aset(ruby.to_symbol("switches"), self.switches)?;
        hash.aset(ruby.to_symbol("fast_io"), self.fast_io)?;
        hash.aset(ruby.to_symbol("in_flight"), in_flight)?;
        hash.aset(ruby.to_symbol("runqueue"), runqueue)?;
        Ok(hash)
    }
}

fn counts(ruby: &Ruby, table: &[u64; 64]) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    for (code, count) in table.iter().enumerate().filter(|(_, c)| **c > 0) {
        hash.aset(ruby.to_symbol(opcode_name(code as u8)), *count)?;
    }
    Ok(hash)
}
