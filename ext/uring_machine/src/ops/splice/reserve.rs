//! Blocks reserved ahead of a long file to file copy on ext4. There copy_file_range copies the
//! pages (no reflink), and each write into new space pays for ext4's delayed allocation, block
//! by block; with the copy's whole range allocated first (fallocate, FALLOC_FL_KEEP_SIZE: the
//! size still grows only as bytes land) the 256 MiB copy of benchmark/copy_stream.rb took 0.90x
//! the time. Only ext4: a filesystem that shares blocks (btrfs, XFS) would allocate blocks the
//! copy then drops, and tmpfs measured no faster.
use super::Plan;

/// ext2/3/4's superblock magic (statfs's f_type).
const EXT4_SUPER_MAGIC: i64 = 0xEF53;

/// A range past the destination's end allocated ahead of the copy, released should the copy
/// end before filling it.
pub(super) struct Reservation {
    fd: i32,
    /// Where the destination's end will be once the copy wrote all it expected.
    end: i64,
}

impl Reservation {
    /// Reserves what is left of `plan` after `done` bytes, from the destination's position;
    /// None where nothing is reserved (another filesystem, an unknown length, a refusal).
    pub(super) fn make(plan: Plan, done: u64) -> Option<Reservation> {
        let left = plan.more.expected?.checked_sub(done).filter(|&l| l > 0)?;
        let fd = plan.dst.fd;
        // SAFETY: statfs is plain old data: all zeroes is a valid value.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: fstatfs writes one statfs into the local `fs`.
        if unsafe { libc::fstatfs(fd, &mut fs) } < 0 || fs.f_type as i64 != EXT4_SUPER_MAGIC {
            return None;
        }
        // SAFETY: lseek(fd, 0, SEEK_CUR) only asks for the position.
        let start = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
        let left = i64::try_from(left).ok()?;
        let end = start.checked_add(left)?;
        // SAFETY: integers only; KEEP_SIZE allocates blocks and leaves the size and the bytes
        // before it alone. A refusal (no space, quota) leaves the copy as it was.
        (start >= 0 && unsafe { libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, start, left) } == 0)
            .then_some(Reservation { fd, end })
    }

    /// Once the copy ended: if it ended early, the blocks reserved past the destination's end
    /// are freed (ext4 truncates what lies past the end even to the same size), unless the end
    /// is no longer where the copy left it (something else wrote there).
    pub(super) fn release_unused(&self) {
        // SAFETY: lseek(fd, 0, SEEK_CUR) only asks for the position.
        let written_end = unsafe { libc::lseek(self.fd, 0, libc::SEEK_CUR) };
        if written_end < 0 || written_end >= self.end {
            return;
        }
        // SAFETY: stat is plain old data: all zeroes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one stat into the local `st`.
        if unsafe { libc::fstat(self.fd, &mut st) } < 0 {
            return;
        }
        if st.st_size == written_end {
            // SAFETY: integers only; the size is the one the file has: no byte is cut.
            unsafe { libc::ftruncate(self.fd, written_end) };
        }
    }
}
