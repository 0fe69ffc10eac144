//! DNS queries over the ring, for UringMachine::DNS::Resolver (lib/uring_machine/dns/): the
//! wire format (wire.rs, hickory-proto) and the exchange with one server (transport.rs). The
//! resolver's policy (hosts, search list, servers and attempts, cache) stays in Ruby. The
//! server's hot path too: datagrams in and out (server.rs), questions read and replies
//! encoded (reply.rs); its policy (the block, stats, TCP, fibers) stays in Ruby.
mod idle_sockets;
pub mod reply;
mod server;
mod transport;
mod wire;

pub use idle_sockets::IdleSockets;

use std::net::{IpAddr, SocketAddr};

use magnus::{Error, Value};
use rb_sys::VALUE;

use crate::machine::Machine;
use crate::ruby::duration::float_seconds;
use crate::ruby::value::{self as rb, int, raw, NIL};
use transport::Outcome;
use wire::{Answer, Question};

/// The longest name the wire format carries, without its trailing dot.
const MAX_NAME: usize = 253;

impl Machine {
    /// __dns_exchange__(host, port, name, types, timeout, addresses) → one outcome per type:
    /// nil (no reply in time), an Integer errno, a String (the server broke the protocol), or
    /// the reply: [rcode, bytes], or with +addresses+, what it says of the name's A or AAAA
    /// records: [rcode, status, data, ttl], status :ok (data: the address Strings),
    /// :nodata, :nxdomain, :follow (data: the CNAME target to ask about), :loop (a CNAME
    /// loop at data), or nil when rcode is neither NOERROR nor NXDOMAIN.
    pub fn rb_dns_exchange(&self, args: &[Value]) -> Result<Value, Error> {
        crate::ruby::args::arity(args, 6, 6)?;
        self.check_owner()?;
        let args = rb::raw_slice(args);
        let server = server_arg(args[0], args[1])?;
        let name = name_arg(args[2])?;
        let types = types_arg(args[3])?;
        let questions = Question::each_type(&name, &types)
            .ok_or_else(|| rb::arg_error(format!("not a valid DNS name: {}", String::from_utf8_lossy(&name))))?;
        let timeout = float_seconds(args[4])?
            .filter(|d| !d.is_zero())
            .ok_or_else(|| rb::arg_error("timeout must be a positive number of seconds"))?;
        let addresses = rb::truthy(args[5]);
        let outcomes = transport::exchange(self, server, &questions, timeout)?;
        let list = rb::ary_new_capa(outcomes.len())?;
        for (question, outcome) in questions.iter().zip(outcomes) {
            rb::ary_push(list, outcome_value(question, outcome, addresses)?)?;
        }
        Ok(rb::value(list))
    }
}

fn server_arg(host: VALUE, port: VALUE) -> Result<SocketAddr, Error> {
    let host: String = magnus::TryConvert::try_convert(rb::value(host))?;
    let port = rb::int_arg(port, "port", 1, 65535)? as u16;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| rb::arg_error(format!("nameserver must be an IP address, not {host:?}")))?;
    Ok(SocketAddr::new(ip, port))
}

fn name_arg(name: VALUE) -> Result<Vec<u8>, Error> {
    if !rb::is_string(name) {
        return Err(rb::type_error("DNS name must be a String"));
    }
    let text: magnus::RString = magnus::TryConvert::try_convert(rb::value(name))?;
    // SAFETY: the bytes are copied at once, with no Ruby call in between.
    let bytes = unsafe { text.as_slice() }.to_vec();
    let bare = bytes.strip_suffix(b".").filter(|b| !b.is_empty()).unwrap_or(&bytes);
    if bare.is_empty() || bare.len() > MAX_NAME {
        return Err(rb::arg_error(format!("DNS name must be 1..{MAX_NAME} bytes long")));
    }
    Ok(bare.to_vec())
}

fn types_arg(types: VALUE) -> Result<Vec<u16>, Error> {
    let list: magnus::RArray = magnus::TryConvert::try_convert(rb::value(types))?;
    if list.is_empty() || list.len() > 8 {
        return Err(rb::arg_error("record types: an Array of 1 to 8 type codes"));
    }
    list.into_iter()
        .map(|t| Ok(rb::int_arg(raw(t), "record type", 1, 65535)? as u16))
        .collect()
}

fn outcome_value(question: &Question, outcome: Outcome, addresses: bool) -> Result<VALUE, Error> {
    let (bytes, reply) = match outcome {
        Outcome::Silent => return Ok(NIL),
        Outcome::Errno(errno) => return Ok(int(errno as i64)),
        Outcome::Failed(text) => return rb::str_new(&text),
        Outcome::Reply(bytes, reply) => (bytes, reply),
    };
    let rcode = int(wire::rcode(&reply) as i64);
    if !addresses {
        return array(&[rcode, rb::bytes_new(&bytes)?]);
    }
    if ![0, 3].contains(&wire::rcode(&reply)) {
        return array(&[rcode, NIL, NIL, NIL]);
    }
    let ttl = |t: Option<u32>| t.map_or(NIL, |t| int(t as i64));
    let (status, data, ttl) = match wire::addresses(question, &reply) {
        Answer::Found(found, least) => {
            let list = rb::ary_new_capa(found.len())?;
            for address in found {
                rb::ary_push(list, rb::str_new(&address.to_string())?)?;
            }
            ("ok", list, int(least as i64))
        }
        Answer::NoData(negative) => ("nodata", rb::ary_new_capa(0)?, ttl(negative)),
        Answer::NxDomain(negative) => ("nxdomain", NIL, ttl(negative)),
        Answer::Follow(target, chain) => ("follow", rb::bytes_new(&wire::name_text(&target))?, ttl(chain)),
        Answer::Loop(target) => ("loop", rb::bytes_new(&wire::name_text(&target))?, NIL),
    };
    array(&[rcode, rb::symbol(status)?, data, ttl])
}

fn array(items: &[VALUE]) -> Result<VALUE, Error> {
    let list = rb::ary_new_capa(items.len())?;
    for &item in items {
        rb::ary_push(list, item)?;
    }
    Ok(list)
}
