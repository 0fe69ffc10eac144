//! Header field names as Rack env keys (the CGI convention): `Content-Type` → CONTENT_TYPE,
//! `Content-Length` → CONTENT_LENGTH, any other `X-Name` → HTTP_X_NAME.

/// The env key of a field name, or None for a name with an underscore: `X_Forwarded_For` and
/// `X-Forwarded-For` would both be HTTP_X_FORWARDED_FOR, so a client could smuggle one past a
/// proxy that checks the other; such fields are dropped, as nginx and Puma 6 do.
pub fn env_key(name: &[u8]) -> Option<Vec<u8>> {
    if name.contains(&b'_') {
        return None;
    }
    let upper = |b: &u8| if *b == b'-' { b'_' } else { b.to_ascii_uppercase() };
    if name.eq_ignore_ascii_case(b"content-type") || name.eq_ignore_ascii_case(b"content-length") {
        return Some(name.iter().map(upper).collect());
    }
    let mut key = Vec::with_capacity(5 + name.len());
    key.extend_from_slice(b"HTTP_");
    key.extend(name.iter().map(upper));
    Some(key)
}
