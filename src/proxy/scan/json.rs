//! Reading a JSON Messages reply once it is complete: its `model` and `usage`.

use serde::Deserialize;

use super::usage::{Tokens, Usage};

/// Largest JSON reply looked into; a bigger one is passed on unread.
const MAX_JSON: usize = 1024 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

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
