//! The memory an op reads into or writes from: a String (grown as needed, binary) or an
//! IO::Buffer. While the ring owns it, it is locked (String#locktmp / IO::Buffer#lock) so Ruby
//! cannot resize or free it; the op slot's mark keeps the object pinned against GC.compact.
use std::os::raw::c_long;

use magnus::{rb_sys::protect, Error};
use rb_sys::VALUE;

use crate::ruby::value::{self as rb, NIL};

fn io_buffer_class() -> VALUE {
    // SAFETY: rb_cIOBuffer is set when Ruby boots (IO::Buffer is core since 3.1), before any
    // extension loads; reading the global is a plain load.
    unsafe { rb_sys::rb_cIOBuffer }
}

fn is_io_buffer(v: VALUE) -> bool {
    !rb::is_special(v) && rb::is_kind_of(v, io_buffer_class())
}

/// Where a read lands.
pub struct ReadTarget {
    obj: VALUE,
    is_string: bool,
    offset: usize,
    pub ptr: *mut u8,
    locked: bool,
}

impl ReadTarget {
    /// `buffer_offset` < 0 counts from the end of a String (-1 appends).
    pub fn prepare(obj: VALUE, maxlen: usize, buffer_offset: i64) -> Result<ReadTarget, Error> {
        if rb::is_string(obj) {
            if rb::is_frozen(obj) {
                return Err(rb::frozen_error("can't read into a frozen String"));
            }
            // SAFETY: `obj` is a String (is_string above): RSTRING_LEN reads its header.
            let len = unsafe { rb_sys::RSTRING_LEN(obj) } as i64;
            let offset = if buffer_offset < 0 {
                len + 1 + buffer_offset
            } else {
                buffer_offset
            };
            if offset < 0 || offset > len {
                return Err(rb::arg_error(format!(
                    "buffer offset {buffer_offset} outside the String (length {len})"
                )));
            }
            let needed = offset as usize + maxlen;
            let grow = needed.saturating_sub(len as usize) as libc::c_long;
            // SAFETY: `obj` is a String held by the caller; rb_str_modify_expand raises
            // (locked, frozen, too long, no memory) only through protect.
            protect(|| unsafe {
                rb_sys::rb_str_modify_expand(obj, grow);
                NIL
            })?;
            // SAFETY: the String now has room for `offset + maxlen` bytes and offset <= len, so
            // the pointer stays inside its buffer.
            let ptr = unsafe { (rb_sys::RSTRING_PTR(obj) as *mut u8).add(offset as usize) };
            return Ok(ReadTarget {
                obj,
                is_string: true,
                offset: offset as usize,
                ptr,
                locked: false,
            });
        }
        if is_io_buffer(obj) {
            let mut base: *mut libc::c_void = std::ptr::null_mut();
            let mut size: usize = 0;
            // SAFETY: `obj` is an IO::Buffer; `base` and `size` are locals that outlive the
            // call (size_t is usize). It raises (read-only, freed) only through protect.
            protect(|| unsafe {
                rb_sys::rb_io_buffer_get_bytes_for_writing(obj, &mut base, &mut size as *mut usize as *mut _);
                NIL
            })
            .map_err(|e| rb::arg_error(format!("IO::Buffer cannot be read into: {e}")))?;
            if buffer_offset < 0 || buffer_offset as usize + maxlen > size {
                return Err(rb::arg_error(format!(
                    "{maxlen} bytes at offset {buffer_offset} do not fit the IO::Buffer (size {size})"
                )));
            }
            // SAFETY: buffer_offset + maxlen <= size (checked above): inside the buffer.
            let ptr = unsafe { (base as *mut u8).add(buffer_offset as usize) };
            return Ok(ReadTarget {
                obj,
                is_string: false,
                offset: buffer_offset as usize,
                ptr,
                locked: false,
            });
        }
        Err(rb::type_error("buffer must be a String or an IO::Buffer"))
    }

    pub fn object(&self) -> VALUE {
        self.obj
    }

    /// Called before the ring gets the pointer.
    pub fn lock(&mut self) -> Result<(), Error> {
        lock(self.obj, self.is_string)?;
        self.locked = true;
        Ok(())
    }

    /// Records `n` bytes read: a String ends right after them and becomes binary. While the
    /// read was in flight Ruby code may have made the String shared (String#dup of a locked
    /// String moves its bytes to a new frozen root) or frozen (an IO::Buffer's String): then
    /// CRuby refuses to set its length, and that error (RuntimeError, FrozenError) is returned.
    pub fn finish(mut self, n: usize) -> Result<(), Error> {
        if !self.is_string {
            self.unlock();
            return Ok(());
        }
        let (obj, locked, len) = (self.obj, std::mem::take(&mut self.locked), self.offset + n);
        // SAFETY: `obj` is the String prepared (and, if `locked`, tmp-locked) by this target,
        // held by the caller; `len` is at most the capacity prepare made room for, so
        // rb_str_set_len never sees an overflow. What these raise (an unlock of a String that
        // is not locked, a shared or frozen String) is caught by protect.
        protect(|| unsafe {
            if locked {
                rb_sys::rb_str_unlocktmp(obj);
            }
            rb_sys::rb_str_set_len(obj, len as c_long);
            rb_sys::rb_enc_associate_index(obj, rb_sys::rb_ascii8bit_encindex());
            NIL
        })
        .map(|_| ())
    }

    fn unlock(&mut self) {
        if std::mem::take(&mut self.locked) {
            unlock(self.obj, self.is_string);
        }
    }
}

impl Drop for ReadTarget {
    fn drop(&mut self) {
        self.unlock();
    }
}

/// What a write sends.
pub struct WriteSource {
    obj: VALUE,
    is_string: bool,
    pub ptr: *const u8,
    pub len: usize,
    locked: bool,
}

impl WriteSource {
    pub fn prepare(obj: VALUE, length: Option<usize>) -> Result<WriteSource, Error> {
        let (ptr, size, is_string) = if rb::is_string(obj) {
            // SAFETY: `obj` is a String: RSTRING_PTR and RSTRING_LEN read its header.
            unsafe {
                (
                    rb_sys::RSTRING_PTR(obj) as *const u8,
                    rb_sys::RSTRING_LEN(obj) as usize,
                    true,
                )
            }
        } else if is_io_buffer(obj) {
            let mut base: *const libc::c_void = std::ptr::null();
            let mut size: usize = 0;
            // SAFETY: `obj` is an IO::Buffer; `base` and `size` are locals that outlive the
            // call. It raises (freed buffer) only through protect.
            protect(|| unsafe {
                rb_sys::rb_io_buffer_get_bytes_for_reading(obj, &mut base, &mut size as *mut usize as *mut _);
                NIL
            })
            .map_err(|e| rb::arg_error(format!("IO::Buffer cannot be written from: {e}")))?;
            (base as *const u8, size, false)
        } else {
            return Err(rb::type_error("buffer must be a String or an IO::Buffer"));
        };
        let len = match length {
            Some(l) if l > size => {
                return Err(rb::arg_error(format!(
                    "length {l} is larger than the buffer ({size} bytes)"
                )));
            }
            Some(l) => l,
            None => size,
        };
        Ok(WriteSource {
            obj,
            is_string,
            ptr,
            len,
            locked: false,
        })
    }

    pub fn object(&self) -> VALUE {
        self.obj
    }

    /// Frozen Strings cannot change under the kernel, so only mutable ones are locked.
    pub fn lock(&mut self) -> Result<(), Error> {
        if self.locked || (self.is_string && rb::is_frozen(self.obj)) {
            return Ok(());
        }
        lock(self.obj, self.is_string)?;
        self.locked = true;
        Ok(())
    }
}

impl Drop for WriteSource {
    fn drop(&mut self) {
        if std::mem::take(&mut self.locked) {
            unlock(self.obj, self.is_string);
        }
    }
}

fn lock(obj: VALUE, is_string: bool) -> Result<(), Error> {
    // SAFETY: `obj` is the String or IO::Buffer `is_string` says, held by the op's owner;
    // locking an already locked one raises, caught by protect.
    protect(|| unsafe {
        if is_string {
            rb_sys::rb_str_locktmp(obj)
        } else {
            rb_sys::rb_io_buffer_lock(obj)
        }
    })
    .map(|_| ())
}

fn unlock(obj: VALUE, is_string: bool) {
    // SAFETY: as in `lock`; an unlock that raises (not locked) is caught by protect, and
    // ignored: the target or source is being dropped, and its lock is gone either way.
    let _ = protect(|| unsafe {
        if is_string {
            rb_sys::rb_str_unlocktmp(obj)
        } else {
            rb_sys::rb_io_buffer_unlock(obj)
        }
    });
}
