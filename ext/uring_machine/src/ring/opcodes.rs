//! io_uring opcode numbers and the lowercase names `metrics` reports them under.
use io_uring::opcode;

pub const NAMES: &[(u8, &str)] = &[
    (opcode::Nop::CODE, "nop"),
    (opcode::Readv::CODE, "readv"),
    (opcode::Writev::CODE, "writev"),
    (opcode::Fsync::CODE, "fsync"),
    (opcode::ReadFixed::CODE, "read_fixed"),
    (opcode::WriteFixed::CODE, "write_fixed"),
    (opcode::PollAdd::CODE, "poll_add"),
    (opcode::Timeout::CODE, "timeout"),
    (opcode::Accept::CODE, "accept"),
    (opcode::AsyncCancel::CODE, "async_cancel"),
    (opcode::Connect::CODE, "connect"),
    (opcode::OpenAt::CODE, "openat"),
    (opcode::Close::CODE, "close"),
    (opcode::Statx::CODE, "statx"),
    (opcode::Read::CODE, "read"),
    (opcode::Write::CODE, "write"),
    (opcode::Send::CODE, "send"),
    (opcode::Recv::CODE, "recv"),
    (opcode::Splice::CODE, "splice"),
    (opcode::Tee::CODE, "tee"),
    (opcode::Shutdown::CODE, "shutdown"),
    (opcode::Socket::CODE, "socket"),
    (opcode::ReadMulti::CODE, "read_multishot"),
    (opcode::WaitId::CODE, "waitid"),
    (opcode::Bind::CODE, "bind"),
    (opcode::Listen::CODE, "listen"),
];

pub fn opcode_name(code: u8) -> &'static str {
    NAMES.iter().find(|(c, _)| *c == code).map_or("other", |(_, n)| n)
}
