//! The DNS server's wire format (lib/uring_machine/dns/server.rb, transaction.rb), through
//! hickory-proto: the question of a query read, and a reply encoded from the Transaction's
//! sections when every record in them is an address String (other records go through resolv).
use std::net::IpAddr;

use hickory_proto::op::{Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{rdata, DNSClass, Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use magnus::{rb_sys::protect, Error, RArray, RString, Value};
use rb_sys::{ID, VALUE};
use std::ffi::CStr;
use std::sync::OnceLock;

use crate::ruby::value::{self as rb, int, raw, NIL};

/// The question of `bytes` when they are an ordinary query the server answers on the fast
/// path: a whole message, QR 0, opcode QUERY, one question of class IN, for a name other
/// than the root without dots inside its labels (so that the text is a valid name for
/// Types.check_name as it is). The name as the Ruby server writes it (labels joined by dots
/// as received, no trailing dot) and the type code.
pub fn plain_question(bytes: &[u8]) -> Option<(Vec<u8>, u16)> {
    let (header, mut questions) = header_and_questions(bytes)?;
    let (meta, counts) = (&header.metadata, &header.counts);
    if meta.message_type != MessageType::Query || meta.op_code != OpCode::Query || counts.queries != 1 {
        return None;
    }
    // The other sections must decode too (an EDNS OPT record, say): the whole message.
    let more = counts.answers != 0 || counts.authorities != 0 || counts.additionals != 0;
    if more && Message::from_vec(bytes).is_err() {
        return None;
    }
    let query = questions.pop()?;
    if query.query_class != DNSClass::IN || query.name.is_root() || query.name.iter().any(|label| label.contains(&b'.'))
    {
        return None;
    }
    Some((super::wire::name_text(&query.name), u16::from(query.query_type)))
}

/// The ivar names of UringMachine::DNS::Transaction that Rust reads and sets, interned at
/// load (see ruby/names.rs).
pub struct Ivars {
    pub packet: ID,
    pub sender: ID,
    pub remote_address: ID,
    pub protocol: ID,
    pub question_name: ID,
    pub type_code: ID,
    pub checked_name: ID,
    /// :udp (a Symbol's ID; the ivars' names are IDs too)
    pub udp: ID,
    pub answers: ID,
    pub authority: ID,
    pub additional: ID,
    pub rcode: ID,
}

static IVARS: OnceLock<Ivars> = OnceLock::new();

fn intern(name: &CStr) -> Result<ID, Error> {
    // SAFETY: `name` is NUL-terminated and static; rb_intern's allocation may raise
    // NoMemoryError, which protect turns into Err.
    protect(|| unsafe { rb_sys::rb_intern(name.as_ptr()) as VALUE }).map(|id| id as ID)
}

/// Interns the ivar names; at load.
pub fn init() -> Result<(), Error> {
    let ivars = Ivars {
        packet: intern(c"@packet")?,
        sender: intern(c"@sender")?,
        remote_address: intern(c"@remote_address")?,
        protocol: intern(c"@protocol")?,
        question_name: intern(c"@question_name")?,
        type_code: intern(c"@type_code")?,
        checked_name: intern(c"@checked_name")?,
        udp: intern(c"udp")?,
        answers: intern(c"@answers")?,
        authority: intern(c"@authority")?,
        additional: intern(c"@additional")?,
        rcode: intern(c"@rcode")?,
    };
    let _ = IVARS.set(ivars);
    Ok(())
}

pub fn ivars() -> &'static Ivars {
    IVARS
        .get()
        .expect("the DNS ivar names are interned when the extension loads")
}

/// What a received message becomes: a new Transaction (of class `class`) when plain_question
/// reads it, with @packet, @sender and @remote_address (the sender: an Addrinfo, or a packed
/// sockaddr that Ruby makes one of when asked), @protocol, @question_name (also @checked_name:
/// valid as it is), @type_code and an empty @answers, the rest nil until Ruby sets it; else
/// `other` (packet, sender). `packet` and `sender` are made Strings here when given as bytes. All in one `protect`: a datagram costs one, not one per object.
pub fn transaction(
    class: VALUE,
    packet: Field,
    sender: Field,
    protocol: VALUE,
    other: unsafe fn(VALUE, VALUE) -> VALUE,
) -> Result<VALUE, Error> {
    // SAFETY: a String is read at once (plain_question runs before any Ruby call).
    let question = plain_question(unsafe { packet.slice() });
    let ids = ivars();
    // SAFETY: every call below may raise only NoMemoryError (allocating the Strings, the
    // object, its ivars; a new object is not frozen), caught by protect; no Rust value that
    // needs dropping lives in this frame. The VALUEs stay on this stack until set.
    protect(|| unsafe {
        let packet = packet.value();
        let sender = sender.value();
        let Some((name, qtype)) = &question else {
            return other(packet, sender);
        };
        let object = rb_sys::rb_obj_alloc(class);
        let name = rb_sys::rb_str_new(name.as_ptr() as *const _, name.len() as _);
        rb_sys::rb_ivar_set(object, ids.packet, packet);
        rb_sys::rb_ivar_set(object, ids.sender, sender);
        rb_sys::rb_ivar_set(object, ids.remote_address, sender);
        rb_sys::rb_ivar_set(object, ids.protocol, protocol);
        rb_sys::rb_ivar_set(object, ids.question_name, name);
        rb_sys::rb_ivar_set(object, ids.checked_name, name);
        rb_sys::rb_ivar_set(object, ids.type_code, int(i64::from(*qtype)));
        rb_sys::rb_ivar_set(object, ids.answers, rb_sys::rb_ary_new_capa(1));
        object
    })
}

/// A Ruby value as given (the packet: a String; the sender: a String or an Addrinfo), or
/// bytes to make a String of (inside transaction's protect).
#[derive(Clone, Copy)]
pub enum Field<'a> {
    Value(VALUE),
    Raw(&'a [u8]),
}

impl Field<'_> {
    /// # Safety
    /// A Value variant holds a live String, read before any Ruby call.
    unsafe fn slice(&self) -> &[u8] {
        match self {
            // SAFETY: the caller's contract.
            Field::Value(v) => unsafe { string_slice(*v) },
            Field::Raw(bytes) => bytes,
        }
    }

    /// # Safety
    /// Under protect: making a String may raise NoMemoryError.
    unsafe fn value(&self) -> VALUE {
        match self {
            Field::Value(v) => *v,
            // SAFETY: the pointer and length describe live bytes (CRuby copies them).
            Field::Raw(bytes) => unsafe { rb_sys::rb_str_new(bytes.as_ptr() as *const _, bytes.len() as _) },
        }
    }
}

/// UringMachine.__dns_transaction__(class, packet, sender, protocol): see transaction.
pub fn rb_dns_transaction(class: Value, packet: Value, sender: Value, protocol: Value) -> Result<Value, Error> {
    let class: magnus::RClass = magnus::TryConvert::try_convert(class)?;
    let packet = string_arg(raw(packet), "packet")?;
    transaction(
        raw(class),
        Field::Value(raw(packet)),
        Field::Value(raw(sender)),
        raw(protocol),
        |_, _| NIL,
    )
    .map(rb::value)
}

/// The reply a Transaction made by `transaction` gives: its bytes and whether it was cut to
/// `limit` (see rb_dns_reply); None when an entry of its sections is not an address.
pub fn transaction_reply(transaction: VALUE, limit: Option<usize>) -> Result<Option<(Vec<u8>, bool)>, Error> {
    let ids = ivars();
    let packet = rb::ivar_get(transaction, ids.packet);
    if !rb::is_string(packet) {
        return Ok(None);
    }
    let rcode = match rb::ivar_get(transaction, ids.rcode) {
        NIL => 3, // NXDOMAIN: nobody answered
        code => rb::int_arg(code, "rcode", 0, 15)? as u8,
    };
    let sections = [ids.answers, ids.authority, ids.additional].map(|id| rb::ivar_get(transaction, id));
    // SAFETY: `packet` is a String, read at once.
    let (query, questions) =
        header_and_questions(unsafe { string_slice(packet) }).ok_or_else(|| rb::arg_error("not a DNS query"))?;
    let mut records = Vec::with_capacity(3);
    for section in sections {
        let Some(found) = section_records(section, &questions)? else {
            return Ok(None);
        };
        records.push(found);
    }
    let mut metadata = Metadata::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    metadata.authoritative = true;
    metadata.recursion_desired = query.metadata.recursion_desired;
    metadata.response_code = ResponseCode::from_low(rcode);
    let mut header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    let bytes = encode(&mut header, &questions, &records)?;
    if limit.is_some_and(|limit| bytes.len() > limit) {
        header.metadata.truncation = true;
        return Ok(Some((encode(&mut header, &questions, &[])?, true)));
    }
    Ok(Some((bytes, false)))
}

/// UringMachine.__dns_reply__(transaction, limit) → the reply to a Transaction that
/// __dns_transaction__ or __dns_receive__ made, as bytes: header (id, opcode, RD copied; QR
/// and AA set), its question, and @answers, @authority and @additional, whose entries are
/// [name String, ttl, address String], as A and AAAA records. Longer than `limit` bytes (nil:
/// no limit): the header and question only, TC set. nil when an entry is anything else (a
/// Resolv::DNS::Resource: resolv encodes it), or the transaction was made from a decoded
/// Resolv::DNS::Message.
pub fn rb_dns_reply(transaction: Value, limit: Value) -> Result<Value, Error> {
    match transaction_reply(raw(transaction), limit_arg(raw(limit))?)? {
        Some((bytes, _)) => rb::bytes_new(&bytes).map(rb::value),
        None => Ok(rb::value(NIL)),
    }
}

pub fn limit_arg(v: VALUE) -> Result<Option<usize>, Error> {
    match v {
        NIL => Ok(None),
        v => Ok(Some(rb::int_arg(v, "limit", 12, 65_535)? as usize)),
    }
}

/// The header and questions of a query (the rest is not read).
fn header_and_questions(bytes: &[u8]) -> Option<(Header, Vec<Query>)> {
    let mut decoder = BinDecoder::new(bytes);
    let header = Header::read(&mut decoder).ok()?;
    let questions = (0..header.counts.queries)
        .map(|_| Query::read(&mut decoder).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((header, questions))
}

fn encode(header: &mut Header, questions: &[Query], sections: &[Vec<Record>]) -> Result<Vec<u8>, Error> {
    let count = |i: usize| sections.get(i).map_or(0, |s: &Vec<Record>| s.len() as u16);
    header.counts.queries = questions.len() as u16;
    header.counts.answers = count(0);
    header.counts.authorities = count(1);
    header.counts.additionals = count(2);
    let mut buffer = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buffer);
    let emitted = (|| {
        header.emit(&mut encoder)?;
        questions.iter().try_for_each(|q| q.emit(&mut encoder))?;
        sections.iter().flatten().try_for_each(|r| r.emit(&mut encoder))
    })();
    emitted.map_err(|e| rb::arg_error(format!("DNS reply does not encode: {e}")))?;
    Ok(buffer)
}

/// The records of a section's entries (nil: none), or None when one is not [String,
/// Integer, String]. An owner spelled as a question's name is that name.
fn section_records(section: VALUE, questions: &[Query]) -> Result<Option<Vec<Record>>, Error> {
    if section == NIL {
        return Ok(Some(Vec::new()));
    }
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
        // SAFETY: both Strings are read at once, with no Ruby call in between.
        let (name, address) = unsafe { (string_slice(name), string_slice(address)) };
        let owner = match questions.iter().find(|q| name_is(&q.name, name)) {
            Some(q) => q.name.clone(),
            None => owner_name(name)?,
        };
        let data = match parse_address(address) {
            Some(IpAddr::V4(a)) => RData::A(rdata::A(a)),
            Some(IpAddr::V6(a)) => RData::AAAA(rdata::AAAA(a)),
            None => return Err(rb::arg_error("not an IP address")),
        };
        found.push(Record::from_rdata(owner, ttl, data));
    }
    Ok(Some(found))
}

/// Is `text` (labels joined by dots, no trailing dot) exactly `name`?
fn name_is(name: &Name, text: &[u8]) -> bool {
    let mut rest = text;
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            let Some(after) = rest.strip_prefix(b".") else {
                return false;
            };
            rest = after;
        }
        let Some(after) = rest.strip_prefix(label) else {
            return false;
        };
        rest = after;
    }
    rest.is_empty() && !text.is_empty()
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
    // SAFETY: `text` is a String, read at once.
    Ok(rb::value(match parse_address(unsafe { string_slice(text) }) {
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

/// The bytes of the String `v`.
///
/// # Safety
/// `v` is a String, and the slice is used before any Ruby call (which could change or free it).
pub unsafe fn string_slice<'a>(v: VALUE) -> &'a [u8] {
    // SAFETY: `v` is a live String (the caller's contract); RSTRING_PTR/LEN describe its bytes.
    unsafe { std::slice::from_raw_parts(rb_sys::RSTRING_PTR(v) as *const u8, rb_sys::RSTRING_LEN(v) as usize) }
}
