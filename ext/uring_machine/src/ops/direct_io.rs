//! The attempts made before anything goes to the ring: syscalls that never wait for a peer, so
//! they run with the GVL held and without a fiber switch. Where the kernel cannot try without
//! blocking (EOPNOTSUPP), files whose I/O is a memory copy are still done here.
use crate::machine::fd_kinds::FdKind;
use crate::machine::Machine;
use crate::ring::readiness::poll_now;
use crate::ruby::value::last_errno;

/// Buffered writes to a regular file of at most this many bytes are made directly when the
/// filesystem cannot do them without blocking (ext4 answers RWF_NOWAIT with EOPNOTSUPP): a
/// copy into the page cache of a few microseconds, where the ring would hand the write to an
/// io-wq worker thread and back (50–130 µs measured here). Larger writes go to the ring, so
/// that other fibers run while they are copied.
const PAGE_CACHE_WRITE_MAX: usize = 128 * 1024;

const EOPNOTSUPP: i64 = -(libc::EOPNOTSUPP as i64);

/// The ring is needed: the attempt would have waited (EAGAIN), or the fd cannot say without
/// blocking (EOPNOTSUPP).
pub fn would_block(res: i64) -> bool {
    res == -(libc::EAGAIN as i64) || res == EOPNOTSUPP
}

/// A syscall's result as the count or -errno, retried when a signal interrupted it.
fn retrying_eintr(call: impl Fn() -> isize) -> i64 {
    loop {
        let res = call();
        if res >= 0 {
            return res as i64;
        }
        let errno = last_errno();
        if errno != -(libc::EINTR as i64) {
            return errno;
        }
    }
}

/// `iov` must describe memory writable for its whole length (see preadv2_nowait).
fn preadv2(fd: i32, iov: &libc::iovec, offset: i64, flags: i32) -> i64 {
    // SAFETY: one iovec, which the caller's contract makes writable for iov_len bytes; the
    // kernel writes at most that, and only during the call.
    retrying_eintr(|| unsafe { libc::preadv2(fd, iov, 1, offset, flags) })
}

/// Each iovec must describe memory readable for its whole length (see Machine::write_direct).
fn pwritev2(fd: i32, iov: &[libc::iovec], offset: i64, flags: i32) -> i64 {
    // SAFETY: the slice's iovecs are readable (the caller's contract) and it has iov.len()
    // entries; the kernel reads them during the call only.
    retrying_eintr(|| unsafe { libc::pwritev2(fd, iov.as_ptr(), iov.len() as i32, offset, flags) })
}

/// preadv2 with RWF_NOWAIT. Files of procfs, sysfs and cgroupfs refuse that flag, but their
/// contents are generated in memory on read: they are read directly (the ring would hand each
/// read to an io-wq worker thread: 150 µs for /proc/self/status here, against 16 µs) unless
/// poll(2) says the read would wait, as /proc/kmsg's does with no message pending.
///
/// `ptr` must be valid for writes of `len` bytes (a prepared ReadTarget, a String made room
/// for, an IO's rbuf): every caller passes such memory, which nothing else touches meanwhile.
pub fn preadv2_nowait(fd: i32, ptr: *mut u8, len: usize, offset: i64) -> i64 {
    let iov = libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: len,
    };
    let res = preadv2(fd, &iov, offset, libc::RWF_NOWAIT);
    if res != EOPNOTSUPP || !is_generated_file(fd) || poll_now(fd, libc::POLLIN as u32) == 0 {
        return res;
    }
    preadv2(fd, &iov, offset, 0)
}

/// The f_type of the filesystem `fd` is on (statfs(2)), if fstatfs answers.
fn filesystem_type(fd: i32) -> Option<i64> {
    // SAFETY: statfs is plain old data: all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes one statfs into the local `st`; a bad fd is an error return.
    (unsafe { libc::fstatfs(fd, &mut st) } == 0).then_some(st.f_type as i64)
}

/// On procfs, sysfs or a cgroup filesystem.
fn is_generated_file(fd: i32) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    matches!(
        filesystem_type(fd),
        Some(PROC_SUPER_MAGIC | SYSFS_MAGIC | CGROUP_SUPER_MAGIC | CGROUP2_SUPER_MAGIC)
    )
}

impl Machine {
    /// One write attempt that does not wait for a peer: pwritev2 with RWF_NOWAIT, or for a
    /// page-cache file a plain write when it is small (see PAGE_CACHE_WRITE_MAX). `kind` is
    /// what fd_kinds says of `fd`. The count or -errno; EAGAIN/EOPNOTSUPP mean "use the ring".
    pub fn write_direct(&self, fd: i32, kind: FdKind, iov: &[libc::iovec], offset: i64) -> i64 {
        let small = iov.iter().map(|v| v.iov_len).sum::<usize>() <= PAGE_CACHE_WRITE_MAX;
        if kind == FdKind::PageCacheFile {
            if is_seekable(fd) {
                return if small {
                    pwritev2(fd, iov, offset, 0)
                } else {
                    EOPNOTSUPP
                };
            }
            self.with(|s| s.fd_kinds.set(fd, FdKind::Unknown));
        }
        let res = pwritev2(fd, iov, offset, libc::RWF_NOWAIT);
        if res != EOPNOTSUPP || !is_page_cache_file(fd) {
            return res;
        }
        self.with(|s| s.fd_kinds.set(fd, FdKind::PageCacheFile));
        if small {
            pwritev2(fd, iov, offset, 0)
        } else {
            res
        }
    }
}

/// Pipes, sockets and ttys are not (ESPIPE).
fn is_seekable(fd: i32) -> bool {
    // SAFETY: lseek(fd, 0, SEEK_CUR) only asks for the position; it moves nothing.
    unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) >= 0 }
}

/// A regular file on a local filesystem, not opened with O_DIRECT: its writes copy into the
/// page cache. (Ttys and other devices also refuse RWF_NOWAIT, and may block for as long as
/// they like; network and FUSE filesystems may wait on a server to fill a page.)
fn is_page_cache_file(fd: i32) -> bool {
    // SAFETY: stat is plain old data: all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one stat into the local `st`; a bad fd is an error return.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return false;
    }
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_DIRECT == 0 && !is_remote_filesystem(fd)
}

fn is_remote_filesystem(fd: i32) -> bool {
    const REMOTE: [i64; 11] = [
        0x6969,      // NFS
        0x517b,      // SMB
        0xff53_4d42, // CIFS
        0xfe53_4d42, // SMB2
        0x6573_5546, // FUSE
        0x00c3_6400, // Ceph
        0x5346_414f, // AFS
        0x6b41_4653, // kAFS
        0x0102_1997, // 9P
        0x0116_1970, // GFS2
        0x7461_636f, // OCFS2
    ];
    // Unknown counts as remote: the ring is the safe side.
    filesystem_type(fd).is_none_or(|f_type| REMOTE.contains(&f_type))
}
