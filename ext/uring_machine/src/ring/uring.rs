//! One io_uring instance: set up with the best flags this kernel accepts, an opcode probe,
//! SQE pushes that report a full queue (the caller flushes), and raw `io_uring_enter` calls
//! that are safe to make without the GVL. Its memory is not inherited by forked children, its
//! fd is closed in them (private_fds.rs), and it can be closed before it is dropped: a ring that
//! is closed or inherited takes nothing and gives nothing.
use std::io;
use std::mem::ManuallyDrop;

use io_uring::{cqueue, squeue, IoUring, Probe};

pub const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;

pub struct Ring {
    /// Dropped by `close`, once; never touched after that, nor in a forked child.
    uring: ManuallyDrop<IoUring>,
    /// The ring's descriptor, listed with the private ones (a forked child closes it).
    fd: i32,
    /// False once closed.
    open: bool,
    /// The fork generation the ring was made in (private_fds.rs).
    generation: u64,
    /// The thread that registered the ring fd (see `register_ring_fd`), if it did.
    registered_by: Option<libc::pid_t>,
    enter_fd: i32,
    enter_flags: u32,
    probe: Probe,
    pub setup_flags: &'static str,
}

/// A completion copied out of the CQ so that handling it never borrows the ring.
#[derive(Clone, Copy)]
pub struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

type Setup = (&'static str, fn(&mut io_uring::Builder));

fn setups(single_issuer: bool) -> Vec<Setup> {
    let mut list: Vec<Setup> = Vec::new();
    if single_issuer {
        list.push(("single_issuer+defer_taskrun", |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_coop_taskrun()
                .setup_taskrun_flag();
        }));
    }
    list.push(("coop_taskrun", |b| {
        b.setup_coop_taskrun().setup_taskrun_flag();
    }));
    list.push(("plain", |_| {}));
    list
}

impl Ring {
    /// `single_issuer` must be false when the owning Ruby thread may move between native
    /// threads (M:N threads), which SINGLE_ISSUER would punish with EEXIST.
    pub fn new(entries: u32, single_issuer: bool) -> io::Result<Ring> {
        let mut entries = entries.clamp(8, 32768).next_power_of_two();
        loop {
            // Without the child's copy of its memory if the kernel lets us (MADV_DONTFORK): a
            // child then cannot scribble on the parent's queues, and nothing there to unmap.
            let ring = Self::try_setups(entries, single_issuer, true)
                .or_else(|_| Self::try_setups(entries, single_issuer, false));
            match ring {
                Ok(ring) => return Ok(ring),
                // Locked-memory limits bite big rings first: retry smaller before giving up.
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && entries > 64 => entries /= 4,
                Err(e) => return Err(e),
            }
        }
    }

    fn try_setups(entries: u32, single_issuer: bool, dontfork: bool) -> io::Result<Ring> {
        let mut last = io::Error::from_raw_os_error(libc::EINVAL);
        for (name, apply) in setups(single_issuer) {
            let mut builder = IoUring::builder();
            apply(&mut builder);
            builder.setup_cqsize(entries * 2).setup_clamp();
            if dontfork {
                builder.dontfork();
            }
            match builder.build(entries) {
                Ok(uring) => return Self::finish(uring, name),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn finish(uring: IoUring, setup_flags: &'static str) -> io::Result<Ring> {
        let mut probe = Probe::new();
        uring.submitter().register_probe(&mut probe)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&uring);
        let (enter_fd, enter_flags, registered_by) = match register_ring_fd(&uring) {
            // SAFETY: gettid has no preconditions.
            Some(index) => (index, IORING_ENTER_REGISTERED_RING, Some(unsafe { libc::gettid() })),
            None => (fd, 0, None),
        };
        crate::ring::private_fds::track(fd);
        Ok(Ring {
            uring: ManuallyDrop::new(uring),
            fd,
            open: true,
            generation: crate::ring::private_fds::generation(),
            registered_by,
            enter_fd,
            enter_flags,
            probe,
            setup_flags,
        })
    }

    /// The ring's descriptor (for gdb, which reads its /proc fdinfo).
    pub fn fd(&self) -> i32 {
        self.fd
    }

    pub fn supports(&self, opcode: u8) -> bool {
        self.probe.is_supported(opcode)
    }

    /// Whether the ring may be used: not closed, and made in this process.
    pub fn is_live(&self) -> bool {
        self.open && self.generation == crate::ring::private_fds::generation()
    }

    /// Queues one SQE; false when the SQ is full (flush with `enter`, then push again). A ring
    /// that is not live drops it (its owner refuses ops before they get here).
    pub fn try_push(&mut self, sqe: &squeue::Entry) -> bool {
        if !self.is_live() {
            return true;
        }
        // SAFETY: the memory an SQE names stays valid until its last CQE: every op keeps it in
        // its slot (pinned Ruby objects, boxed timespecs, sockaddrs, iovecs, paths; see
        // ring/op.rs), or in the frame of a fiber that waits for the CQE before it returns
        // (await_op drains even an interrupted op), and a dropped machine cancels and drains
        // its ops before freeing them.
        unsafe { self.uring.submission().push(sqe).is_ok() }
    }

    pub fn pending_sqes(&mut self) -> u32 {
        if !self.is_live() {
            return 0;
        }
        self.uring.submission().len() as u32
    }

    /// The arguments for an `io_uring_enter` that submits everything queued and, when
    /// `min_complete` > 0, waits for that many completions.
    pub fn enter_args(&mut self, min_complete: u32) -> EnterArgs {
        EnterArgs {
            // A ring that is not live: no enter reaches it (the call fails).
            fd: if self.is_live() { self.enter_fd } else { -1 },
            to_submit: self.pending_sqes(),
            min_complete,
            flags: self.enter_flags | IORING_ENTER_GETEVENTS,
            result: 0,
        }
    }

    /// Copies out every available completion.
    pub fn drain_completions(&mut self, into: &mut Vec<Completion>) {
        if !self.is_live() {
            return;
        }
        for cqe in self.uring.completion() {
            into.push(Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            });
        }
    }

    /// For registrations; EBADF once the ring is not live.
    pub fn submitter(&self) -> io::Result<io_uring::Submitter<'_>> {
        if !self.is_live() {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        Ok(self.uring.submitter())
    }

    /// Closes the ring now (its owner's thread is ending), or, in a forked child, only forgets
    /// it: the child closed its fd when it started, and its memory was not copied there (or
    /// stays mapped until the child exits or execs). What is still in flight is the caller's
    /// to cancel and drain first. Idempotent.
    pub fn close(&mut self) {
        if !std::mem::replace(&mut self.open, false) {
            return;
        }
        if self.generation != crate::ring::private_fds::generation() {
            return;
        }
        // SAFETY: gettid has no preconditions.
        if self.registered_by == Some(unsafe { libc::gettid() }) {
            unregister_ring_fd(&self.uring, self.enter_fd);
        }
        crate::ring::private_fds::untrack(self.fd);
        // SAFETY: `open` was true, so this is the only drop, and every method checks `open`
        // before it touches the ring again.
        unsafe { ManuallyDrop::drop(&mut self.uring) };
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.close();
    }
}

/// One `io_uring_rsrc_update`: a slot of the calling thread's registered-ring-fd table.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// `io_uring_register(opcode)` on the ring-fd table with one `update`; the kernel's return.
fn update_ring_fds(uring: &IoUring, opcode: u32, update: &mut RsrcUpdate) -> libc::c_long {
    // SAFETY: both ring-fd opcodes read (register also writes) one io_uring_rsrc_update
    // (RsrcUpdate has its layout: u32, u32, u64) through a pointer to the caller's value, which
    // outlives the call; the fd is the ring's own.
    unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            std::os::fd::AsRawFd::as_raw_fd(uring),
            opcode,
            update as *mut RsrcUpdate,
            1u32,
        )
    }
}

/// Registers the ring's own fd (5.18+) so each enter skips the fd lookup; None where refused.
fn register_ring_fd(uring: &IoUring) -> Option<i32> {
    const IORING_REGISTER_RING_FDS: u32 = 20;
    let mut update = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: std::os::fd::AsRawFd::as_raw_fd(uring) as u64,
    };
    let ret = update_ring_fds(uring, IORING_REGISTER_RING_FDS, &mut update);
    (ret == 1).then_some(update.offset as i32)
}

/// Frees the slot `register_ring_fd` took in the calling thread's table (16 slots per thread):
/// otherwise it would hold the closed ring in the kernel until the thread exits.
fn unregister_ring_fd(uring: &IoUring, index: i32) {
    const IORING_UNREGISTER_RING_FDS: u32 = 21;
    let mut update = RsrcUpdate {
        offset: index as u32,
        resv: 0,
        data: 0,
    };
    update_ring_fds(uring, IORING_UNREGISTER_RING_FDS, &mut update);
}

pub fn has_more(flags: u32) -> bool {
    cqueue::more(flags)
}

pub fn buffer_id(flags: u32) -> Option<u16> {
    cqueue::buffer_select(flags)
}

/// One raw `io_uring_enter`; plain data, so it can run while the GVL is released.
#[repr(C)]
pub struct EnterArgs {
    pub fd: i32,
    pub to_submit: u32,
    pub min_complete: u32,
    pub flags: u32,
    pub result: i64,
}

impl EnterArgs {
    pub fn enter(&mut self) {
        let mask = (self.min_complete > 0).then(mask_while_waiting);
        let (mask_ptr, mask_size) = match &mask {
            Some(set) => (set as *const libc::sigset_t, KERNEL_SIGSET_SIZE),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: io_uring_enter on this ring's fd (or its registered index, with the flag
        // saying so) touches only the ring's own mappings; the signal mask is a local (or null
        // with size 0) that outlives the call, KERNEL_SIGSET_SIZE bytes of it read. Callable
        // without the GVL: no Ruby object is involved.
        self.result = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.fd,
                self.to_submit,
                self.min_complete,
                self.flags,
                mask_ptr,
                mask_size,
            )
        };
        if self.result < 0 {
            self.result = -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64);
        }
    }
}

/// The kernel's sigset_t is 64 bits (glibc's is larger): io_uring_enter wants that size.
const KERNEL_SIGSET_SIZE: usize = 8;

/// The signal mask while the ring waits: the thread's own plus SIGVTALRM. Ruby 3.1 wakes a
/// thread blocked in a syscall (Thread#kill, Thread#raise) with SIGVTALRM, and when that first
/// signal comes just before the syscall starts it re-sends it from a process-wide timer. The
/// kernel hands a process-wide signal to the main thread first: a main thread waiting here
/// would swallow every retry and the other thread would sleep on (CRuby's own waits pass them
/// on; this wait cannot). Blocked here, the retries reach the thread that needs them. Nothing
/// is lost: our wait is woken through its eventfd, and a SIGVTALRM pending for this thread
/// runs its handler once the wait returns.
fn mask_while_waiting() -> libc::sigset_t {
    // SAFETY: `set` is a zeroed local sigset_t; pthread_sigmask with a null new set only reads
    // the thread's mask into it, and sigaddset sets one bit of it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
        libc::sigaddset(&mut set, libc::SIGVTALRM);
        set
    }
}
