//! Parsing an upstream's response head and deciding how its body is framed.

use super::framing::{response_framing, trim, FramingHeaders};
use super::request::{connection_has, head_len, offset};
use super::{BodyFraming, HeadError, HeaderPos, MAX_HEADERS};
use std::ops::Range;

/// A complete response head; `raw` holds exactly the head bytes.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub raw: Vec<u8>,
    pub status: u16,
    /// The reason phrase as the upstream sent it (position in `raw`).
    pub reason: Range<usize>,
    pub headers: Vec<HeaderPos>,
    pub framing: BodyFraming,
    /// The upstream will keep the connection open after the body.
    pub keep_alive: bool,
    /// `Retry-After` in whole seconds, when given as delta-seconds.
    pub retry_after_secs: Option<u64>,
}

impl ResponseHead {
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers.iter().map(|h| (&self.raw[h.name.clone()], &self.raw[h.value.clone()]))
    }
    pub fn reason(&self) -> &[u8] {
        &self.raw[self.reason.clone()]
    }
}

/// Parse a response head at the start of `buf`. `request_was_head` (the request method was
/// HEAD) forces an empty body, as do 1xx, 204 and 304. `Ok(None)`: incomplete, read more.
/// On a connection, go through its [`super::HeadScan`].
pub fn parse_response_head(buf: &[u8], request_was_head: bool) -> Result<Option<ResponseHead>, HeadError> {
    // Uninitialised slots: filling 100 empty headers on every parse cost more than parsing.
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let Some(len) = head_len(parsed, buf.len())? else { return Ok(None) };
    let (Some(version), Some(status), Some(reason)) = (resp.version, resp.code, resp.reason) else {
        return Err(HeadError::Malformed("incomplete status line"));
    };
    // (an empty reason may not point into `buf`)
    let reason = if reason.is_empty() { 0..0 } else { offset(buf, reason.as_bytes()) };
    let headers: Vec<HeaderPos> = resp
        .headers
        .iter()
        .map(|h| HeaderPos { name: offset(buf, h.name.as_bytes()), value: offset(buf, h.value) })
        .collect();
    let pairs = || resp.headers.iter().map(|h| (h.name.as_bytes(), h.value));
    let framing = response_framing(status, request_was_head, &FramingHeaders::collect(pairs()))?;
    let persistent =
        if version == 0 { connection_has(pairs(), b"keep-alive") } else { !connection_has(pairs(), b"close") };
    let retry_after_secs = pairs()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"retry-after"))
        .and_then(|(_, v)| std::str::from_utf8(trim(v)).ok()?.parse::<u64>().ok());
    Ok(Some(ResponseHead {
        raw: buf[..len].to_vec(),
        status,
        reason,
        headers,
        framing,
        keep_alive: persistent && framing != BodyFraming::UntilClose,
        retry_after_secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_at_every_offset() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello";
        let whole = parse_response_head(input, false).unwrap().unwrap();
        assert_eq!(whole.status, 200);
        assert!(whole.keep_alive);
        assert_eq!(whole.framing, BodyFraming::Chunked);
        for split in 0..input.len() {
            match parse_response_head(&input[..split], false).unwrap() {
                None => {}
                Some(h) => assert_eq!(h.raw, whole.raw),
            }
        }
    }

    #[test]
    fn framing_keepalive_retry_after() {
        let p = |s: &str| parse_response_head(s.as_bytes(), false).unwrap().unwrap();
        let h = p("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n");
        assert_eq!((h.status, h.retry_after_secs, h.framing), (429, Some(7), BodyFraming::Length(2)));
        assert_eq!(p("HTTP/1.1 503 x\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n").retry_after_secs, None);
        let h = p("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (BodyFraming::UntilClose, false));
        assert!(!p("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(!p("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert_eq!(p("HTTP/1.1 204 No Content\r\n\r\n").framing, BodyFraming::None);
        let head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).unwrap().unwrap();
        assert_eq!(head.framing, BodyFraming::None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_response_head(b"NOT HTTP\r\n\r\n", false).is_err());
        assert!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false).is_err()
        );
    }
}
