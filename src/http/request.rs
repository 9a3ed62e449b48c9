//! Parsing a client's request head and deciding how its body is framed.

use super::{BodyFraming, HeadError, HeaderPos};

/// A complete, validated request head. `raw` holds exactly the head bytes
/// (request line through the blank line); header positions index into it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub raw: Vec<u8>,
    pub method: std::ops::Range<usize>,
    pub target: std::ops::Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    pub headers: Vec<HeaderPos>,
    pub framing: BodyFraming,
    /// Whether the client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

impl RequestHead {
    pub fn method(&self) -> &str {
        todo!()
    }
    pub fn target(&self) -> &str {
        todo!()
    }
    /// Iterate (name, value) pairs in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        std::iter::empty()
    }
    /// First value of a header, case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let _ = name;
        todo!()
    }
}

/// Parse the head at the start of `buf`. `Ok(None)`: incomplete, read more.
/// Errors for oversize heads are returned as soon as `buf` proves them
/// (more than MAX_HEAD_BYTES without a complete head).
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let _ = buf;
    todo!()
}
