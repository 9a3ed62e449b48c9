//! Reading a Messages event stream as it passes, without holding back a byte: what kind each
//! event is, an in-stream `error`, token usage. Fed the decoded body bytes in whatever pieces
//! they arrive.

use serde::Deserialize;

use super::usage::{Tokens, Usage};

/// Largest single event looked into; a bigger one is passed on unread.
const MAX_EVENT: usize = 64 * 1024;

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
    /// A `message_delta` reported the final output count.
    pub final_usage: bool,
    /// Output tokens estimated from the `content_block_delta` events seen (what a stream cut
    /// short is charged when its final count never came): about four bytes of delta text a
    /// token, at least one a delta.
    pub estimated_output: u64,
}

/// The bytes of a `content_block_delta` event that are not its text (`event:` and `data:`
/// lines, the JSON around the delta), left out of the estimate.
const DELTA_ENVELOPE: usize = 100;

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
        if kind == "content_block_delta" {
            let text = raw.len().saturating_sub(DELTA_ENVELOPE) as u64;
            self.estimated_output = self.estimated_output.saturating_add((text / 4).max(1));
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
                    // Cumulative: the last one wins. Input counts too when a delta has them (a
                    // translated stream reports all its usage at the end).
                    let t = u.tokens();
                    self.tokens.output = t.output.max(self.tokens.output);
                    self.tokens.input = t.input.max(self.tokens.input);
                    self.tokens.cache_read = t.cache_read.max(self.tokens.cache_read);
                    self.tokens.cache_creation = t.cache_creation.max(self.tokens.cache_creation);
                    self.final_usage = true;
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
}
