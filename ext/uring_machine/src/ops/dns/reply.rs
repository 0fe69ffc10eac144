//! The DNS server's wire format (lib/uring_machine/dns/server.rb, transaction.rb), through
//! hickory-proto: the question of a query read, and a reply encoded from the Transaction's
//! sections when every record in them is an address String (other records go through resolv).
use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{rdata, DNSClass, Name, RData, Record};
use magnus::{Error, RArray, RString, Value};
use rb_sys::VALUE;

use crate::ruby::value::{self as rb, int, raw, NIL};

/// The question of `bytes` when they are an ordinary query the server answers on the fast
/// path: a whole message, QR 0, opcode QUERY, one question of class IN. Its name as the Ruby
/// server writes it (labels joined by dots as received, no trailing dot, "" for the root)
/// and its type code.
pub fn plain_question(bytes: &[u8]) -> Option<(Vec<u8>, u16)> {
    let message = Message::from_vec(bytes).ok()?;
    let meta = &message.metadata;
    if meta.message_type != MessageType::Query || meta.op_code != OpCode::Query || message.queries.len() != 1 {
        return None;
    }
    let query = &message.queries[0];
    if query.query_class != DNSClass::IN {
        return None;
    }
    Some((name_text(&query.name), u16::from(query.query_type)))
}

fn name_text(name: &Name) -> Vec<u8> {
    let mut text = Vec::with_capacity(64);
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        text.extend_from_slice(label);
    }
    text
}

/// UringMachine.__dns_question__(packet) → [name, type code] (see plain_question), or nil
/// when the packet is anything else (the Ruby server decodes it with resolv).
pub fn rb_dns_question(packet: Value) -> Result<Value, Error> {
    let packet = string_arg(raw(packet), "packet")?;
    // SAFETY: the bytes are read at once, with no Ruby call in between.
    let question = plain_question(unsafe { packet.as_slice() });
    let Some((name, qtype)) = question else {
        return Ok(rb::value(NIL));
    };
    let pair = rb::ary_new_capa(2)?;
    rb::ary_push(pair, rb::bytes_new(&name)?)?;
    rb::ary_push(pair, int(i64::from(qtype)))?;
    Ok(rb::value(pair))
}

/// UringMachine.__dns_reply__(packet, rcode, answers, authority, additional, limit) → the
/// reply to the query `packet` as bytes: header (id, opcode, RD copied; QR and AA set), its
/// questions, and the sections' [name String, ttl, address String] entries as A and AAAA
/// records. Longer than `limit` bytes (nil: no limit): the header and questions only, TC set.
/// nil when an entry is anything else (a Resolv::DNS::Resource: resolv encodes it).
pub fn rb_dns_reply(args: &[Value]) -> Result<Value, Error> {
    crate::ruby::args::arity(args, 6, 6)?;
    let args = rb::raw_slice(args);
    let packet = string_arg(args[0], "packet")?;
    let rcode = rb::int_arg(args[1], "rcode", 0, 15)? as u8;
    let limit = match args[5] {
        NIL => None,
        v => Some(rb::int_arg(v, "limit", 12, 65_535)? as usize),
    };
    // SAFETY: copied at once, with no Ruby call in between.
    let query = Message::from_vec(unsafe { packet.as_slice() }).map_err(|_| rb::arg_error("not a DNS query"))?;
    let mut reply = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.response_code = ResponseCode::from_low(rcode);
    for q in query.queries {
        reply.add_query(q);
    }
    let Some(answers) = records(args[2])? else {
        return Ok(rb::value(NIL));
    };
    let Some(authority) = records(args[3])? else {
        return Ok(rb::value(NIL));
    };
    let Some(additional) = records(args[4])? else {
        return Ok(rb::value(NIL));
    };
    let bare = limit.map(|_| reply.clone());
    reply.answers = answers;
    reply.authorities = authority;
    reply.additionals = additional;
    let mut bytes = encoded(&reply)?;
    if let (Some(limit), Some(mut bare)) = (limit, bare) {
        if bytes.len() > limit {
            bare.metadata.truncation = true;
            bytes = encoded(&bare)?;
        }
    }
    rb::bytes_new(&bytes).map(rb::value)
}

fn encoded(message: &Message) -> Result<Vec<u8>, Error> {
    message
        .to_vec()
        .map_err(|e| rb::arg_error(format!("DNS reply does not encode: {e}")))
}

/// The records of a section's entries, or None when one is not [String, Integer, String].
fn records(section: VALUE) -> Result<Option<Vec<Record>>, Error> {
    let list: RArray = magnus::TryConvert::try_convert(rb::value(section))?;
    let mut found = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let entry: Value = list.entry(i as isize)?;
        let Some(entry) = RArray::from_value(entry) else {
            return Ok(None);
        };
        if entry.len() != 3 {
            return Ok(None);
        }
        let (name, ttl, address) = (
            raw(entry.entry::<Value>(0)?),
            raw(entry.entry::<Value>(1)?),
            raw(entry.entry::<Value>(2)?),
        );
        if !rb::is_string(name) || !rb::is_string(address) {
            return Ok(None);
        }
        let ttl = rb::int_arg(ttl, "TTL", 0, 0x7fff_ffff)? as u32;
        let name = owner_name(&string_bytes(name)?)?;
        let data = match parse_address(&string_bytes(address)?) {
            Some(IpAddr::V4(a)) => RData::A(rdata::A(a)),
            Some(IpAddr::V6(a)) => RData::AAAA(rdata::AAAA(a)),
            None => return Err(rb::arg_error("not an IP address")),
        };
        found.push(Record::from_rdata(name, ttl, data));
    }
    Ok(Some(found))
}

/// A record's owner: a name without its trailing dot ("." for the root), as
/// Types.check_name leaves it.
fn owner_name(text: &[u8]) -> Result<Name, Error> {
    let mut name = if text == b"." || text.is_empty() {
        Name::root()
    } else {
        Name::from_labels(text.split(|&b| b == b'.')).map_err(|_| rb::arg_error("not a valid DNS name"))?
    };
    name.set_fqdn(true);
    Ok(name)
}

fn parse_address(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// UringMachine.__dns_address_family__(text) → 4 or 6 when `text` is an IPv4 or IPv6 address,
/// else nil.
pub fn rb_dns_address_family(text: Value) -> Result<Value, Error> {
    let text = raw(text);
    if !rb::is_string(text) {
        return Ok(rb::value(NIL));
    }
    Ok(rb::value(match parse_address(&string_bytes(text)?) {
        Some(IpAddr::V4(_)) => int(4),
        Some(IpAddr::V6(_)) => int(6),
        None => NIL,
    }))
}

fn string_arg(v: VALUE, what: &str) -> Result<RString, Error> {
    if !rb::is_string(v) {
        return Err(rb::type_error(format!("{what} must be a String")));
    }
    magnus::TryConvert::try_convert(rb::value(v))
}

fn string_bytes(v: VALUE) -> Result<Vec<u8>, Error> {
    let text: RString = magnus::TryConvert::try_convert(rb::value(v))?;
    // SAFETY: copied at once, with no Ruby call in between.
    Ok(unsafe { text.as_slice() }.to_vec())
}
