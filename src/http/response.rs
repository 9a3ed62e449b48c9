//! Parsing an upstream's response head and deciding how its body is framed.

use super::framing::{response_framing, trim, FramingHeaders};
use super::request::{connection_has, head_len, offset};
use super::{BodyFraming, HeadError, HeadScan, HeaderPos, MAX_HEADERS, MAX_HEAD_BYTES};
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

/// Interim (1xx) responses skipped before a final one, at most, and their bytes together: a
/// peer that sends `100 Continue` without end is a broken peer, not a slow one.
pub const MAX_INTERIM: u32 = 8;
pub const MAX_INTERIM_BYTES: usize = 16 * 1024;

/// How every reader of an upstream's answer (a proxied attempt, a probe, an alert, the CLI's
/// client) finds the final response head on a connection: interim responses skipped within
/// `MAX_INTERIM`/`MAX_INTERIM_BYTES`, a `101` refused, each byte scanned once (`HeadScan`).
#[derive(Debug, Default, Clone, Copy)]
pub struct HeadReader {
    scan: HeadScan,
    interims: u32,
    interim_bytes: usize,
}

impl HeadReader {
    /// Take the final response head off the front of `buf` (interim ones before it go too).
    /// `Ok(None)`: incomplete, read more. Ready for the connection's next response after.
    pub fn take(&mut self, buf: &mut Vec<u8>, request_was_head: bool) -> Result<Option<ResponseHead>, HeadError> {
        loop {
            let head = match self.scan.parse(buf, |b| parse_response_head(b, request_was_head))? {
                None if buf.len() > MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
                None => return Ok(None),
                Some(h) => h,
            };
            buf.drain(..head.raw.len());
            if !(100..200).contains(&head.status) {
                *self = HeadReader::default();
                return Ok(Some(head));
            }
            if head.status == 101 {
                return Err(HeadError::Malformed("unexpected 101 upgrade"));
            }
            self.interims += 1;
            self.interim_bytes += head.raw.len();
            if self.interims > MAX_INTERIM || self.interim_bytes > MAX_INTERIM_BYTES {
                return Err(HeadError::Malformed("too many interim (1xx) responses"));
            }
        }
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
    fn interim_responses_are_skipped_within_a_bound() {
        let mut r = HeadReader::default();
        let mut buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec();
        assert_eq!(r.take(&mut buf, false).unwrap().unwrap().status, 200);
        assert_eq!(buf, b"ok");
        // Split at every offset: the same final head, the same rest.
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nx";
        for split in 0..input.len() {
            let (mut r, mut buf) = (HeadReader::default(), input[..split].to_vec());
            let first = r.take(&mut buf, false).unwrap();
            buf.extend_from_slice(&input[split..]);
            let head = first.or_else(|| r.take(&mut buf, false).unwrap()).expect("a head");
            assert_eq!((head.status, buf.as_slice()), (204, &b"x"[..]), "split at {split}");
        }
        let flood = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM as usize + 1);
        assert!(HeadReader::default().take(&mut flood.clone(), false).is_err(), "one too many");
        let mut fed = HeadReader::default();
        let mut buf = Vec::new();
        let mut failed = false;
        for _ in 0..=MAX_INTERIM {
            buf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            failed |= fed.take(&mut buf, false).is_err();
        }
        assert!(failed, "counted across reads too");
        let big = format!("HTTP/1.1 100 Continue\r\nx: {}\r\n\r\n", "a".repeat(MAX_INTERIM_BYTES));
        assert!(HeadReader::default().take(&mut big.into_bytes(), false).is_err(), "bounded in bytes");
        assert!(HeadReader::default().take(&mut b"HTTP/1.1 101 Switching\r\n\r\n".to_vec(), false).is_err());
    }

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
