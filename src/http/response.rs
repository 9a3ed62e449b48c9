//! Parsing an upstream's response head and deciding how its body is framed.

use super::{BodyFraming, HeadError, HeaderPos};

/// A complete response head; `raw` holds exactly the head bytes.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub raw: Vec<u8>,
    pub status: u16,
    pub version_minor: u8,
    pub headers: Vec<HeaderPos>,
    pub framing: BodyFraming,
    /// The upstream will keep the connection open after the body.
    pub keep_alive: bool,
    /// `Content-Type: text/event-stream`.
    pub event_stream: bool,
    /// `Retry-After` in whole seconds, when given as delta-seconds.
    pub retry_after_secs: Option<u64>,
}

impl ResponseHead {
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        std::iter::empty()
    }
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let _ = name;
        todo!()
    }
}

/// Parse a response head at the start of `buf`. `request_was_head` (the request
/// method was HEAD) forces an empty body, as do 1xx, 204 and 304.
/// `Ok(None)`: incomplete, read more.
pub fn parse_response_head(
    buf: &[u8],
    request_was_head: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    let _ = (buf, request_was_head);
    todo!()
}
