//! Sockets. accept and connect wait in the ring; socket, bind, listen and shutdown never
//! block, so they are plain syscalls.
use std::net::{SocketAddr, ToSocketAddrs};

use io_uring::{opcode, types};
use magnus::{Error, Value};

use crate::machine::Machine;
use crate::ring::op::Owned;
use crate::ruby::args::{arg, arity, int_or};
use crate::ruby::fd::fd_arg;
use crate::ruby::value::{self as rb, int, last_errno, raw, NIL};

/// The address for `host`:`port` in the socket's own address family.
fn socket_address(fd: i32, host: Value, port: Value) -> Result<(libc::sockaddr_storage, libc::socklen_t), Error> {
    let host: String = magnus::TryConvert::try_convert(host)?;
    let port = rb::int_arg(raw(port), "port", 0, 65535)? as u16;
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_DOMAIN writes one c_int into `domain`, a local whose size `len` gives.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            &mut domain as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if ok < 0 {
        return Err(rb::errno_error(-last_errno() as i32, "getsockopt(SO_DOMAIN)"));
    }
    let candidates = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| rb::errno_error(e.raw_os_error().unwrap_or(libc::EINVAL), &format!("resolving {host}")))?;
    let addr = candidates
        .into_iter()
        .find(|a| (a.is_ipv4() && domain == libc::AF_INET) || (a.is_ipv6() && domain == libc::AF_INET6))
        .ok_or_else(|| {
            rb::errno_error(
                libc::EAFNOSUPPORT,
                &format!("no address of {host} fits the socket's family"),
            )
        })?;
    Ok(to_sockaddr(addr))
}

pub(crate) fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data: all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr (that is
            // its purpose), so a sockaddr_in fits at its start.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for a sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn syscall_result(res: i32, what: &str) -> Result<Value, Error> {
    if res < 0 {
        Err(rb::errno_error(-last_errno() as i32, what))
    } else {
        Ok(rb::value(int(res as i64)))
    }
}

impl Machine {
    /// accept(io) → the new connection's fd (close-on-exec).
    pub fn rb_accept(&self, io: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        let res = self.run_fd_op(
            fd,
            |_| {
                opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
            },
            opcode::Accept::CODE,
            NIL,
        )?;
        rb::check(res as i64, "accept").map(|n| rb::value(int(n)))
    }

    /// connect(io, host, port): host is an IPv4/IPv6 address or a name (resolved blocking).
    pub fn rb_connect(&self, io: Value, host: Value, port: Value) -> Result<Value, Error> {
        self.check_owner()?;
        let fd = fd_arg(raw(io))?;
        let addr = Box::new(socket_address(fd, host, port)?);
        let res = self.run_fd_op(
            fd,
            |slot| {
                let sqe =
                    opcode::Connect::new(types::Fd(fd), &addr.0 as *const _ as *const libc::sockaddr, addr.1).build();
                slot.owned = Owned::SockAddr(addr);
                sqe
            },
            opcode::Connect::CODE,
            NIL,
        )?;
        rb::check(res as i64, "connect").map(|n| rb::value(int(n)))
    }

    /// socket(domain, type, protocol = 0) → fd (close-on-exec).
    pub fn rb_socket(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 2, 3)?;
        let domain = rb::int_arg(arg(args, 0), "domain", 0, i32::MAX as i64)? as i32;
        let kind = rb::int_arg(arg(args, 1), "type", 0, i32::MAX as i64)? as i32;
        let protocol = int_or(arg(args, 2), 0, "protocol", 0, i32::MAX as i64)? as i32;
        syscall_result(
            // SAFETY: socket takes three integers and returns a new fd (or -1).
            unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) },
            "socket",
        )
    }

    pub fn rb_bind(&self, io: Value, host: Value, port: Value) -> Result<Value, Error> {
        let fd = fd_arg(raw(io))?;
        let (addr, len) = socket_address(fd, host, port)?;
        syscall_result(
            // SAFETY: `addr` holds a sockaddr of `len` bytes (socket_address), a local that
            // outlives the call.
            unsafe { libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len) },
            "bind",
        )
    }

    pub fn rb_listen(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 1, 2)?;
        let fd = fd_arg(arg(args, 0))?;
        let backlog = int_or(arg(args, 1), libc::SOMAXCONN as i64, "backlog", 0, i32::MAX as i64)? as i32;
        // SAFETY: listen takes two integers; a bad fd is an error return.
        syscall_result(unsafe { libc::listen(fd, backlog) }, "listen")
    }

    /// shutdown(io, how = Socket::SHUT_RDWR).
    pub fn rb_shutdown(&self, args: &[Value]) -> Result<Value, Error> {
        arity(args, 1, 2)?;
        let fd = fd_arg(arg(args, 0))?;
        let how = int_or(arg(args, 1), libc::SHUT_RDWR as i64, "how", 0, 2)? as i32;
        // SAFETY: shutdown takes two integers; a bad fd is an error return.
        syscall_result(unsafe { libc::shutdown(fd, how) }, "shutdown")
    }
}
