//! The Parser object: the server's limits, and the two methods that read a Ruby String.
use magnus::{scan_args, DataTypeFunctions, Error, TypedData, Value};
use rb_sys::VALUE;

use super::chunk::parse_chunk_size;
use super::request::{parse_head, Head, Limits};
use crate::ruby::value::{self as rb, raw};

#[derive(TypedData)]
#[magnus(class = "UringMachine::HTTP::Parser", free_immediately, size)]
pub struct Parser {
    limits: Limits,
}

impl DataTypeFunctions for Parser {}

/// An optional Integer keyword within 1..=max.
fn limit(value: Option<Value>, name: &str, default: usize, max: i64) -> Result<usize, Error> {
    match value {
        None => Ok(default),
        Some(v) => Ok(rb::int_arg(raw(v), name, 1, max)? as usize),
    }
}

/// Calls `parse` with `buffer`'s bytes from `offset` on (and that offset). `parse` is pure
/// Rust: no call into Ruby happens while the slice lives, so GC cannot move the bytes.
fn with_bytes<T>(buffer: VALUE, offset: Option<Value>, parse: impl FnOnce(usize, &[u8]) -> T) -> Result<T, Error> {
    if !rb::is_string(buffer) {
        return Err(rb::type_error("buffer must be a String"));
    }
    // SAFETY: `buffer` is a String (checked above): RSTRING_LEN reads its header.
    let len = unsafe { rb_sys::RSTRING_LEN(buffer) } as i64;
    let from = match offset {
        None => 0,
        Some(v) => rb::int_arg(raw(v), "offset", 0, len)?,
    };
    // SAFETY: `buffer` is a live String (an argument of the running method) whose bytes are
    // ptr..ptr+len, and 0 <= from <= len; the slice is only used by `parse`, which makes no
    // call into Ruby, so nothing can change or move the bytes meanwhile.
    let bytes = unsafe {
        let ptr = rb_sys::RSTRING_PTR(buffer) as *const u8;
        std::slice::from_raw_parts(ptr.add(from as usize), (len - from) as usize)
    };
    Ok(parse(from as usize, bytes))
}

impl Parser {
    /// Parser.new(max_request_line: 8192, max_head_bytes: 65536, max_headers: 100)
    pub fn rb_new(args: &[Value]) -> Result<Parser, Error> {
        let args = scan_args::scan_args::<(), (), (), (), _, ()>(args)?;
        type Kw = (Option<Value>, Option<Value>, Option<Value>);
        let kw = scan_args::get_kwargs::<_, (), Kw, ()>(
            args.keywords,
            &[],
            &["max_request_line", "max_head_bytes", "max_headers"],
        )?;
        let (line, head, headers) = kw.optional;
        Ok(Parser {
            limits: Limits {
                max_request_line: limit(line, "max_request_line", 8192, 1 << 20)?,
                max_head_bytes: limit(head, "max_head_bytes", 65536, 1 << 24)?,
                max_headers: limit(headers, "max_headers", 100, 10_000)?,
            },
        })
    }

    /// parse_request(buffer, offset = 0): nil while the head is incomplete, else
    /// [method, target, minor_version, env, end_offset] where env holds the fields as Rack env
    /// keys. Raises ParseError (and its subclasses for the limits).
    pub fn rb_parse_request(&self, args: &[Value]) -> Result<Value, Error> {
        let args = scan_args::scan_args::<(Value,), (Option<Value>,), (), (), (), ()>(args)?;
        let buffer = raw(args.required.0);
        let limits = self.limits;
        let (from, parsed) = with_bytes(buffer, args.optional.0, |from, bytes| (from, parse_head(bytes, limits)))?;
        match parsed {
            Ok(None) => Ok(rb::value(rb::NIL)),
            Ok(Some(head)) => head_to_ruby(head, from).map(rb::value),
            Err(e) => Err(e.into_error()),
        }
    }

    /// parse_chunk_size(buffer, offset = 0): nil while the size line is incomplete, else
    /// [size, end_offset] (the chunk's data starts at end_offset). Raises ParseError.
    pub fn rb_parse_chunk_size(&self, args: &[Value]) -> Result<Value, Error> {
        let args = scan_args::scan_args::<(Value,), (Option<Value>,), (), (), (), ()>(args)?;
        let buffer = raw(args.required.0);
        let max_line = self.limits.max_request_line;
        let (from, parsed) = with_bytes(buffer, args.optional.0, |from, bytes| {
            (from, parse_chunk_size(bytes, max_line))
        })?;
        let Some((size, length)) = parsed? else {
            return Ok(rb::value(rb::NIL));
        };
        let pair = rb::ary_new_capa(2)?;
        rb::ary_push(pair, rb::uinteger(size)?)?;
        rb::ary_push(pair, rb::integer((from + length) as i64)?)?;
        Ok(rb::value(pair))
    }

    pub fn rb_max_request_line(&self) -> usize {
        self.limits.max_request_line
    }

    pub fn rb_max_head_bytes(&self) -> usize {
        self.limits.max_head_bytes
    }

    pub fn rb_max_headers(&self) -> usize {
        self.limits.max_headers
    }
}

/// The Ruby Array of a parsed head that started at `from`.
fn head_to_ruby(head: Head, from: usize) -> Result<VALUE, Error> {
    let env = rb::hash_new()?;
    for (key, value) in &head.fields {
        // Field names are tokens (ASCII), which httparse checks: always valid UTF-8.
        let key = rb::str_new(&String::from_utf8_lossy(key))?;
        rb::hash_aset(env, key, rb::bytes_new(value)?)?;
    }
    let result = rb::ary_new_capa(5)?;
    rb::ary_push(result, rb::bytes_new(&head.method)?)?;
    rb::ary_push(result, rb::bytes_new(&head.target)?)?;
    rb::ary_push(result, rb::int(head.minor_version as i64))?;
    rb::ary_push(result, env)?;
    rb::ary_push(result, rb::integer((from + head.length) as i64)?)?;
    Ok(result)
}
