//! Parsing a client's request head and deciding how its body is framed.

use std::ops::Range;

use super::framing::{request_framing, trim, FramingHeaders};
use super::{BodyFraming, HeadError, HeaderPos, MAX_HEADERS, MAX_HEAD_BYTES};

/// A complete, validated request head. `raw` holds exactly the head bytes
/// (request line through the blank line); header positions index into it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub raw: Vec<u8>,
    pub method: Range<usize>,
    /// The origin-form part of the target (`/path?query`; empty for `http://host`), checked by
    /// `http::target`.
    pub target: Range<usize>,
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
        // httparse validated the method as a token, so it is ASCII.
        std::str::from_utf8(self.method_bytes()).unwrap_or("")
    }
    pub fn target(&self) -> &str {
        std::str::from_utf8(self.target_bytes()).unwrap_or("")
    }
    /// The method and target as bytes: for comparisons and copies on the request path (no UTF-8
    /// check each time).
    pub fn method_bytes(&self) -> &[u8] {
        &self.raw[self.method.clone()]
    }
    pub fn target_bytes(&self) -> &[u8] {
        &self.raw[self.target.clone()]
    }
    /// The target without its query (`/v1/messages` of `/v1/messages?beta=true`).
    pub fn path_bytes(&self) -> &[u8] {
        let target = self.target_bytes();
        target.split(|&b| b == b'?').next().unwrap_or(target)
    }
    /// Iterate (name, value) pairs in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers.iter().map(|h| (&self.raw[h.name.clone()], &self.raw[h.value.clone()]))
    }
    /// First value of a header, case-insensitive name.
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }
}

/// Where the search for the end of a head resumes: the bytes before it hold no blank line.
/// Kept per connection, so a head that arrives a few bytes at a time is scanned once in all and
/// httparse runs only once a head can be complete (a 60 KB head in 30,000 writes would otherwise
/// cost 30,000 scans and parses from the start).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeadScan(usize);

impl HeadScan {
    /// Whether `buf` may hold a complete head: a blank line (LF LF, or LF CR LF) appeared. A
    /// short buffer is always parsed, so garbage is refused at once, not at the header timeout.
    fn ready(&mut self, buf: &[u8]) -> bool {
        if buf.len() <= 1024 {
            return true;
        }
        // A blank line can straddle the previous end by two bytes.
        let from = self.0.saturating_sub(2).min(buf.len());
        let mut rest = &buf[from..];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            rest = &rest[i + 1..];
            if rest.first() == Some(&b'\n') || rest.starts_with(b"\r\n") {
                return true;
            }
            if rest.len() < 2 && (rest.is_empty() || rest[0] == b'\r') {
                break; // may still become a blank line
            }
        }
        self.0 = buf.len();
        false
    }

    /// Run `parse` on `buf` only when a head can be complete there; remember what was scanned.
    pub(crate) fn parse<T>(
        &mut self,
        buf: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<Option<T>, HeadError>,
    ) -> Result<Option<T>, HeadError> {
        if !self.ready(buf) {
            return if buf.len() > MAX_HEAD_BYTES { Err(HeadError::TooLarge) } else { Ok(None) };
        }
        let parsed = parse(buf);
        match &parsed {
            // (leading empty lines: httparse wants more; nothing before here needs a new look)
            Ok(None) => self.0 = buf.len(),
            _ => *self = HeadScan::default(),
        }
        parsed
    }
}

pub(crate) fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

pub(crate) fn map_error(e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
        httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
        httparse::Error::Status => HeadError::Malformed("invalid status"),
        httparse::Error::Token => HeadError::Malformed("invalid token"),
        httparse::Error::Version => HeadError::Malformed("unsupported HTTP version"),
    }
}

/// The head length from an httparse result: `None` while incomplete, an error once `buf` is
/// over the limit without a complete head, or the head itself is.
pub(crate) fn head_len(parsed: httparse::Result<usize>, buf_len: usize) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Partial) if buf_len > MAX_HEAD_BYTES => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Err(e) => Err(map_error(e)),
    }
}

/// Whether `Connection` lists `token`.
pub(crate) fn connection_has<'a>(mut headers: impl Iterator<Item = (&'a [u8], &'a [u8])>, token: &[u8]) -> bool {
    headers.any(|(n, v)| {
        n.eq_ignore_ascii_case(b"connection") && v.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(token))
    })
}

/// Parse the head at the start of `buf`. `Ok(None)`: incomplete, read more.
/// Oversize heads are an error as soon as `buf` proves them. On a connection, go through the
/// connection's [`HeadScan`] (`scan.parse(buf, parse_request_head)`).
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    // Uninitialised slots: filling 100 empty headers on every parse cost more than parsing.
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let Some(len) = head_len(req.parse_with_uninit_headers(buf, &mut slots), buf.len())? else { return Ok(None) };
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    if path.is_empty() {
        return Err(HeadError::Malformed("empty request target"));
    }
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        if h.value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err(HeadError::Malformed("invalid header value"));
        }
        headers.push(HeaderPos { name: offset(buf, h.name.as_bytes()), value: offset(buf, h.value) });
    }
    let pairs = || req.headers.iter().map(|h| (h.name.as_bytes(), h.value));
    let framing = request_framing(version, &FramingHeaders::collect(pairs()))?;
    let keep_alive =
        if version == 0 { connection_has(pairs(), b"keep-alive") } else { !connection_has(pairs(), b"close") };
    let expect_continue =
        pairs().any(|(n, v)| n.eq_ignore_ascii_case(b"expect") && trim(v).eq_ignore_ascii_case(b"100-continue"));
    let target = super::target::origin_form(buf, method, offset(buf, path.as_bytes()))?;
    Ok(Some(RequestHead {
        raw: buf[..len].to_vec(),
        method: offset(buf, method.as_bytes()),
        target,
        version_minor: version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix is incomplete (or the same error); the whole gives the same result.
    /// (method, target, framing, keep_alive, head length)
    type Summary = (String, String, BodyFraming, bool, usize);

    fn all_splits(input: &[u8]) -> Result<Option<Summary>, HeadError> {
        let summarize = |r: Result<Option<RequestHead>, HeadError>| {
            r.map(|o| o.map(|h| (h.method().to_string(), h.target().to_string(), h.framing, h.keep_alive, h.raw.len())))
        };
        let whole = summarize(parse_request_head(input));
        for split in 0..input.len() {
            let part = summarize(parse_request_head(&input[..split]));
            match (&part, &whole) {
                (Ok(None), _) => {}
                (Err(a), Err(b)) if a == b => {}
                (Ok(Some(a)), Ok(Some(b))) if a == b => {} // complete before the trailing bytes
                _ => panic!("prefix {split}: {part:?} vs whole {whole:?}"),
            }
        }
        whole
    }

    #[test]
    fn parses_a_messages_request() {
        let input = b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\ncontent-length: 2\r\n\r\n{}";
        let r = all_splits(input).unwrap().unwrap();
        assert_eq!(r, ("POST".into(), "/v1/messages?beta=true".into(), BodyFraming::Length(2), true, input.len() - 2));
        let h = parse_request_head(input).unwrap().unwrap();
        assert_eq!(h.header("X-API-KEY"), Some(&b"k"[..]));
        assert_eq!(h.headers().count(), 3);
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &str| parse_request_head(s.as_bytes()).unwrap().unwrap().keep_alive;
        assert!(ka("GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        let h = parse_request_head(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.expect_continue);
    }

    #[test]
    fn errors_map_to_status() {
        let st = |s: &[u8]| parse_request_head(s).err().map(|e| e.status());
        assert_eq!(st(b"GARBAGE\r\n\r\n"), Some(400));
        assert_eq!(st(b"GET / HTTP/2.0\r\n\r\n"), Some(400));
        assert_eq!(st(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"), Some(400));
        assert_eq!(st(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), Some(400));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request_head(&many).err(), Some(HeadError::TooManyHeaders));
        let mut big = b"GET / HTTP/1.1\r\nx: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(parse_request_head(&big).err(), Some(HeadError::TooLarge));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request_head(&big).err(), Some(HeadError::TooLarge));
    }

    #[test]
    fn split_at_every_offset() {
        all_splits(
            b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n",
        )
        .unwrap();
        all_splits(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").unwrap_err();
    }
}
