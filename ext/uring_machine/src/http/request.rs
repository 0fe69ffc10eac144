//! A request head parsed from bytes into owned parts, with the server's limits applied. Pure
//! Rust: the caller may hand it the bytes of a Ruby String, since nothing here calls Ruby.
use super::env_key::env_key;
use super::errors::HeadError;

/// The limits a head is checked against.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_request_line: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
}

/// A complete head: the request line's parts, the fields as (env key, value) with repeated
/// names joined, and the head's length in bytes (the body, or the next request, follows).
pub struct Head {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub minor_version: u8,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub length: usize,
}

/// The head at the start of `bytes`: Ok(None) while it is incomplete and within the limits.
pub fn parse_head(bytes: &[u8], limits: Limits) -> Result<Option<Head>, HeadError> {
    check_request_line(bytes, limits.max_request_line)?;
    let window = &bytes[..bytes.len().min(limits.max_head_bytes)];
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut request = httparse::Request::new(&mut headers);
    let length = match request.parse(window) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if window.len() < limits.max_head_bytes => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(HeadError::HeadTooLarge(limits.max_head_bytes)),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders(limits.max_headers)),
        Err(e) => return Err(HeadError::Invalid(format!("invalid request head: {e}"))),
    };
    let (Some(method), Some(target), Some(minor_version)) = (request.method, request.path, request.version) else {
        return Err(HeadError::Invalid("incomplete request line".into()));
    };
    Ok(Some(Head {
        method: method.as_bytes().to_vec(),
        target: target.as_bytes().to_vec(),
        minor_version,
        fields: env_fields(request.headers),
        length,
    }))
}

/// The request line (after the empty lines a client may send first, which httparse skips)
/// must end within `max` bytes.
fn check_request_line(bytes: &[u8], max: usize) -> Result<(), HeadError> {
    let start = bytes
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[start..];
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    if end > max {
        return Err(HeadError::RequestLineTooLong(max));
    }
    Ok(())
}

/// The fields as env keys and values; a repeated field is one, its values joined by ", "
/// (by "; " for Cookie, whose values are lists with that separator).
fn env_fields(headers: &[httparse::Header]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(headers.len());
    for header in headers {
        let Some(key) = env_key(header.name.as_bytes()) else {
            continue;
        };
        match fields.iter_mut().find(|(k, _)| *k == key) {
            Some((_, value)) => {
                value.extend_from_slice(if key == b"HTTP_COOKIE" { b"; " } else { b", " });
                value.extend_from_slice(header.value);
            }
            None => fields.push((key, header.value.to_vec())),
        }
    }
    fields
}
