//! Reading a Messages response as it passes, without holding back a byte: the events of a
//! `text/event-stream` (what kind each is, an in-stream `error`, token usage), or the `usage`
//! of a JSON reply. Fed the decoded body bytes in whatever pieces they arrive.

use serde::Deserialize;

/// Largest single event (or JSON reply) looked into; a bigger one is passed on unread.
const MAX_EVENT: usize = 64 * 1024;
const MAX_JSON: usize = 1024 * 1024;

/// Token usage of one response, as the API reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Tokens {
    /// One response's counters for the usage book.
    pub fn counts(&self) -> crate::store::usage::Counts {
        crate::store::usage::Counts {
            requests: 1,
            input_tokens: self.input,
            output_tokens: self.output,
            cache_creation_input_tokens: self.cache_creation,
            cache_read_input_tokens: self.cache_read,
        }
    }
}

/// What a stream's events have shown so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// `overloaded_error`: counted like a 529.
    Overloaded,
    /// Any other error type: counted like a 500.
    Api,
}

/// An event that ends the hold: anything but the leading events (`message_start`,
/// `content_block_start`, `ping`) and `error` — so `content_block_delta` of any kind,
/// `message_delta`, `message_stop`, and any event kind qcc does not know (a stream that is not
/// the Messages API's is never held back for long).
fn is_content(kind: &str) -> bool {
    !matches!(kind, "message_start" | "content_block_start" | "ping" | "error")
}

#[derive(Debug, Default)]
pub struct SseScanner {
    /// The current event's bytes (up to `MAX_EVENT`).
    event: Vec<u8>,
    /// The current event grew past `MAX_EVENT`: skipped to its end.
    oversized: bool,
    /// The previous byte was a line end (`\n`), so another one ends the event.
    at_line_start: bool,
    pub content_seen: bool,
    pub error: Option<StreamError>,
    pub model: Option<String>,
    pub tokens: Tokens,
    /// A `message_start` or `message_delta` reported usage.
    pub has_usage: bool,
}

impl SseScanner {
    pub fn new() -> SseScanner {
        SseScanner { at_line_start: true, ..SseScanner::default() }
    }

    /// Look at the next decoded body bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let end = self.event_end(data);
            let take = end.unwrap_or(data.len());
            if !self.oversized {
                if self.event.len() + take > MAX_EVENT {
                    self.oversized = true;
                    self.event.clear();
                } else {
                    self.event.extend_from_slice(&data[..take]);
                }
            }
            data = &data[take..];
            if end.is_some() {
                if !self.oversized {
                    let event = std::mem::take(&mut self.event);
                    self.on_event(&event);
                    self.event = event;
                    self.event.clear();
                }
                self.oversized = false;
                self.at_line_start = true;
            }
        }
    }

    /// Where the current event ends in `data` (just past the empty line that ends it), if it
    /// does: an empty line is a line end ("\n") at the start of a line, "\r"s before it allowed.
    /// Jumps from line end to line end; only the start of each line is looked at byte by byte.
    fn event_end(&mut self, data: &[u8]) -> Option<usize> {
        let mut at = 0;
        loop {
            if self.at_line_start {
                let blank = data[at..].iter().position(|&b| b != b'\r').map(|i| at + i);
                match blank {
                    None => return None, // nothing but "\r" so far: still at a line start
                    Some(i) if data[i] == b'\n' => return Some(i + 1),
                    Some(i) => {
                        self.at_line_start = false;
                        at = i;
                    }
                }
            }
            match data[at..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    at += i + 1;
                    self.at_line_start = true;
                }
                None => return None,
            }
        }
    }

    fn on_event(&mut self, raw: &[u8]) {
        // Lines, without their line end ("\n", and any "\r" before it).
        let lines = || {
            raw.split(|&b| b == b'\n').map(|line| {
                let keep = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
                &line[..keep]
            })
        };
        let mut kind = None;
        for name in lines().filter_map(|line| line.strip_prefix(b"event:")) {
            kind = Some(name.trim_ascii());
        }
        let Ok(kind) = kind.map(std::str::from_utf8).transpose() else { return };
        // Only the events that carry what we count are parsed (their `data` lines joined); the
        // rest, nearly every event of a stream, are told by name and cost no copy.
        let parsed = match kind {
            Some("message_start" | "message_delta" | "error") | None => {
                let mut data = Vec::new();
                for v in lines().filter_map(|line| line.strip_prefix(b"data:")) {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
                }
                serde_json::from_slice::<EventData>(&data).ok()
            }
            _ => None,
        };
        let Some(kind) = kind.or_else(|| parsed.as_ref().and_then(|v| v.kind.as_deref())) else { return };
        if is_content(kind) {
            self.content_seen = true;
        }
        enum Counted {
            Start,
            Delta,
            Error,
            Other,
        }
        let kind = match kind {
            "message_start" => Counted::Start,
            "message_delta" => Counted::Delta,
            "error" => Counted::Error,
            _ => Counted::Other,
        };
        match (kind, parsed) {
            (Counted::Start, Some(v)) => {
                let Some(msg) = v.message else { return };
                if let Some(m) = msg.model {
                    self.model = Some(m);
                }
                if let Some(u) = msg.usage {
                    self.has_usage = true;
                    self.tokens = u.tokens();
                }
            }
            (Counted::Delta, Some(v)) => {
                if let Some(u) = v.usage {
                    self.has_usage = true;
                    // Cumulative: the last one wins.
                    self.tokens.output = u.output_tokens.0.max(self.tokens.output);
                }
            }
            (Counted::Error, parsed) => {
                let overloaded =
                    parsed.and_then(|v| v.error).and_then(|e| e.kind).is_some_and(|t| t == "overloaded_error");
                self.error = Some(if overloaded { StreamError::Overloaded } else { StreamError::Api });
            }
            _ => {}
        }
    }
}

/// The parts of an event's `data` that are read (typed: unknown fields are skipped unparsed).
#[derive(Deserialize, Default)]
#[serde(default)]
struct EventData {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<MessageData>,
    usage: Option<Usage>,
    error: Option<ErrorData>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MessageData {
    model: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorData {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A `usage` object. A counter that is missing, null or not a whole number counts as 0.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Usage {
    input_tokens: Count,
    output_tokens: Count,
    cache_creation_input_tokens: Count,
    cache_read_input_tokens: Count,
}

impl Usage {
    fn tokens(&self) -> Tokens {
        Tokens {
            input: self.input_tokens.0,
            output: self.output_tokens.0,
            cache_creation: self.cache_creation_input_tokens.0,
            cache_read: self.cache_read_input_tokens.0,
        }
    }
}

/// A token count: any JSON value, read as 0 unless it is a non-negative integer.
#[derive(Default)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
                Ok(Count(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Count, E> {
                Ok(Count(u64::try_from(n).unwrap_or(0)))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_none<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Count, D::Error> {
                Count::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Count, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Count(0))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Count, A::Error> {
                while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(Count(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `usage` and `model` of a JSON Messages reply, read once it is complete.
#[derive(Debug, Default)]
pub struct JsonScanner {
    body: Vec<u8>,
    oversized: bool,
}

impl JsonScanner {
    pub fn feed(&mut self, data: &[u8]) {
        if self.oversized || self.body.len() + data.len() > MAX_JSON {
            self.oversized = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(data);
    }

    /// The model and usage, when the complete body had them. The reply is read as a typed
    /// struct: only `model` and `usage` are kept, everything else (the answer itself) is skipped
    /// unparsed by serde, and strings are decoded as JSON says (an escaped quote in a model name
    /// is part of the name).
    pub fn finish(&self) -> Option<(Option<String>, Tokens)> {
        let reply: Reply = serde_json::from_slice(&self.body).ok()?;
        Some((reply.model, reply.usage?.tokens()))
    }
}

/// The top level of a JSON Messages reply, as far as it is read.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// What is read from a response as it passes.
#[derive(Debug)]
pub enum Scan {
    Sse(SseScanner),
    Json(JsonScanner),
}

impl Scan {
    /// A scanner for a 200 reply to `POST /v1/messages`, by its content type; none for anything
    /// else, or for an encoded (gzip) body, which is passed on unread.
    pub fn for_reply(head: &crate::http::ResponseHead) -> Option<Scan> {
        let header =
            |name: &[u8]| head.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim_ascii());
        if header(b"content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case(b"identity")) {
            return None;
        }
        let ctype = header(b"content-type").unwrap_or_default();
        let is = |prefix: &[u8]| ctype.len() >= prefix.len() && ctype[..prefix.len()].eq_ignore_ascii_case(prefix);
        if is(b"text/event-stream") {
            Some(Scan::Sse(SseScanner::new()))
        } else if is(b"application/json") {
            Some(Scan::Json(JsonScanner::default()))
        } else {
            None
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        match self {
            Scan::Sse(s) => s.feed(data),
            Scan::Json(j) => j.feed(data),
        }
    }

    /// An in-stream `error` event seen so far.
    pub fn error(&self) -> Option<StreamError> {
        match self {
            Scan::Sse(s) => s.error,
            Scan::Json(_) => None,
        }
    }

    /// Model and token usage, once the response is over.
    pub fn usage(&self) -> Option<(Option<String>, Tokens)> {
        match self {
            Scan::Sse(s) if s.has_usage => Some((s.model.clone(), s.tokens.clone())),
            Scan::Sse(_) => None,
            Scan::Json(j) => j.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as the Anthropic API sends it (shape of the published streaming example).
    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":7,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn usage_and_content_at_every_split() {
        let bytes = STREAM.as_bytes();
        for split in 0..=bytes.len() {
            let mut s = SseScanner::new();
            s.feed(&bytes[..split]);
            s.feed(&bytes[split..]);
            assert_eq!(s.model.as_deref(), Some("claude-sonnet-4-5"), "split {split}");
            assert_eq!(s.tokens, Tokens { input: 25, output: 15, cache_creation: 7, cache_read: 100 }, "split {split}");
            assert!(s.content_seen && s.error.is_none());
        }
        // Byte by byte, and with CRLF line ends.
        let mut s = SseScanner::new();
        for b in STREAM.replace('\n', "\r\n").bytes() {
            s.feed(&[b]);
        }
        assert_eq!(s.tokens.output, 15);
    }

    #[test]
    fn content_is_seen_only_at_the_first_content_event() {
        let lead = STREAM.split("event: content_block_delta").next().unwrap();
        let mut s = SseScanner::new();
        s.feed(lead.as_bytes());
        assert!(!s.content_seen, "message_start, content_block_start and ping are not content");
        s.feed(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"x\"}}\n\n");
        assert!(s.content_seen);
    }

    #[test]
    fn in_stream_errors_are_classified() {
        let mut s = SseScanner::new();
        s.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        assert_eq!(s.error, Some(StreamError::Overloaded));
        let mut s = SseScanner::new();
        s.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}\n\n");
        assert_eq!(s.error, Some(StreamError::Api));
    }

    #[test]
    fn oversized_events_are_skipped_not_buffered() {
        let mut s = SseScanner::new();
        let big = format!("event: content_block_delta\ndata: {}\n\n", "x".repeat(200_000));
        s.feed(big.as_bytes());
        assert!(s.event.capacity() <= 2 * MAX_EVENT);
        s.feed(b"event: message_stop\ndata: {}\n\n");
        assert!(s.content_seen);
    }

    #[test]
    fn json_usage() {
        let mut j = JsonScanner::default();
        let body = br#"{"id":"msg_1","type":"message","model":"claude-haiku-4-5","content":[],"usage":{"input_tokens":3,"output_tokens":9,"cache_read_input_tokens":2}}"#;
        for piece in body.chunks(7) {
            j.feed(piece);
        }
        let (model, t) = j.finish().unwrap();
        assert_eq!(model.as_deref(), Some("claude-haiku-4-5"));
        assert_eq!(t, Tokens { input: 3, output: 9, cache_creation: 0, cache_read: 2 });
        // Keys of the same names inside content (a tool input, escaped text) do not fool it.
        let mut j = JsonScanner::default();
        j.feed(br#"{"model":"m1","content":[{"type":"tool_use","input":{"model":"x","usage":{"input_tokens":999}}},{"type":"text","text":"say \"usage\": {\"output_tokens\": 5}"}],"usage":{"input_tokens":4,"output_tokens":6,"server_tool_use":{"web_search_requests":1}}}"#);
        let (model, t) = j.finish().unwrap();
        assert_eq!(model.as_deref(), Some("m1"));
        assert_eq!((t.input, t.output), (4, 6));
        // A counter of an unexpected kind counts as 0; the others still count.
        let mut j = JsonScanner::default();
        j.feed(br#"{"model":"m2","usage":{"input_tokens":1.5,"output_tokens":7,"cache_read_input_tokens":null,"cache_creation_input_tokens":{"ephemeral_5m":3}}}"#);
        let (_, t) = j.finish().unwrap();
        assert_eq!(t, Tokens { input: 0, output: 7, cache_creation: 0, cache_read: 0 });
        // Strings are decoded (an escaped quote belongs to the name), in any key order.
        let mut j = JsonScanner::default();
        j.feed(br#"{"usage":{"input_tokens":2,"output_tokens":3},"content":[],"model":"m\"x\u00e9"}"#);
        let (model, t) = j.finish().unwrap();
        assert_eq!(model.as_deref(), Some("m\"x\u{e9}"));
        assert_eq!((t.input, t.output), (2, 3));
        // Not JSON, or no usage: nothing counted.
        for body in [&br#"{"model":"m","usage":{"input_tokens":1}"#[..], br#"{"model":"m"}"#] {
            let mut j = JsonScanner::default();
            j.feed(body);
            assert!(j.finish().is_none());
        }
    }
}
