//! IO::Buffers registered with the ring: the kernel pins their pages once, and reads and
//! writes on them (or on any slice of them) become READ_FIXED / WRITE_FIXED ops that skip
//! the per-op page walk. A registered buffer stays locked (IO::Buffer#locked?), so Ruby can
//! neither resize nor free it, until it is unregistered, which is refused while ops use it.
use std::time::Duration;

use magnus::{rb_sys::protect, Error, RArray, Value};
use rb_sys::VALUE;

use crate::machine::Machine;
use crate::ops::io::Direction;
use crate::ring::buffer_registry::{Entry, TABLE_SLOTS};
use crate::ruby::value::{self as rb, int, raw, NIL};

/// The kernel's limit for one registered buffer.
const MAX_BUFFER: usize = 1 << 30;

/// The memory of an IO::Buffer, without raising.
fn buffer_bytes(buffer: VALUE) -> Result<(usize, usize), Error> {
    // SAFETY: rb_cIOBuffer is set at boot.
    if rb::is_special(buffer) || !rb::is_kind_of(buffer, unsafe { rb_sys::rb_cIOBuffer }) {
        return Err(rb::type_error("expected IO::Buffer objects"));
    }
    let mut base: *mut libc::c_void = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: `buffer` is an IO::Buffer (checked), the one case in which
    // rb_io_buffer_get_bytes raises nothing (a freed buffer answers no memory); `base` and
    // `size` are locals that outlive the call.
    unsafe { rb_sys::rb_io_buffer_get_bytes(buffer, &mut base, &mut size as *mut usize as *mut _) };
    if base.is_null() || size == 0 {
        return Err(rb::arg_error(
            "cannot register an IO::Buffer without memory (freed or empty)",
        ));
    }
    if size > MAX_BUFFER {
        return Err(rb::arg_error(format!(
            "cannot register an IO::Buffer of {size} bytes: the kernel's limit is {MAX_BUFFER}"
        )));
    }
    Ok((base as usize, size))
}

fn registration_error(e: std::io::Error, size: usize) -> Error {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    let why = match errno {
        libc::ENOMEM => {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes one rlimit into a local.
            unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
            format!(
                "registering {size} bytes of buffers exceeds the locked-memory limit (RLIMIT_MEMLOCK is {} bytes): \
                 raise it (ulimit -l, LimitMEMLOCK= in systemd) or grant CAP_IPC_LOCK",
                limit.rlim_cur
            )
        }
        libc::EFAULT => "the buffer's memory cannot be pinned (a file-backed mapping?)".to_string(),
        _ => "io_uring_register (buffers)".to_string(),
    };
    rb::errno_error(errno, &why)
}

impl Machine {
    /// register_buffers(buffers) → their slots in the ring's buffer table. Each buffer is
    /// locked until unregistered; one already registered keeps its slot.
    pub fn rb_register_buffers(&self, buffers: RArray) -> Result<Value, Error> {
        self.check_owner()?;
        let slots = rb::ary_new_capa(buffers.len())?;
        for buffer in buffers.into_iter().map(raw) {
            rb::ary_push(slots, int(self.register_buffer(buffer)? as i64))?;
        }
        Ok(rb::value(slots))
    }

    fn register_buffer(&self, buffer: VALUE) -> Result<usize, Error> {
        let (base, size) = buffer_bytes(buffer)?;
        if let Some(slot) = self.with(|s| s.registry.slot_of(buffer)) {
            return Ok(slot);
        }
        let Some(slot) = self.with(|s| s.registry.free_slot()) else {
            return Err(rb::arg_error(format!(
                "all {TABLE_SLOTS} registered-buffer slots are taken"
            )));
        };
        // Raises IO::Buffer::LockedError when somebody else holds it.
        // SAFETY: `buffer` is an IO::Buffer held by the caller's Array; LockedError is caught
        // by protect.
        protect(|| unsafe { rb_sys::rb_io_buffer_lock(buffer) })?;
        let iov = libc::iovec {
            iov_base: base as *mut libc::c_void,
            iov_len: size,
        };
        let registered = self.with(|s| {
            if !s.registry.table_ready {
                s.ring.submitter()?.register_buffers_sparse(TABLE_SLOTS)?;
                s.registry.table_ready = true;
            }
            // SAFETY: the memory stays valid while registered: the buffer is locked (Ruby can
            // neither resize nor free it) and marked (pinned) by the registry until its slot is
            // cleared, which unregister_buffer does before unlocking it.
            unsafe { s.ring.submitter()?.register_buffers_update(slot as u32, &[iov], None) }
        });
        if let Err(e) = registered {
            // SAFETY: we locked it above; an unlock error is caught by protect (and moot: the
            // registration failed, the buffer goes back as it was).
            let _ = protect(|| unsafe { rb_sys::rb_io_buffer_unlock(buffer) });
            return Err(registration_error(e, size));
        }
        self.with(|s| {
            let registry = &mut s.registry;
            if slot == registry.slots.len() {
                registry.slots.push(None);
            }
            registry.slots[slot] = Some(Entry {
                buffer,
                base,
                size,
                in_use: 0,
            });
            registry.count += 1;
        });
        Ok(slot)
    }

    /// unregister_buffers(buffers = nil) → how many were unregistered (nil: all of them).
    /// IOError for a buffer that an op is still using.
    pub fn rb_unregister_buffers(&self, args: &[Value]) -> Result<Value, Error> {
        crate::ruby::args::arity(args, 0, 1)?;
        self.check_owner()?;
        let targets: Vec<VALUE> = match crate::ruby::args::arg(args, 0) {
            NIL => self.with(|s| s.registry.slots.iter().flatten().map(|e| e.buffer).collect()),
            list => RArray::from_value(rb::value(list))
                .ok_or_else(|| rb::type_error("expected an Array of IO::Buffers"))?
                .into_iter()
                .map(raw)
                .collect(),
        };
        let mut count = 0;
        for buffer in targets {
            if self.unregister_buffer(buffer)? {
                count += 1;
            }
        }
        Ok(rb::value(int(count)))
    }

    fn unregister_buffer(&self, buffer: VALUE) -> Result<bool, Error> {
        let Some(slot) = self.with(|s| s.registry.slot_of(buffer)) else {
            return Ok(false);
        };
        let busy = self.with(|s| s.registry.slots[slot].as_ref().map_or(0, |e| e.in_use));
        if busy > 0 {
            return Err(rb::exception(
                rb::ruby().exception_io_error(),
                format!("IO::Buffer is in use by {busy} operation(s) in flight; unregister it after they finish"),
            ));
        }
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: an empty iovec clears the slot: the kernel keeps no pointer afterwards, and no
        // op uses the slot (busy checked above).
        self.with(|s| unsafe { s.ring.submitter()?.register_buffers_update(slot as u32, &[empty], None) })
            .map_err(|e| rb::errno_error(e.raw_os_error().unwrap_or(libc::EIO), "io_uring_register (buffers)"))?;
        self.with(|s| {
            s.registry.slots[slot] = None;
            s.registry.count -= 1;
        });
        // SAFETY: the registry locked it when registering; an unlock error is caught by protect.
        protect(|| unsafe { rb_sys::rb_io_buffer_unlock(buffer) })?;
        Ok(true)
    }

    /// One READ_FIXED / WRITE_FIXED of at most `len` bytes at `ptr`, inside the registered
    /// buffer in `slot`: the count or -errno. The ring waits until the fd is ready.
    #[allow(clippy::too_many_arguments)]
    pub fn transfer_fixed(
        &self,
        direction: Direction,
        fd: i32,
        ptr: *mut u8,
        len: usize,
        file_offset: i64,
        slot: u16,
        deadline: Option<Duration>,
    ) -> Result<i64, Error> {
        self.with(|s| s.registry.count_use(slot, true));
        let res = self.ring_transfer(direction, fd, ptr, len, file_offset, NIL, Some(slot), deadline);
        // run_op returns only after the CQE, even when interrupted: the kernel is done.
        self.with(|s| s.registry.count_use(slot, false));
        res
    }

    pub fn registered_slot(&self, ptr: *const u8, len: usize) -> Option<u16> {
        self.with(|s| s.registry.find(ptr, len))
    }
}
