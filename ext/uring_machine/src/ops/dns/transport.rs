//! One exchange with one nameserver: every question's query on one connected UDP socket (the
//! kernel drops datagrams from any other address; Linux picks a random source port), each with
//! a random id, their sends and recvs and the deadline's timer submitted together as one op
//! group, so A and AAAA are in flight at once. A reply counts only if it matches its query
//! (id, QR, opcode, question); anything else is dropped and the wait goes on. A truncated
//! reply (TC) is asked again over TCP (RFC 1035 length prefix), with a fresh timeout.
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use io_uring::{opcode, types};
use magnus::Error;

use crate::machine::op_group::{Completed, OpGroup};
use crate::machine::Machine;
use crate::ops::dns::wire::{Came, Checked, Question};
use crate::ops::dns::IdleSockets;
use crate::ops::net::to_sockaddr;
use crate::ring::op::{OpId, Owned};
use crate::ruby::value as rb;

/// RFC 1035's limit for a UDP message: our queries carry no EDNS, so no server sends more
/// without setting TC; a longer datagram (MSG_TRUNC tells its length) counts as truncated.
/// Small, so the buffers come from malloc's fast bins.
const UDP_REPLY: usize = 512;
const MAX_TCP: usize = 2 + 65_535;

/// How a question fared with the server.
pub enum Outcome {
    /// No reply before the deadline.
    Silent,
    /// A socket error (ECONNREFUSED: nothing listens there).
    Errno(i32),
    /// The server broke the protocol (a TCP connection closed mid-reply).
    Failed(String),
    Reply(Vec<u8>, Message),
}

/// A descriptor of ours, closed when dropped (a private UDP or TCP socket never blocks in
/// close: a plain syscall).
struct Socket(i32);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours alone (made by `Socket::open`), closed only here.
        unsafe { libc::close(self.0) };
    }
}

impl Socket {
    /// The descriptor, no longer closed by this Socket.
    fn into_raw(self) -> i32 {
        let fd = self.0;
        std::mem::forget(self);
        fd
    }

    /// A socket of `kind` for `server`'s family; connected (a syscall, which never waits for
    /// a datagram socket) when `connect`. Err: the errno.
    fn open(server: &SocketAddr, kind: i32, connect: bool) -> Result<Socket, i32> {
        let family = if server.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: socket takes three integers and returns a new descriptor or -1.
        let fd = unsafe { libc::socket(family, kind | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(rb::last_errno() as i32);
        }
        let socket = Socket(fd);
        if connect {
            let (addr, len) = to_sockaddr(*server);
            // SAFETY: `addr` holds a sockaddr of `len` bytes, a local that outlives the call.
            if unsafe { libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len) } < 0 {
                return Err(rb::last_errno() as i32);
            }
        }
        Ok(socket)
    }
}

thread_local! {
    /// Random bytes for query ids, from getrandom(2) 256 at a time.
    static RANDOM: RefCell<(usize, [u8; 256])> = const { RefCell::new((256, [0; 256])) };
}

/// An unpredictable 16-bit query id.
fn random_id() -> Result<u16, Error> {
    RANDOM.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.0 + 2 > pool.1.len() {
            let buffer = &mut pool.1;
            // SAFETY: getrandom writes at most `buffer.len()` bytes into `buffer`, ours.
            let n = unsafe { libc::getrandom(buffer.as_mut_ptr() as *mut libc::c_void, buffer.len(), 0) };
            if n != buffer.len() as isize {
                return Err(rb::errno_error(rb::last_errno() as i32, "getrandom"));
            }
            pool.0 = 0;
        }
        let at = pool.0;
        pool.0 += 2;
        Ok(u16::from_ne_bytes([pool.1[at], pool.1[at + 1]]))
    })
}

/// A recv op of up to `capacity` bytes into a buffer the op owns.
fn submit_recv(group: &mut OpGroup, fd: i32, capacity: usize, flags: i32) -> OpId {
    let mut buffer: Vec<u8> = Vec::with_capacity(capacity);
    let ptr = buffer.as_mut_ptr();
    group.submit(opcode::Recv::CODE, true, |slot| {
        slot.owned = Owned::Bytes(buffer); // the heap block does not move with the Vec
        opcode::Recv::new(types::Fd(fd), ptr, capacity as u32)
            .flags(flags)
            .build()
    })
}

/// A send op of `bytes`, which the op owns; `linked`: to the op submitted next (a recv), which
/// its failure cancels, and which wakes the fiber in its stead.
fn submit_send(group: &mut OpGroup, fd: i32, bytes: Vec<u8>, linked: bool) -> OpId {
    let (ptr, len) = (bytes.as_ptr(), bytes.len());
    group.submit(opcode::Send::CODE, !linked, |slot| {
        slot.owned = Owned::Bytes(bytes);
        let sqe = opcode::Send::new(types::Fd(fd), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        if linked {
            sqe.flags(io_uring::squeue::Flags::IO_LINK)
        } else {
            sqe
        }
    })
}

/// The bytes a completed recv received, and whether the message was longer (a recv with
/// MSG_TRUNC gives a datagram's whole length).
fn received(done: Completed) -> (Vec<u8>, bool) {
    match done.owned {
        Owned::Bytes(mut buffer) if done.result > 0 => {
            let len = (done.result as usize).min(buffer.capacity());
            // SAFETY: the kernel wrote `len` bytes, at most the capacity it was given, at the
            // start of the buffer: they are initialized.
            unsafe { buffer.set_len(len) };
            let cut = done.result as usize > len;
            (buffer, cut)
        }
        _ => (Vec::new(), false),
    }
}

/// Asks `server` every question; one outcome per question, in order.
pub fn exchange(
    machine: &Machine,
    server: SocketAddr,
    questions: &[Question],
    timeout: Duration,
) -> Result<Vec<Outcome>, Error> {
    let mut outcomes: Vec<Outcome> = questions.iter().map(|_| Outcome::Silent).collect();
    let reusable = IdleSockets::keeps(&server);
    let idle = if reusable {
        machine.with(|s| s.dns_sockets.take(&server))
    } else {
        None
    };
    let socket = match idle {
        Some(fd) => Socket(fd),
        None => match Socket::open(&server, libc::SOCK_DGRAM, true) {
            Ok(s) => s,
            Err(errno) => return Ok(questions.iter().map(|_| Outcome::Errno(errno)).collect()),
        },
    };
    let mut ids: Vec<u16> = Vec::with_capacity(questions.len());
    while ids.len() < questions.len() {
        let id = random_id()?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let queries: Vec<Vec<u8>> = questions
        .iter()
        .zip(&ids)
        .map(|(q, &id)| {
            q.encode(id)
                .ok_or_else(|| rb::arg_error(format!("cannot encode a query for {}", q.name)))
        })
        .collect::<Result<_, _>>()?;
    let mut group = OpGroup::begin(machine)?;
    let timer = group.timer(timeout);
    // Each send linked to a recv: only recvs wake the fiber (a failed send cancels its recv).
    let sends: Vec<OpId> = queries
        .into_iter()
        .map(|q| {
            let send = submit_send(&mut group, socket.0, q, true);
            submit_recv(&mut group, socket.0, UDP_REPLY, libc::MSG_TRUNC);
            send
        })
        .collect();
    let mut recvs = questions.len();
    let mut open: Vec<usize> = (0..questions.len()).collect();
    let mut truncated = Vec::new();
    let mut expired = false;
    while !open.is_empty() && !expired {
        let mut completed = group.next()?;
        // Sends first: a recv their failure cancelled (ECANCELED) is then no news.
        completed.sort_by_key(|done| !sends.contains(&done.id));
        for done in completed {
            if done.id == timer {
                expired = true;
            } else if let Some(i) = sends.iter().position(|&s| s == done.id) {
                if done.result < 0 && open.contains(&i) {
                    outcomes[i] = Outcome::Errno(-done.result);
                    open.retain(|&o| o != i);
                }
            } else {
                recvs -= 1;
                if done.result == -libc::ECANCELED {
                    continue;
                }
                if done.result < 0 {
                    // The socket's error (an ICMP port unreachable) is every query's.
                    open.drain(..).for_each(|i| outcomes[i] = Outcome::Errno(-done.result));
                    continue;
                }
                let (bytes, cut) = received(done);
                let came = if cut { Came::Cut } else { Came::Datagram };
                let matched =
                    open.iter()
                        .enumerate()
                        .find_map(|(at, &i)| match questions[i].check(ids[i], &bytes, came) {
                            Checked::NotOurs => None,
                            Checked::Truncated => Some((at, i, None)),
                            Checked::Reply(message) => Some((at, i, Some(message))),
                        });
                match matched {
                    Some((at, i, Some(message))) => {
                        outcomes[i] = Outcome::Reply(bytes, message);
                        open.remove(at);
                    }
                    Some((at, i, None)) => {
                        truncated.push(i);
                        open.remove(at);
                    }
                    None => {}
                }
            }
        }
        while recvs < open.len() && !expired {
            submit_recv(&mut group, socket.0, UDP_REPLY, libc::MSG_TRUNC);
            recvs += 1;
        }
    }
    group.end()?;
    // Every recv came back and no error is left on the socket: nothing of this exchange can
    // reach the next one but a duplicate reply, which its checks drop.
    let clean = recvs == 0 && open.is_empty() && !outcomes.iter().any(|o| matches!(o, Outcome::Errno(_)));
    if reusable && clean {
        let fd = socket.into_raw();
        machine.with(|s| s.dns_sockets.give_back(server, fd));
    } else {
        drop(socket);
    }
    for i in truncated {
        outcomes[i] = tcp(machine, server, &questions[i], timeout)?;
    }
    Ok(outcomes)
}

/// The question asked again over TCP, within a fresh `timeout`.
fn tcp(machine: &Machine, server: SocketAddr, question: &Question, timeout: Duration) -> Result<Outcome, Error> {
    let socket = match Socket::open(&server, libc::SOCK_STREAM, false) {
        Ok(s) => s,
        Err(errno) => return Ok(Outcome::Errno(errno)),
    };
    let id = random_id()?;
    let query = question
        .encode(id)
        .ok_or_else(|| rb::arg_error(format!("cannot encode a query for {}", question.name)))?;
    let mut framed = Vec::with_capacity(2 + query.len());
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(&query);
    let fd = socket.0;
    let mut group = OpGroup::begin(machine)?;
    let timer = group.timer(timeout);
    let addr = Box::new(to_sockaddr(server));
    let connect = group.submit(opcode::Connect::CODE, true, |slot| {
        let sqe = opcode::Connect::new(types::Fd(fd), &addr.0 as *const _ as *const libc::sockaddr, addr.1).build();
        slot.owned = Owned::SockAddr(addr);
        sqe
    });
    let Some(done) = step(&mut group, connect, timer)? else {
        return group.end().map(|_| Outcome::Silent);
    };
    if done.result < 0 {
        group.end()?;
        return Ok(Outcome::Errno(-done.result));
    }
    let mut sent = 0;
    while sent < framed.len() {
        let send = submit_send(&mut group, fd, framed[sent..].to_vec(), false);
        let Some(done) = step(&mut group, send, timer)? else {
            return group.end().map(|_| Outcome::Silent);
        };
        if done.result <= 0 {
            group.end()?;
            return Ok(Outcome::Errno(if done.result < 0 { -done.result } else { libc::EPIPE }));
        }
        sent += done.result as usize;
    }
    let mut data: Vec<u8> = Vec::new();
    loop {
        // Every whole message that came: the first that is the reply ends the exchange.
        while data.len() >= 2 {
            let length = u16::from_be_bytes([data[0], data[1]]) as usize;
            if data.len() < 2 + length {
                break;
            }
            let message: Vec<u8> = data.drain(..2 + length).skip(2).collect();
            if let Checked::Reply(reply) = question.check(id, &message, Came::Stream) {
                group.end()?;
                return Ok(Outcome::Reply(message, reply));
            }
        }
        let recv = submit_recv(&mut group, fd, MAX_TCP - data.len(), 0);
        let Some(done) = step(&mut group, recv, timer)? else {
            return group.end().map(|_| Outcome::Silent);
        };
        if done.result < 0 {
            group.end()?;
            return Ok(Outcome::Errno(-done.result));
        }
        if done.result == 0 {
            group.end()?;
            let need = if data.len() >= 2 {
                2 + u16::from_be_bytes([data[0], data[1]]) as usize
            } else {
                2
            };
            return Ok(Outcome::Failed(format!(
                "connection closed after {} of {} bytes",
                data.len(),
                need
            )));
        }
        data.extend_from_slice(&received(done).0);
    }
}

/// Waits for op `op` of the group; None when the group's `timer` fired first.
fn step(group: &mut OpGroup, op: OpId, timer: OpId) -> Result<Option<Completed>, Error> {
    loop {
        let mut mine = None;
        for done in group.next()? {
            if done.id == timer {
                return Ok(None);
            }
            if done.id == op {
                mine = Some(done);
            }
        }
        if mine.is_some() {
            return Ok(mine);
        }
    }
}
