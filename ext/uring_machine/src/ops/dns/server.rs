//! The DNS server's UDP datagrams (lib/uring_machine/dns/server.rb): each received and its
//! question read in one call, each reply sent in one, with a direct syscall while the socket
//! has data (or room), a poll in the ring when it has not.
use std::cell::RefCell;

use io_uring::opcode;
use magnus::{Error, RString, Value};

use crate::machine::Machine;
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, int, last_errno, raw};

use super::reply::{ivars, limit_arg, string_slice, transaction, transaction_reply, Field};

/// The largest datagram (a DNS message over UDP is at most 65,535 bytes).
const MAX_DATAGRAM: usize = 65_535;

thread_local! {
    /// Where datagrams land before they are copied into a String of their size: one per
    /// thread (a thread's machine runs one fiber at a time, and no Ruby code runs while it is
    /// borrowed).
    static DATAGRAM: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

impl Machine {
    /// __dns_receive__(udp_socket, transaction_class) → the next datagram: a Transaction
    /// (reply.rs, transaction) when it is a plain query, else [packet, sender] (the sender a
    /// packed sockaddr) for the Ruby server to decode. Waits in the ring while none is there;
    /// a close of the socket raises IOError; other errors raise their Errno.
    pub fn rb_dns_receive(&self, io: Value, class: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        let class: magnus::RClass = magnus::TryConvert::try_convert(class)?;
        loop {
            let received = DATAGRAM.with(|buffer| -> Result<Option<Value>, Error> {
                let Ok(mut buffer) = buffer.try_borrow_mut() else {
                    return Err(rb::exception(
                        rb::ruby().exception_runtime_error(),
                        "DNS datagram buffer in use",
                    ));
                };
                let Some((length, from, from_len)) = receive_datagram(fd, &mut buffer)? else {
                    return Ok(None);
                };
                self.count_direct(opcode::Recv::CODE);
                // SAFETY: recvfrom wrote `from_len` bytes of address into `from` (at most its size).
                let sender = unsafe { std::slice::from_raw_parts(&from as *const _ as *const u8, from_len) };
                let udp = crate::ruby::names::symbol(ivars().udp);
                let made = transaction(raw(class), Field::Raw(&buffer[..length]), Field::Raw(sender), udp, pair)?;
                Ok(Some(rb::value(made)))
            })?;
            if let Some(made) = received {
                return Ok(made);
            }
            let polled = self.poll_fd(fd, libc::POLLIN as u32)?;
            if polled < 0 {
                return Err(rb::errno_error(-polled, "poll"));
            }
        }
    }

    /// __dns_reply_to__(udp_socket, transaction, limit) → sends the reply to a Transaction
    /// that __dns_receive__ made (reply.rs, transaction_reply) to its sender: true, :truncated
    /// (cut to `limit` bytes, TC set), nil when Ruby must encode it (nothing was sent), or the
    /// errno Integer that lost the datagram.
    pub fn rb_dns_reply_to(&self, io: Value, transaction: Value, limit: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        let Some((bytes, truncated)) = transaction_reply(raw(transaction), limit_arg(raw(limit))?)? else {
            return Ok(rb::value(rb::NIL));
        };
        let sender = rb::ivar_get(raw(transaction), ivars().sender);
        if !rb::is_string(sender) {
            return Err(rb::type_error("the transaction has no UDP sender"));
        }
        // SAFETY: `sender` is a String, read at once.
        match self.send_datagram(fd, &bytes, unsafe { string_slice(sender) })? {
            Some(errno) => Ok(rb::value(int(i64::from(errno)))),
            None if truncated => rb::symbol("truncated").map(rb::value),
            None => Ok(rb::value(rb::TRUE)),
        }
    }

    /// __dns_send_to__(udp_socket, bytes, sender) → true once the datagram is sent to the
    /// packed sockaddr `sender`, or the errno Integer that lost it (the client's address
    /// unreachable, ...). Waits in the ring while the socket has no room; a close of the
    /// socket raises IOError.
    pub fn rb_dns_send_to(&self, io: Value, bytes: Value, sender: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        let bytes: RString = string(bytes, "bytes")?;
        let sender: RString = string(sender, "sender")?;
        // SAFETY: both are copied at once, with no Ruby call in between.
        let (bytes, sender) = unsafe { (bytes.as_slice().to_vec(), sender.as_slice().to_vec()) };
        Ok(rb::value(match self.send_datagram(fd, &bytes, &sender)? {
            Some(errno) => int(i64::from(errno)),
            None => rb::TRUE,
        }))
    }

    /// Sends `bytes` to the packed sockaddr `sender`: None, or the errno that lost the
    /// datagram. Waits in the ring while the socket has no room; a close raises IOError.
    fn send_datagram(&self, fd: i32, bytes: &[u8], sender: &[u8]) -> Result<Option<i32>, Error> {
        // SAFETY: sockaddr_storage is plain old data: all zeroes is a valid value.
        let mut to: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        if sender.len() < std::mem::size_of::<libc::sa_family_t>() || sender.len() > std::mem::size_of_val(&to) {
            return Err(rb::arg_error("sender must be a packed sockaddr"));
        }
        // SAFETY: `sender` fits in `to` (checked above); the regions are distinct.
        unsafe { std::ptr::copy_nonoverlapping(sender.as_ptr(), &mut to as *mut _ as *mut u8, sender.len()) };
        loop {
            // SAFETY: `bytes` is readable for its length and `to` holds `sender.len()` bytes of
            // address; MSG_DONTWAIT: both are read during the call only.
            let n = unsafe {
                libc::sendto(
                    fd,
                    bytes.as_ptr() as *const libc::c_void,
                    bytes.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    &to as *const _ as *const libc::sockaddr,
                    sender.len() as libc::socklen_t,
                )
            };
            if n >= 0 {
                self.count_direct(opcode::Send::CODE);
                return Ok(None);
            }
            match -last_errno() as i32 {
                libc::EBADF => return Err(rb::io_error("closed stream")),
                libc::EINTR => {}
                libc::EAGAIN => {
                    let polled = self.poll_fd(fd, libc::POLLOUT as u32)?;
                    if polled < 0 {
                        return Ok(Some(-polled));
                    }
                }
                errno => return Ok(Some(errno)),
            }
        }
    }
}

/// Receives the next datagram on `fd` into `buffer`: its length, the sender's address and
/// that address's length; None when none is there.
fn receive_datagram(fd: i32, buffer: &mut [u8]) -> Result<Option<(usize, libc::sockaddr_storage, usize)>, Error> {
    // SAFETY: sockaddr_storage is plain old data: all zeroes is a valid value.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut from_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buffer` has room for its length and `from` for any address (its length in
    // `from_len`); MSG_DONTWAIT: written during the call only.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buffer.as_mut_ptr() as *mut libc::c_void,
            buffer.len(),
            libc::MSG_DONTWAIT,
            &mut from as *mut _ as *mut libc::sockaddr,
            &mut from_len,
        )
    };
    if n < 0 {
        return match -last_errno() as i32 {
            libc::EAGAIN | libc::EINTR => Ok(None),
            errno => Err(rb::errno_error(errno, "recvfrom")),
        };
    }
    let from_len = (from_len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    Ok(Some((n as usize, from, from_len)))
}

/// [packet, sender]: a datagram that is not a plain query, for Ruby to decode.
///
/// # Safety
/// Under protect (transaction's): allocating may raise NoMemoryError.
unsafe fn pair(packet: rb_sys::VALUE, sender: rb_sys::VALUE) -> rb_sys::VALUE {
    // SAFETY: the caller's contract.
    unsafe {
        let pair = rb_sys::rb_ary_new_capa(2);
        rb_sys::rb_ary_push(pair, packet);
        rb_sys::rb_ary_push(pair, sender);
        pair
    }
}

fn string(v: Value, what: &str) -> Result<RString, Error> {
    if !rb::is_string(raw(v)) {
        return Err(rb::type_error(format!("{what} must be a String")));
    }
    magnus::TryConvert::try_convert(v)
}
