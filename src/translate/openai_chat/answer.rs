//! An OpenAI-format endpoint's HTTP answer, re-made as the answer an Anthropic endpoint would
//! have sent, byte for byte as it arrives: the upstream's head and body framing are read here
//! (`http::HeadReader`, `BodyTracker`), and what comes out is an HTTP/1.1 response the rest of
//! qcc reads exactly as it reads any endpoint's (hold, usage, in-stream errors, failover).
//!
//! A 200 event stream goes out as it is translated (`stream.rs`), chunked (framed by the close
//! for an HTTP/1.0 client); any other answer is read whole and goes out at its end with a
//! `content-length`: a reply (`reply.rs`; one that is not a chat completion becomes a 502, a
//! provider's error in a 200 its own error), or an error (`error.rs`, its status kept). The
//! client's `stream` flag decides the shape (`shape.rs`): a whole reply to a stream request is
//! sent as its events, a stream to a request without `stream` is gathered into one reply.

use crate::http::{is_hop_by_hop, BodyFraming, BodyTracker, HeadReader, ResponseHead};

use super::stream::{End, Stream};

/// The most of a non-streamed reply read; past it the answer is refused (a 502).
const WHOLE_MAX: usize = 32 * 1024 * 1024;
/// The most of an error body read (the rest is skipped).
const ERROR_MAX: usize = 64 * 1024;

/// What the client asked for, which decides the answer's shape and framing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// `stream: true`: an event stream.
    pub stream: bool,
    /// An HTTP/1.0 client: no chunked framing (a stream is framed by the close).
    pub http10: bool,
}

#[derive(Debug)]
pub struct Answer {
    head: HeadReader,
    state: State,
    model: String,
    seed: u64,
    wants: Wants,
    /// What went out is framed by the close.
    closing: bool,
    /// Why the answer cannot be read on (the attempt fails with it).
    failed: Option<String>,
    /// Scratch for one feed's translated bytes.
    piece: Vec<u8>,
}

#[derive(Debug)]
enum State {
    Head,
    Stream {
        body: BodyTracker,
        stream: Box<Stream>,
        /// The client did not ask for a stream: the events are gathered here and sent as one
        /// reply at the end.
        gather: Option<Vec<u8>>,
        /// The upstream's head, kept until the gathered reply is written.
        head: Box<ResponseHead>,
    },
    Whole {
        head: Box<ResponseHead>,
        body: BodyTracker,
        bytes: Vec<u8>,
    },
    /// Written whole; anything after is passed on untouched (the connection is then not reused).
    Done,
}

impl Answer {
    /// `model`: what the request asked for (named in the reply until the upstream names its own).
    pub fn new(model: &str, seed: u64, wants: Wants) -> Answer {
        Answer {
            head: HeadReader::default(),
            state: State::Head,
            model: model.to_string(),
            seed,
            wants,
            closing: false,
            failed: None,
            piece: Vec::new(),
        }
    }

    /// Ready for an answer on another connection (the same attempt's fresh-connection retry).
    pub fn reset(&mut self) {
        *self = Answer::new(&self.model, self.seed, self.wants);
    }

    /// Why the answer was cut off or refused, once it was: the attempt ends with it.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// The answer went out framed by the close (a stream to an HTTP/1.0 client) and is whole:
    /// its reader must take it as ended, whether or not the upstream closes.
    pub fn ended_by_close(&self) -> bool {
        self.closing && matches!(self.state, State::Done)
    }

    /// Translate what `raw` holds (it is drained as far as it was used) into `out`.
    pub fn feed(&mut self, raw: &mut Vec<u8>, out: &mut Vec<u8>) {
        if self.failed.is_some() && !matches!(self.state, State::Stream { .. }) {
            raw.clear(); // (said once; the attempt ends with it)
            return;
        }
        loop {
            match &mut self.state {
                State::Head => {
                    let head = match self.head.take(raw, false) {
                        Ok(Some(h)) => h,
                        Ok(None) => return,
                        Err(e) => {
                            self.failed = Some(format!("bad response head: {e}"));
                            raw.clear();
                            return;
                        }
                    };
                    let body = BodyTracker::new(head.framing);
                    let stream = head.status == 200 && content_type_is(&head, b"text/event-stream");
                    if stream {
                        let gather = if self.wants.stream {
                            write_head(out, &head, 200, "text/event-stream; charset=utf-8", self.framing(None));
                            None
                        } else {
                            Some(Vec::new())
                        };
                        let stream = Box::new(Stream::new(&self.model, self.seed));
                        self.state = State::Stream { body, stream, gather, head: Box::new(head) };
                    } else {
                        self.state = State::Whole { head: Box::new(head), body, bytes: Vec::new() };
                    }
                }
                State::Stream { body, stream, gather, .. } => {
                    let piece = gather.as_mut().unwrap_or(&mut self.piece);
                    let fed = body.advance_observing(raw, |data| stream.feed(data, piece));
                    match fed {
                        Ok(n) => drop(raw.drain(..n)),
                        Err(e) => {
                            self.failed = Some(format!("bad chunked body: {e:?}"));
                            return;
                        }
                    }
                    if gather.as_ref().is_some_and(|g| g.len() > WHOLE_MAX) {
                        self.failed = Some("the upstream's stream is over 32 MiB".to_string());
                        self.state = State::Done;
                        raw.clear();
                        return;
                    }
                    let done = body.is_done();
                    if done {
                        self.end_stream(out);
                    } else {
                        chunk(out, &mut self.piece, self.wants.http10);
                        if let Some(f) = stream.failure() {
                            self.failed = Some(f.to_string());
                        }
                    }
                    if !done || raw.is_empty() {
                        return;
                    }
                }
                State::Whole { body, bytes, head } => {
                    let max = if head.status == 200 { WHOLE_MAX } else { ERROR_MAX };
                    let fed = body.advance_observing(raw, |data| {
                        let room = (max + 1).saturating_sub(bytes.len()).min(data.len());
                        bytes.extend_from_slice(&data[..room]);
                    });
                    match fed {
                        Ok(n) => drop(raw.drain(..n)),
                        Err(e) => {
                            self.failed = Some(format!("bad chunked body: {e:?}"));
                            return;
                        }
                    }
                    if !body.is_done() {
                        return;
                    }
                    self.end_whole(out);
                }
                State::Done => {
                    out.append(raw);
                    return;
                }
            }
        }
    }

    /// The upstream closed the connection: the end of a body framed by its close, else a cut.
    pub fn eof(&mut self, raw: &mut Vec<u8>, out: &mut Vec<u8>) {
        self.feed(raw, out);
        match &mut self.state {
            State::Stream { body: BodyTracker::UntilClose, .. } => self.end_stream(out),
            State::Whole { body: BodyTracker::UntilClose, .. } => self.end_whole(out),
            State::Stream { stream, gather, .. } => {
                // Cut: the client is told in the stream; the attempt fails (blamed as any cut).
                stream.end(gather.as_mut().unwrap_or(&mut self.piece));
                chunk(out, &mut self.piece, self.wants.http10);
                self.failed.get_or_insert_with(|| "stream cut before it finished".to_string());
                self.state = State::Done;
            }
            State::Head | State::Whole { .. } | State::Done => {}
        }
    }

    fn end_stream(&mut self, out: &mut Vec<u8>) {
        let State::Stream { stream, gather, head, .. } = &mut self.state else { return };
        let end = stream.end(gather.as_mut().unwrap_or(&mut self.piece));
        match (end, stream.failure()) {
            (End::Error { cut: true }, _) => self.failed = Some("stream ended before it finished".to_string()),
            (End::Error { cut: false }, Some(why)) => self.failed = Some(why.to_string()),
            // An error the upstream reported in its stream is a complete answer (as an
            // Anthropic endpoint's in-stream error is).
            (End::Complete, _) | (End::Error { cut: false }, None) => {}
        }
        if let Some(events) = gather.take() {
            // Nothing was sent: a failure fails the attempt, anything else is one answer.
            if self.failed.is_none() {
                let (status, body) = match crate::translate::shape::events_as_reply(&events) {
                    Ok(reply) => (200, reply),
                    Err(error) => error,
                };
                write_head(out, head, status, "application/json", Framing::Length(body.len()));
                out.extend_from_slice(&body);
            }
        } else {
            chunk(out, &mut self.piece, self.wants.http10);
            if self.failed.is_none() && !self.wants.http10 {
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        self.state = State::Done;
    }

    /// A stream's framing for this client: chunked, or (HTTP/1.0) until the close.
    fn framing(&mut self, length: Option<usize>) -> Framing {
        match length {
            Some(n) => Framing::Length(n),
            None if self.wants.http10 => {
                self.closing = true;
                Framing::Close
            }
            None => Framing::Chunked,
        }
    }

    fn end_whole(&mut self, out: &mut Vec<u8>) {
        let State::Whole { head, bytes, .. } = std::mem::replace(&mut self.state, State::Done) else { return };
        use super::reply::NotAReply;
        let (status, body) = if head.status == 200 {
            if bytes.len() > WHOLE_MAX {
                (502, crate::translate::error::to_messages(502, b"the upstream's reply is over 32 MiB"))
            } else {
                match super::reply::to_messages(&bytes, &self.model, self.seed) {
                    Ok(body) => (200, body),
                    Err(NotAReply::Provider(status, body)) => (status, body),
                    Err(NotAReply::Bad(e)) => (502, crate::translate::error::to_messages(502, e.as_bytes())),
                }
            }
        } else {
            (head.status, crate::translate::error::to_messages(head.status, &bytes[..bytes.len().min(ERROR_MAX)]))
        };
        if status == 200 && self.wants.stream {
            // A whole reply to a stream request: sent as the events that stream it.
            let events = crate::translate::shape::reply_as_events(&body);
            write_head(out, &head, 200, "text/event-stream; charset=utf-8", self.framing(Some(events.len())));
            out.extend_from_slice(&events);
            return;
        }
        write_head(out, &head, status, "application/json", Framing::Length(body.len()));
        out.extend_from_slice(&body);
    }
}

fn content_type_is(head: &ResponseHead, prefix: &[u8]) -> bool {
    head.headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-type"))
        .is_some_and(|(_, v)| crate::http::starts_with_ignore_case(v, prefix))
}

/// How a re-made answer's body is framed.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    /// Until the close (an HTTP/1.0 client's stream).
    Close,
}

/// The head qcc reads on: the upstream's own headers (rate limits, request ids, `retry-after`)
/// minus those that described the body it no longer is; framed as `framing` says;
/// `Connection: close` when the upstream would close or the body ends with the close.
fn write_head(out: &mut Vec<u8>, head: &ResponseHead, status: u16, ctype: &str, framing: Framing) {
    use std::io::Write as _;
    let _ = write!(out, "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\n", crate::http::reason(status));
    for (name, value) in head.headers() {
        let drop = is_hop_by_hop(name)
            || [&b"content-length"[..], b"transfer-encoding", b"content-type", b"content-encoding", b"connection"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h));
        if !drop {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
    match framing {
        Framing::Length(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n"),
        Framing::Close => out.extend_from_slice(b"cache-control: no-cache\r\n"),
    }
    if !head.keep_alive || head.framing == BodyFraming::UntilClose || matches!(framing, Framing::Close) {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `piece` as one chunk of the chunked body (nothing when empty), or as it is when the body is
/// framed by the close (`bare`), and emptied.
fn chunk(out: &mut Vec<u8>, piece: &mut Vec<u8>, bare: bool) {
    if piece.is_empty() {
        return;
    }
    if bare {
        out.append(piece);
        return;
    }
    use std::io::Write as _;
    let _ = write!(out, "{:x}\r\n", piece.len());
    out.append(piece);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` fed whole, then split at every byte: the same answer out (its head and decoded
    /// body: the chunks it is framed in follow the pieces), and the same failure.
    fn every_split(input: &[u8], eof: bool) -> (Vec<u8>, Option<String>) {
        let run = |cut: Option<usize>| {
            let mut a = Answer::new("claude-x", 1, Wants { stream: true, http10: false });
            let (mut raw, mut out) = (Vec::new(), Vec::new());
            let cut = cut.unwrap_or(input.len());
            for piece in [&input[..cut], &input[cut..]] {
                raw.extend_from_slice(piece);
                a.feed(&mut raw, &mut out);
            }
            if eof {
                a.eof(&mut raw, &mut out);
            }
            (out, a.failure().map(str::to_string))
        };
        let whole = run(None);
        for cut in 0..input.len() {
            let (out, failed) = run(Some(cut));
            assert_eq!((decoded(&out), &failed), (decoded(&whole.0), &whole.1), "split at {cut}");
        }
        whole
    }

    /// An answer's head and as much of its body as decodes (raw when it has no head).
    fn decoded(out: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut buf = out.to_vec();
        let Ok(Some(head)) = HeadReader::default().take(&mut buf, false) else { return (out.to_vec(), Vec::new()) };
        let mut body = Vec::new();
        let _ = BodyTracker::new(head.framing).advance_observing(&buf, |d| body.extend_from_slice(d));
        (head.raw, body)
    }

    /// The HTTP response `out` holds, read as qcc reads an upstream's: status, head, decoded body.
    fn read(out: &[u8]) -> (u16, String, String) {
        let mut buf = out.to_vec();
        let head = HeadReader::default().take(&mut buf, false).unwrap().expect("a head");
        let mut tracker = BodyTracker::new(head.framing);
        let mut body = Vec::new();
        let n = tracker.advance_observing(&buf, |d| body.extend_from_slice(d)).unwrap();
        assert!(tracker.is_done() || head.framing == BodyFraming::UntilClose, "body incomplete");
        assert_eq!(n, buf.len(), "nothing after the response");
        (head.status, String::from_utf8_lossy(&head.raw).into_owned(), String::from_utf8(body).unwrap())
    }

    fn chunked(status: &str, ctype: &str, body: &str) -> Vec<u8> {
        let mut r = format!("HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\nx-ratelimit-remaining-requests: 9\r\ntransfer-encoding: chunked\r\n\r\n");
        for piece in body.as_bytes().chunks(7) {
            r.push_str(&format!("{:x}\r\n{}\r\n", piece.len(), std::str::from_utf8(piece).unwrap()));
        }
        r.push_str("0\r\n\r\n");
        r.into_bytes()
    }

    #[test]
    fn a_chunked_stream_becomes_a_chunked_messages_stream_at_every_split() {
        let sse =
            "data: {\"choices\":[{\"delta\":{\"content\":\"hi é\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let (out, failed) = every_split(&chunked("200 OK", "text/event-stream", sse), false);
        assert_eq!(failed, None);
        let (status, head, body) = read(&out);
        assert_eq!(status, 200);
        assert!(head.contains("x-ratelimit-remaining-requests: 9") && head.contains("text/event-stream"), "{head}");
        assert!(
            body.contains("\"text\":\"hi é\"")
                && body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{body}"
        );
    }

    #[test]
    fn errors_replies_and_cuts() {
        let (out, failed) = every_split(
            &chunked("429 Too Many Requests", "application/json", r#"{"error":{"message":"slow"}}"#),
            false,
        );
        let (status, _, body) = read(&out);
        assert_eq!((status, failed), (429, None));
        assert_eq!(body, r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#);
        // A reply that is not a chat completion is a 502 (which fails over).
        let (out, _) = every_split(&chunked("200 OK", "application/json", "{}"), false);
        assert_eq!(read(&out).0, 502);
        // A body framed by the close ends at EOF.
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"length\"}]}\n\n";
        let (out, failed) = every_split(raw, true);
        let (_, head, body) = read(&out);
        assert_eq!(failed, None);
        assert!(head.contains("connection: close") && body.contains("max_tokens"), "{head}{body}");
        // A stream cut mid-body: an error event for the client, and a failure for the attempt.
        let mut cut =
            chunked("200 OK", "text/event-stream", "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n");
        cut.truncate(cut.len() - 5);
        let (out, failed) = every_split(&cut, true);
        assert!(failed.is_some_and(|f| f.contains("cut")));
        assert!(String::from_utf8_lossy(&out).contains("event: error"));
        // Not HTTP at all.
        let (_, failed) = every_split(b"garbage\r\n\r\n", false);
        assert!(failed.is_some_and(|f| f.contains("bad response head")));
    }

    /// Whatever the upstream sends, nothing panics, and a stream's output is events that end.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet: &[&[u8]] = &[
            b"data: ",
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"choices\"",
            b":",
            b",",
            b"\"delta\"",
            b"\"content\"",
            b"\"tool_calls\"",
            b"\"index\"",
            b"0",
            b"1",
            b"\"x\"",
            b"null",
            b"\n",
            b"\r\n",
            b"[DONE]",
            b"\"finish_reason\"",
            b"\"stop\"",
            b"\"function\"",
            b"\"arguments\"",
            b"\"id\"",
            b"\"name\"",
            b"\xff",
            b"\"error\"",
        ];
        for _ in 0..2000 {
            let mut body = Vec::new();
            for _ in 0..(next() % 120) {
                body.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            let mut s = super::super::stream::Stream::new("m", 1);
            let mut out = Vec::new();
            let cut = (next() as usize) % (body.len() + 1);
            s.feed(&body[..cut], &mut out);
            s.feed(&body[cut..], &mut out);
            s.end(&mut out);
            let text = String::from_utf8(out).expect("UTF-8 out");
            let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
            assert!(last.starts_with("event: message_stop") || last.starts_with("event: error"), "{text}");
        }
    }
}
