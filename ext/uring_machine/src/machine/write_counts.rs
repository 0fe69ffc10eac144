//! The bytes written so far by the IO#write (puts, print) call a fiber is in, for the exception
//! that may stop it (fast/write_count.rs opens the count; the io_write hook and the fast path's
//! direct writes add to it).
use crate::machine::Machine;
use crate::ruby::value::fiber_current;

impl Machine {
    /// Adds `n` bytes written to `fd` to the current fiber's count, if one is open for `fd`.
    pub fn count_written(&self, fd: i32, n: usize) {
        self.with(|s| {
            if s.write_counts.is_empty() {
                return;
            }
            if let Some((counted_fd, count)) = s.write_counts.get_mut(&fiber_current()) {
                if *counted_fd == fd {
                    *count += n;
                }
            }
        });
    }

    /// Runs `body` with a count open for the current fiber and `fd`, `already` bytes written
    /// to it before; returns what `body` returned and the count at its end. The count of an
    /// enclosing call on the same descriptor (IO#puts calling IO#write) gets this one's added.
    pub fn counting_writes<T>(&self, fd: i32, already: usize, body: impl FnOnce() -> T) -> (T, usize) {
        let fiber = fiber_current();
        let outer = self.with(|s| s.write_counts.insert(fiber, (fd, already)));
        let result = body();
        let (_, count) = self.with(|s| {
            let inner = s.write_counts.remove(&fiber).unwrap_or((fd, already));
            if let Some((outer_fd, outer_count)) = outer {
                let outer_count = if outer_fd == fd {
                    outer_count + inner.1
                } else {
                    outer_count
                };
                s.write_counts.insert(fiber, (outer_fd, outer_count));
            }
            inner
        });
        (result, count)
    }
}
