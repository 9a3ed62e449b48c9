//! HTTP/1.1 wire handling: head parsing (httparse), body framing and the chunked decoder.
//!
//! Nothing here does I/O. Parsers take the bytes received so far and answer
//! "need more", "here is the head", or an error that maps to a status code.
//! Heads keep header *offsets* into their own raw bytes, never borrowed slices,
//! so a parsed head can live inside a connection without lifetimes.

pub mod chunked;
pub mod framing;
#[cfg(test)]
mod fuzz;
pub mod request;
pub mod response;
pub mod target;

pub use framing::{BodyFraming, BodyTracker};
pub use request::{parse_request_head, HeadScan, RequestHead};
#[cfg(test)]
pub use response::parse_response_head;
pub use response::{HeadReader, ResponseHead};

use std::ops::Range;

/// Largest request or response head we accept (request line / status line + headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields we accept in one head.
pub const MAX_HEADERS: usize = 100;

/// One header field: byte ranges of its name and value inside the head's `raw` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPos {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

/// Why a head could not be accepted. Each maps to exactly one status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x, bad token, bad header line, bad framing, smuggling attempt: 400.
    Malformed(&'static str),
    /// Head larger than [`MAX_HEAD_BYTES`]: 431.
    TooLarge,
    /// More than [`MAX_HEADERS`] header fields: 431.
    TooManyHeaders,
    /// A method qcc does not serve (`CONNECT`): 405.
    NotAllowed(&'static str),
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            HeadError::Malformed(_) => 400,
            HeadError::TooLarge | HeadError::TooManyHeaders => 431,
            HeadError::NotAllowed(_) => 405,
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Malformed(why) => write!(f, "malformed head: {why}"),
            HeadError::TooLarge => write!(f, "head larger than {MAX_HEAD_BYTES} bytes"),
            HeadError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} header fields"),
            HeadError::NotAllowed(why) => write!(f, "method not allowed: {why}"),
        }
    }
}

/// Hop-by-hop headers: meaningful for one connection only, never forwarded.
/// (`Content-Length` and `Transfer-Encoding` are framing, decided by qcc, never hop-by-hop.)
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    // (and `proxy-connection`, `proxy-authenticate`, `proxy-authorization`: every `proxy-*`)
    const HOP: [&[u8]; 5] = [b"connection", b"keep-alive", b"te", b"trailer", b"upgrade"];
    if name.len() > 6 && name[..6].eq_ignore_ascii_case(b"proxy-") {
        return true;
    }
    // Every header of every message passes here: most are told apart by their length alone.
    matches!(name.len(), 2 | 7 | 10) && HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether `s` begins with `prefix`, ASCII case ignored (header names, content types).
pub fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The reason phrase qcc writes for a status (empty for one it does not name).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
