//! The DNS wire format, through hickory-proto: a query encoded, a reply checked against it,
//! and what an A or AAAA reply says about its name (the Ruby resolver's `interpret`).
use std::net::IpAddr;

use hickory_proto::op::{Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

/// A message header's length on the wire.
const HEADER_BYTES: usize = 12;

/// One question of an exchange: the name (absolute) and the record type.
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
}

impl Question {
    /// One question per type code about a name without its trailing dot ("." for the root);
    /// None when the name breaks the wire format's limits (labels of 1..63 bytes, 255 in all).
    pub fn each_type(text: &[u8], qtypes: &[u16]) -> Option<Vec<Question>> {
        let mut name = if text == b"." {
            Name::root()
        } else {
            if text.split(|&b| b == b'.').any(|label| label.is_empty()) {
                return None;
            }
            Name::from_labels(text.split(|&b| b == b'.')).ok()?
        };
        name.set_fqdn(true);
        let questions = qtypes.iter().map(|&qtype| Question {
            name: name.clone(),
            qtype: RecordType::from(qtype),
        });
        Some(questions.collect())
    }

    /// The query with id `id`, recursion desired, as bytes: its header and question written
    /// directly (no Message to build).
    pub fn encode(&self, id: u16) -> Option<Vec<u8>> {
        let mut metadata = Metadata::new(id, MessageType::Query, OpCode::Query);
        metadata.recursion_desired = true;
        let counts = HeaderCounts {
            queries: 1,
            ..HeaderCounts::default()
        };
        let mut bytes = Vec::with_capacity(HEADER_BYTES + self.name.len() + 6);
        let mut encoder = BinEncoder::new(&mut bytes);
        Header { metadata, counts }.emit(&mut encoder).ok()?;
        self.name.emit(&mut encoder).ok()?;
        self.qtype.emit(&mut encoder).ok()?;
        DNSClass::IN.emit(&mut encoder).ok()?;
        Some(bytes)
    }

    /// What `bytes` (as `came`) are to the query with id `id` of this question: its reply (the
    /// id, QR, opcode and the one question match), a truncated one (TC, or a datagram cut
    /// short: only the header and question are read), or nothing of ours (garbage, a stray
    /// or forged packet, a reply that does not decode).
    pub fn check(&self, id: u16, bytes: &[u8], came: Came) -> Checked {
        let mut decoder = BinDecoder::new(bytes);
        let Ok(header) = Header::read(&mut decoder) else {
            return Checked::NotOurs;
        };
        let meta = header.metadata;
        if meta.id != id || meta.message_type != MessageType::Response || meta.op_code != OpCode::Query {
            return Checked::NotOurs;
        }
        if header.counts.queries != 1 {
            return Checked::NotOurs;
        }
        match Query::read(&mut decoder) {
            Ok(q) if q.query_type == self.qtype && q.name == self.name => {}
            _ => return Checked::NotOurs,
        }
        match came {
            Came::Cut => return Checked::Truncated,
            Came::Datagram if meta.truncation => return Checked::Truncated,
            _ => {}
        }
        match Message::from_vec(bytes) {
            Ok(message) => Checked::Reply(message),
            Err(_) => Checked::NotOurs,
        }
    }
}

/// How a message came.
#[derive(Clone, Copy)]
pub enum Came {
    Datagram,
    /// A datagram longer than the buffer: its start.
    Cut,
    /// Over TCP, where TC cannot make a reply shorter.
    Stream,
}

pub enum Checked {
    NotOurs,
    Truncated,
    Reply(Message),
}

/// What a reply says about the addresses of its question's name.
pub enum Answer {
    /// The addresses (of the name at the end of the CNAME chain) and the smallest TTL.
    Found(Vec<IpAddr>, u32),
    /// The name exists without such records; the negative TTL if the reply has an SOA.
    NoData(Option<u32>),
    NxDomain(Option<u32>),
    /// The server stopped at a CNAME: the name to ask about next, and the chain's TTL.
    Follow(Name, Option<u32>),
    /// The chain comes back to a name it passed: the name.
    Loop(Name),
}

/// The response code of a reply (the 4 header bits, and EDNS's upper ones).
pub fn rcode(reply: &Message) -> u16 {
    u16::from(reply.metadata.response_code)
}

pub fn is_nxdomain(reply: &Message) -> bool {
    reply.metadata.response_code == ResponseCode::NXDomain
}

/// The records of the question's type for its name, CNAMEs followed within the reply.
pub fn addresses(question: &Question, reply: &Message) -> Answer {
    let mut current = &question.name;
    let mut seen: Vec<&Name> = vec![current];
    let mut ttl: Option<u32> = None;
    loop {
        let owned = reply.answers.iter().filter(|r| r.name == *current);
        let found: Vec<(IpAddr, u32)> = owned
            .clone()
            .filter_map(|r| match (&r.data, question.qtype) {
                (RData::A(a), RecordType::A) => Some((IpAddr::V4(a.0), r.ttl)),
                (RData::AAAA(a), RecordType::AAAA) => Some((IpAddr::V6(a.0), r.ttl)),
                _ => None,
            })
            .collect();
        if !found.is_empty() {
            let least = found.iter().map(|f| f.1).chain(ttl).min().unwrap_or(0);
            return Answer::Found(found.into_iter().map(|f| f.0).collect(), least);
        }
        let Some((target, cname_ttl)) = owned
            .filter_map(|r| match &r.data {
                RData::CNAME(c) => Some((&c.0, r.ttl)),
                _ => None,
            })
            .next()
        else {
            break;
        };
        if seen.contains(&target) {
            return Answer::Loop(target.clone());
        }
        seen.push(target);
        ttl = Some(ttl.map_or(cname_ttl, |t| t.min(cname_ttl)));
        current = target;
    }
    let negative = reply.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    });
    if is_nxdomain(reply) {
        Answer::NxDomain(negative)
    } else if seen.len() > 1 && negative.is_none() {
        Answer::Follow(current.clone(), ttl)
    } else {
        Answer::NoData(negative)
    }
}

/// A name as the Ruby resolver writes it: its labels joined by dots, no trailing dot.
pub fn name_text(name: &Name) -> Vec<u8> {
    if name.is_root() {
        return b".".to_vec();
    }
    let mut text = Vec::with_capacity(64);
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        text.extend_from_slice(label);
    }
    text
}
