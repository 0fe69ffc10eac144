//! The DNS server's UDP datagrams (lib/uring_machine/dns/server.rb): each received and its
//! question read in one call, each reply sent in one, with a direct syscall while the socket
//! has data (or room), a poll in the ring when it has not.
use std::cell::RefCell;

use io_uring::opcode;
use magnus::{Error, RString, Value};

use crate::machine::Machine;
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, int, last_errno, raw};

use super::reply::plain_question;

/// The largest datagram (a DNS message over UDP is at most 65,535 bytes).
const MAX_DATAGRAM: usize = 65_535;

thread_local! {
    /// Where datagrams land before they are copied into a String of their size: one per
    /// thread (a thread's machine runs one fiber at a time, and no Ruby code runs while it is
    /// borrowed).
    static DATAGRAM: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

impl Machine {
    /// __dns_receive__(udp_socket) → [packet, sender, name, type]: the next datagram, the
    /// sender as a packed sockaddr, and the name and type code of its question when it is a
    /// plain query (reply.rs, plain_question), else nil and nil. Waits in the ring while none
    /// is there; a close of the socket raises IOError; other errors raise their Errno.
    pub fn rb_dns_receive(&self, io: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        loop {
            let received = DATAGRAM.with(|buffer| -> Result<Option<Value>, Error> {
                let mut buffer = buffer.borrow_mut();
                // SAFETY: sockaddr_storage is plain old data: all zeroes is a valid value.
                let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                let mut from_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                // SAFETY: the buffer has room for MAX_DATAGRAM bytes and `from` for any
                // address (its length in `from_len`); MSG_DONTWAIT: written during the call only.
                let n = unsafe {
                    libc::recvfrom(
                        fd,
                        buffer.as_mut_ptr() as *mut libc::c_void,
                        MAX_DATAGRAM,
                        libc::MSG_DONTWAIT,
                        &mut from as *mut _ as *mut libc::sockaddr,
                        &mut from_len,
                    )
                };
                if n < 0 {
                    let errno = -last_errno();
                    if errno == libc::EAGAIN as i64 || errno == libc::EINTR as i64 {
                        return Ok(None);
                    }
                    return Err(rb::errno_error(errno as i32, "recvfrom"));
                }
                self.count_direct(opcode::RecvMsg::CODE);
                let packet = &buffer[..n as usize];
                // SAFETY: recvfrom wrote `from_len` bytes of address into `from` (at most its size).
                let sender = unsafe {
                    std::slice::from_raw_parts(
                        &from as *const _ as *const u8,
                        (from_len as usize).min(std::mem::size_of::<libc::sockaddr_storage>()),
                    )
                };
                let list = rb::ary_new_capa(4)?;
                rb::ary_push(list, rb::bytes_new(packet)?)?;
                rb::ary_push(list, rb::bytes_new(sender)?)?;
                match plain_question(packet) {
                    Some((name, qtype)) => {
                        rb::ary_push(list, rb::bytes_new(&name)?)?;
                        rb::ary_push(list, int(i64::from(qtype)))?;
                    }
                    None => {
                        rb::ary_push(list, rb::NIL)?;
                        rb::ary_push(list, rb::NIL)?;
                    }
                }
                Ok(Some(rb::value(list)))
            })?;
            if let Some(list) = received {
                return Ok(list);
            }
            let polled = self.poll_fd(fd, libc::POLLIN as u32)?;
            if polled < 0 {
                return Err(rb::errno_error(-polled, "poll"));
            }
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
        // SAFETY: sockaddr_storage is plain old data: all zeroes is a valid value.
        let mut to: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let to_len = {
            // SAFETY: copied at once, with no Ruby call in between.
            let given = unsafe { sender.as_slice() };
            if given.len() < std::mem::size_of::<libc::sa_family_t>() || given.len() > std::mem::size_of_val(&to) {
                return Err(rb::arg_error("sender must be a packed sockaddr"));
            }
            // SAFETY: `given` fits in `to` (checked above); the regions are distinct.
            unsafe { std::ptr::copy_nonoverlapping(given.as_ptr(), &mut to as *mut _ as *mut u8, given.len()) };
            given.len() as libc::socklen_t
        };
        loop {
            // SAFETY: the String's bytes are read during the call only (MSG_DONTWAIT), with no
            // Ruby call in between; `to` holds `to_len` bytes of address.
            let n = unsafe {
                let data = bytes.as_slice();
                libc::sendto(
                    fd,
                    data.as_ptr() as *const libc::c_void,
                    data.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    &to as *const _ as *const libc::sockaddr,
                    to_len,
                )
            };
            if n >= 0 {
                self.count_direct(opcode::SendMsg::CODE);
                return Ok(rb::value(rb::TRUE));
            }
            let errno = -last_errno() as i32;
            if errno == libc::EBADF {
                return Err(rb::io_error("closed stream"));
            }
            if errno != libc::EAGAIN && errno != libc::EINTR {
                return Ok(rb::value(int(i64::from(errno))));
            }
            if errno == libc::EAGAIN {
                let polled = self.poll_fd(fd, libc::POLLOUT as u32)?;
                if polled < 0 {
                    return Ok(rb::value(int(i64::from(-polled))));
                }
            }
        }
    }
}

fn string(v: Value, what: &str) -> Result<RString, Error> {
    if !rb::is_string(raw(v)) {
        return Err(rb::type_error(format!("{what} must be a String")));
    }
    magnus::TryConvert::try_convert(v)
}
