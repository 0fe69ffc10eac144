//! The size line of a chunk in a chunked request body ("1a;ext=x\r\n"), by httparse.
use super::errors::invalid_chunk;
use magnus::Error;

/// Ok(None) while the line is incomplete, else (the chunk's size, the line's length). A line
/// that is still incomplete after `max_line` bytes is an error (a client sending an endless
/// extension).
pub fn parse_chunk_size(bytes: &[u8], max_line: usize) -> Result<Option<(u64, usize)>, Error> {
    let window = &bytes[..bytes.len().min(max_line)];
    match httparse::parse_chunk_size(window) {
        Ok(httparse::Status::Complete((length, size))) => Ok(Some((size, length))),
        Ok(httparse::Status::Partial) if window.len() < max_line => Ok(None),
        Ok(httparse::Status::Partial) => Err(invalid_chunk(&format!("size line longer than {max_line} bytes"))),
        Err(httparse::InvalidChunkSize) => Err(invalid_chunk("bad size line")),
    }
}
