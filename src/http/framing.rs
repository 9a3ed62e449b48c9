//! Body framing, decided once from a head, and the tracker that finds where a body ends.
//!
//! The request-smuggling guards live here, in `request_framing`.

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::HeadError;

/// How a message body is delimited. `Length(0)` is reported as `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    /// Response only: the body runs until the upstream closes.
    UntilClose,
}

/// What the framing headers of a head say, gathered in one pass (without allocating).
#[derive(Debug, Default)]
pub struct FramingHeaders<'a> {
    /// The first `Content-Length` value, and how many there were.
    content_length: Option<&'a [u8]>,
    lengths: usize,
    /// The first `Transfer-Encoding` value, how many there were, and the last coding any of
    /// them names.
    transfer_encoding: Option<&'a [u8]>,
    encodings: usize,
    last_coding: Option<&'a [u8]>,
}

impl<'a> FramingHeaders<'a> {
    pub fn collect(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut f = FramingHeaders::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"content-length") {
                f.content_length = f.content_length.or(Some(value));
                f.lengths += 1;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                f.transfer_encoding = f.transfer_encoding.or(Some(value));
                f.encodings += 1;
                if let Some(last) = value.split(|&b| b == b',').map(trim).rfind(|c| !c.is_empty()) {
                    f.last_coding = Some(last);
                }
            }
        }
        f
    }

    /// Exactly one Content-Length made of digits; anything else is an error.
    fn length(&self) -> Result<Option<u64>, HeadError> {
        match (self.lengths, self.content_length) {
            (1, Some(one)) => parse_length(trim(one)).map(Some),
            (0, _) => Ok(None),
            _ => Err(HeadError::Malformed("more than one Content-Length")),
        }
    }
}

fn parse_length(v: &[u8]) -> Result<u64, HeadError> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Malformed("invalid Content-Length"));
    }
    v.iter()
        .try_fold(0u64, |acc, &d| acc.checked_mul(10).and_then(|a| a.checked_add(u64::from(d - b'0'))))
        .ok_or(HeadError::Malformed("Content-Length overflows"))
}

/// Request framing with the smuggling guards: Transfer-Encoding with Content-Length,
/// repeated or invalid Content-Length, Transfer-Encoding on HTTP/1.0, and any Transfer-Encoding
/// but a single `chunked` are all rejected.
pub fn request_framing(version_minor: u8, f: &FramingHeaders<'_>) -> Result<BodyFraming, HeadError> {
    if f.encodings > 0 {
        if f.lengths > 0 {
            return Err(HeadError::Malformed("Transfer-Encoding together with Content-Length"));
        }
        if version_minor == 0 {
            return Err(HeadError::Malformed("Transfer-Encoding on HTTP/1.0"));
        }
        // Exactly one `Transfer-Encoding: chunked`: qcc writes the upstream's framing itself, so
        // a coding it would not forward (gzip, identity, a list, an empty line) is refused.
        return match (f.encodings, f.transfer_encoding) {
            (1, Some(one)) if trim(one).eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            _ => Err(HeadError::Malformed("unsupported Transfer-Encoding (only a single \"chunked\" is accepted)")),
        };
    }
    Ok(match f.length()? {
        None | Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
    })
}

/// Response framing (RFC 9112 §6.3): no body for HEAD, 1xx, 204, 304; chunked when it is the
/// last coding (a `Content-Length` beside it is ignored, and not relayed); until close when no
/// length is given. Any other `Transfer-Encoding` (`identity`, `gzip` alone) is an error: relayed,
/// Node's HTTP client (Claude Code's runtime) rejects it, so the attempt fails instead.
pub fn response_framing(status: u16, request_was_head: bool, f: &FramingHeaders<'_>) -> Result<BodyFraming, HeadError> {
    if request_was_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(BodyFraming::None);
    }
    if f.encodings > 0 {
        return match f.last_coding {
            Some(c) if c.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            _ => Err(HeadError::Malformed("response Transfer-Encoding does not end in chunked")),
        };
    }
    Ok(match f.length()? {
        None => BodyFraming::UntilClose,
        Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
    })
}

pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Walks a body as its bytes arrive, without copying them, and says where it ends.
#[derive(Debug, Clone)]
pub enum BodyTracker {
    Done,
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
}

impl BodyTracker {
    pub fn new(framing: BodyFraming) -> BodyTracker {
        match framing {
            BodyFraming::None | BodyFraming::Length(0) => BodyTracker::Done,
            BodyFraming::Length(n) => BodyTracker::Length { remaining: n },
            BodyFraming::Chunked => BodyTracker::Chunked(ChunkedDecoder::new()),
            BodyFraming::UntilClose => BodyTracker::UntilClose,
        }
    }

    /// Consume body bytes from `input`; returns how many belong to this body
    /// (the rest belong to whatever follows on the connection).
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, ChunkedError> {
        match self {
            BodyTracker::Done => Ok(0),
            BodyTracker::UntilClose => Ok(input.len()),
            BodyTracker::Length { remaining } => {
                let n = (input.len() as u64).min(*remaining);
                *remaining -= n;
                if *remaining == 0 {
                    *self = BodyTracker::Done;
                }
                Ok(n as usize)
            }
            BodyTracker::Chunked(d) => {
                let n = d.feed(input)?;
                if d.is_done() {
                    *self = BodyTracker::Done;
                }
                Ok(n)
            }
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, BodyTracker::Done)
    }

    /// A request body tracker: chunks larger than `max_body` are refused from their size line.
    pub fn for_request(framing: BodyFraming, max_body: u64) -> BodyTracker {
        match framing {
            BodyFraming::Chunked => BodyTracker::Chunked(ChunkedDecoder::with_limit(max_body)),
            other => BodyTracker::new(other),
        }
    }

    /// `advance` for a request body, appending what goes upstream to `out`: a length-framed body
    /// as it came, a chunked one re-framed as canonical chunks (`{size:x}\r\n{data}\r\n`, then
    /// `0\r\n\r\n`; extensions and trailers dropped). What the upstream parses is then exactly
    /// what qcc parsed, however the client wrote its chunk lines.
    pub fn advance_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        let chunked = matches!(self, BodyTracker::Chunked(_));
        let n = self.advance_observing(input, |data| {
            if !chunked {
                out.extend_from_slice(data);
            } else if !data.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
        })?;
        if chunked && self.is_done() {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(n)
    }

    /// `advance`, handing the body's payload (chunk data, not chunk lines) to `data` as it passes.
    pub fn advance_observing(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, ChunkedError> {
        let BodyTracker::Chunked(d) = self else {
            let n = self.advance(input)?;
            data(&input[..n]);
            return Ok(n);
        };
        let n = d.feed_data(input, data)?;
        if d.is_done() {
            *self = BodyTracker::Done;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(minor: u8, headers: &[(&str, &str)]) -> Result<BodyFraming, HeadError> {
        let f = FramingHeaders::collect(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        request_framing(minor, &f)
    }

    #[test]
    fn request_guards() {
        assert_eq!(req(1, &[]), Ok(BodyFraming::None));
        assert_eq!(req(1, &[("Content-Length", "0")]), Ok(BodyFraming::None));
        assert_eq!(req(1, &[("Content-Length", " 12 ")]), Ok(BodyFraming::Length(12)));
        assert_eq!(req(1, &[("Transfer-Encoding", "chunked")]), Ok(BodyFraming::Chunked));
        assert_eq!(req(1, &[("Transfer-Encoding", " Chunked ")]), Ok(BodyFraming::Chunked));
        for bad in [
            vec![("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            vec![("Content-Length", "5"), ("Content-Length", "5")],
            vec![("Content-Length", "5, 5")],
            vec![("Content-Length", "-1")],
            vec![("Content-Length", "+5")],
            vec![("Content-Length", "0x10")],
            vec![("Content-Length", "")],
            vec![("Content-Length", "99999999999999999999999")],
            vec![("Transfer-Encoding", "gzip")],
            vec![("Transfer-Encoding", "chunked, gzip")],
            vec![("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
            vec![("Transfer-Encoding", "gzip, chunked")],
            vec![("Transfer-Encoding", "identity, chunked")],
            vec![("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "")],
            vec![("Transfer-Encoding", "")],
        ] {
            assert!(matches!(req(1, &bad), Err(HeadError::Malformed(_))), "{bad:?}");
        }
        assert!(matches!(req(0, &[("Transfer-Encoding", "chunked")]), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn response_rules() {
        let f = |h: &[(&'static str, &'static str)]| {
            FramingHeaders::collect(h.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
        };
        assert_eq!(response_framing(200, true, &f(&[("Content-Length", "5")])), Ok(BodyFraming::None));
        assert_eq!(response_framing(204, false, &f(&[])), Ok(BodyFraming::None));
        assert_eq!(response_framing(304, false, &f(&[("Content-Length", "5")])), Ok(BodyFraming::None));
        assert_eq!(response_framing(200, false, &f(&[])), Ok(BodyFraming::UntilClose));
        assert!(response_framing(200, false, &f(&[("Transfer-Encoding", "gzip")])).is_err());
        assert!(
            response_framing(200, false, &f(&[("Transfer-Encoding", "identity"), ("Content-Length", "3")])).is_err()
        );
        let both = f(&[("Transfer-Encoding", "chunked"), ("Content-Length", "3")]);
        assert_eq!(response_framing(200, false, &both), Ok(BodyFraming::Chunked), "chunked wins");
        assert_eq!(response_framing(200, false, &f(&[("Transfer-Encoding", "chunked")])), Ok(BodyFraming::Chunked));
        assert_eq!(response_framing(200, false, &f(&[("Content-Length", "7")])), Ok(BodyFraming::Length(7)));
        assert!(response_framing(200, false, &f(&[("Content-Length", "7"), ("Content-Length", "8")])).is_err());
    }

    #[test]
    fn tracker_counts_and_stops() {
        let mut t = BodyTracker::new(BodyFraming::Length(5));
        assert_eq!(t.advance(b"abc"), Ok(3));
        assert_eq!(t.advance(b"defgh"), Ok(2));
        assert!(t.is_done());
        assert_eq!(t.advance(b"x"), Ok(0));
        assert!(BodyTracker::new(BodyFraming::Length(0)).is_done());
        let mut c = BodyTracker::new(BodyFraming::Chunked);
        assert_eq!(c.advance(b"1\r\na\r\n0\r\n\r\nNEXT"), Ok(11));
        assert!(c.is_done());
    }

    #[test]
    fn request_chunks_are_rewritten_canonically_at_every_split() {
        let input = b"2 \r\nhi\r\n5;ext=1\r\n, you\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let want = b"2\r\nhi\r\n5\r\n, you\r\n0\r\n\r\n".to_vec();
        for split in 0..=input.len() {
            let mut t = BodyTracker::for_request(BodyFraming::Chunked, 1024);
            let mut out = Vec::new();
            let a = t.advance_into(&input[..split], &mut out).unwrap();
            let b = t.advance_into(&input[a..], &mut out).unwrap();
            assert!(t.is_done(), "split {split}");
            assert_eq!(a + b, input.len() - 4, "split {split}: NEXT belongs to the next request");
            // Data runs may be cut differently; what the upstream decodes is the same.
            let mut d = ChunkedDecoder::new();
            let mut data = Vec::new();
            d.feed_data(&out, |x| data.extend_from_slice(x)).unwrap();
            assert!(d.is_done());
            assert_eq!(data, b"hi, you", "split {split}");
            if split == 0 {
                assert_eq!(out, want);
            }
        }
        // A chunk over the body limit is refused from its size line, before any data.
        let mut t = BodyTracker::for_request(BodyFraming::Chunked, 1024);
        assert!(t.advance_into(b"401\r\n", &mut Vec::new()).is_err());
        let mut t = BodyTracker::for_request(BodyFraming::Chunked, 1 << 40);
        assert!(t.advance_into(b"ffffffffffffffff\r\n", &mut Vec::new()).is_err());
        // A length-framed body is copied as it is.
        let mut t = BodyTracker::for_request(BodyFraming::Length(3), 1024);
        let mut out = Vec::new();
        assert_eq!(t.advance_into(b"abcdef", &mut out).unwrap(), 3);
        assert_eq!(out, b"abc");
    }
}
