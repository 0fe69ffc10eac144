//! Files by path: open and statx through the ring (they can block on disk).
use std::ffi::CString;

use io_uring::{opcode, types};
use magnus::{Error, Value};

use crate::machine::Machine;
use crate::ring::op::Owned;
use crate::ruby::args::{arg, arity, int_or};
use crate::ruby::value::{self as rb, int, NIL};

fn path_arg(v: Value) -> Result<CString, Error> {
    let path: String = magnus::TryConvert::try_convert(v)?;
    CString::new(path).map_err(|_| rb::arg_error("path contains a NUL byte"))
}

fn time_f64(t: libc::statx_timestamp) -> f64 {
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

impl Machine {
    /// open(path, flags, mode = 0o666) → fd (close-on-exec).
    pub fn rb_open(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 2, 3)?;
        self.check_owner()?;
        let path = path_arg(args[0])?;
        let flags = rb::int_arg(arg(args, 1), "flags", 0, i32::MAX as i64)? as i32 | libc::O_CLOEXEC;
        let mode = int_or(arg(args, 2), 0o666, "mode", 0, 0o7777)? as u32;
        let res = self.run_op(
            |slot| {
                let sqe = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
                    .flags(flags)
                    .mode(mode)
                    .build();
                slot.owned = Owned::Path(path);
                sqe
            },
            opcode::OpenAt::CODE,
            NIL,
        )?;
        rb::check(res as i64, "open").map(|fd| rb::value(int(fd)))
    }

    /// statx(path) → Hash of :size, :mode, :uid, :gid, :nlink, :ino, :blocks, :blksize,
    /// :atime, :mtime, :ctime, :btime (Float seconds).
    pub fn rb_statx(&self, path: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let path = path_arg(path)?;
        // The result lands on this frame: await_op returns only after the CQE, even when
        // interrupted, so it outlives the kernel's use of it.
        // SAFETY: statx is plain old data: all zeroes is a valid value.
        let mut out: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
        let out_ptr = &mut *out as *mut libc::statx as *mut types::statx;
        let res = self.run_op(
            |slot| {
                let sqe = opcode::Statx::new(types::Fd(libc::AT_FDCWD), path.as_ptr(), out_ptr)
                    .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
                    .build();
                slot.owned = Owned::Path(path);
                sqe
            },
            opcode::Statx::CODE,
            NIL,
        )?;
        rb::check(res as i64, "statx")?;
        let hash = rb::hash_new()?;
        let st = &*out;
        let ints: [(&str, u64); 8] = [
            ("size", st.stx_size),
            ("mode", st.stx_mode as u64),
            ("uid", st.stx_uid as u64),
            ("gid", st.stx_gid as u64),
            ("nlink", st.stx_nlink as u64),
            ("ino", st.stx_ino),
            ("blocks", st.stx_blocks),
            ("blksize", st.stx_blksize as u64),
        ];
        for (k, v) in ints {
            rb::hash_aset(hash, rb::symbol(k)?, rb::uinteger(v)?)?;
        }
        let times = [
            ("atime", st.stx_atime),
            ("mtime", st.stx_mtime),
            ("ctime", st.stx_ctime),
            ("btime", st.stx_btime),
        ];
        for (k, t) in times {
            rb::hash_aset(hash, rb::symbol(k)?, rb::float(time_f64(t))?)?;
        }
        Ok(rb::value(hash))
    }
}
