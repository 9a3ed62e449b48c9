//! A Chat Completions event stream turned into a Messages event stream, as the bytes arrive.
//!
//! `Stream::feed` takes the decoded body in any pieces (a chunk may split anywhere, even inside
//! a UTF-8 character: lines are cut on `\n` bytes only) and appends Anthropic SSE bytes to an
//! output buffer; `Stream::end` closes it at the body's end. Whatever the upstream sends, the
//! output is a valid sequence: `message_start`, then per block `content_block_start`, its
//! deltas, `content_block_stop` (one block open at a time), then `message_delta` and
//! `message_stop` — or an `error` event, after which nothing more is written.
//!
//! Tool calls arrive as fragments keyed by `index`. Each call's arguments are held until its
//! block is written: at the message's finish, or when text or thinking follows the calls. They
//! are checked there, joined, to be one JSON object; a call that fails the check ends the
//! stream with an `error` event (a tool never runs with arguments the model did not finish).
//! A new `id` or a new name on an index already used is a new call; a call without an id gets
//! one made from the message's; an id the message already used is made unique.

use serde_json::json;

use super::types::{matched_stop, Chunk, ToolDelta};
use crate::translate::shape::event;

/// The longest line (one chunk's JSON) taken; a longer one ends the stream as malformed.
pub const MAX_LINE: usize = 1024 * 1024;
/// The most one event's `data` lines may hold together, and the most the tool calls' arguments
/// may hold while they wait for their blocks: past either the stream ends as malformed.
pub const MAX_HELD: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Stream {
    /// The current line, when a piece ended inside it.
    line: Vec<u8>,
    /// The current event's `data` (its lines joined with `\n`).
    data: Vec<u8>,
    started: bool,
    /// `message_stop` or an `error` event written: nothing more is.
    ended: bool,
    /// Why the upstream's stream was refused (said in the `error` event written).
    failed: Option<String>,
    /// An `error` event was written.
    errored: bool,
    /// The model the request named, until a chunk names one.
    model: String,
    id: String,
    next_block: u32,
    open: Open,
    calls: Vec<Call>,
    /// The arguments all calls hold, together (bounded by `MAX_HELD`).
    held: usize,
    /// A choice said something (a delta with content or calls, or a finish reason): a stream
    /// that ends without one never answered.
    answered: bool,
    finish: Option<&'static str>,
    /// The stop sequence that ended the message, where the provider said which.
    stop_sequence: Option<String>,
    usage: Usage,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Open {
    #[default]
    None,
    Text(u32),
    Thinking(u32),
}

#[derive(Debug)]
struct Call {
    /// Its `index` in the chunks (the last call with an index owns it).
    index: u64,
    id: String,
    name: String,
    /// Its arguments so far, joined.
    args: String,
    /// Its block was written: nothing more may come for it.
    written: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    input: u64,
    output: u64,
    cache_read: u64,
}

/// A finish reason as a Messages `stop_reason`.
pub(super) fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// How a stream ended at the body's end.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// `message_stop` written: a complete message.
    Complete,
    /// An `error` event written: the upstream's error, a malformed chunk, or a stream cut before
    /// its finish (`cut`).
    Error { cut: bool },
}

impl Stream {
    /// `model`: what the request asked for (said until a chunk names the model); `seed` makes the
    /// ids qcc invents unique (the request's number).
    pub fn new(model: &str, seed: u64) -> Stream {
        Stream { model: model.to_string(), id: format!("msg_qcc{seed:x}"), ..Stream::default() }
    }

    /// Why the upstream's stream was refused, once it was.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Take the next decoded body bytes.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() && !self.ended {
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                if self.line.len() + data.len() > MAX_LINE {
                    self.fail(out, "a line over 1 MiB");
                } else {
                    self.line.extend_from_slice(data);
                }
                return;
            };
            if self.line.is_empty() {
                self.on_line(&data[..nl], out);
            } else if self.line.len() + nl > MAX_LINE {
                self.fail(out, "a line over 1 MiB");
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&data[..nl]);
                self.on_line(&line, out);
                line.clear();
                self.line = line;
            }
            data = &data[nl + 1..];
        }
    }

    /// The body ended: a last unterminated event is taken, then the message is closed — with
    /// `message_stop` when a finish reason (or `[DONE]`) came, else as a cut stream.
    pub fn end(&mut self, out: &mut Vec<u8>) -> End {
        if !self.ended && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, out);
        }
        if !self.ended {
            self.dispatch(out);
        }
        if !self.ended {
            if self.finish.is_some() {
                self.finish_message(out);
            } else {
                self.error_event(out, "api_error", "the upstream's stream ended before it finished");
                return End::Error { cut: true };
            }
        }
        if self.errored {
            End::Error { cut: false }
        } else {
            End::Complete
        }
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(out);
        } else if let Some(v) = line.strip_prefix(b"data:") {
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            if self.data.len() + v.len() > MAX_HELD {
                self.fail(out, "an event over 4 MiB");
            } else {
                self.data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
            }
        }
        // `:` comments (keep-alives), `event:`, `id:`, `retry:`: nothing to translate.
    }

    /// An event is complete.
    fn dispatch(&mut self, out: &mut Vec<u8>) {
        if self.data.is_empty() || self.ended {
            self.data.clear();
            return;
        }
        let data = std::mem::take(&mut self.data);
        if data.trim_ascii() == b"[DONE]" {
            self.finish_message(out);
        } else {
            match serde_json::from_slice::<Chunk>(&data) {
                Ok(chunk) => self.on_chunk(chunk, out),
                Err(e) => self.fail(out, &format!("a malformed chunk ({e})")),
            }
        }
        self.data = data;
        self.data.clear();
    }

    fn on_chunk(&mut self, chunk: Chunk, out: &mut Vec<u8>) {
        if let Some(err) = chunk.error {
            let (kind, message) = crate::translate::error::kind_and_message(&err, 0);
            self.error_event(out, kind, &message);
            return;
        }
        if !self.started {
            if let Some(id) = chunk.id.as_deref().filter(|id| !id.is_empty() && id.len() <= 128) {
                self.id = if id.starts_with("msg_") { id.to_string() } else { format!("msg_{id}") };
            }
            if let Some(m) = chunk.model.as_deref().filter(|m| !m.is_empty() && m.len() <= 256) {
                self.model = m.to_string();
            }
            self.start(out);
        }
        if let Some(u) = &chunk.usage {
            let (input, output, cache_read) = u.tokens();
            self.usage = Usage { input, output, cache_read };
        }
        for choice in chunk.choices.into_iter().flatten().filter(|c| c.index.unwrap_or(0) == 0) {
            if let Some(d) = choice.delta {
                self.answered |= !d.reasoning().is_empty()
                    || d.texts().next().is_some()
                    || d.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
                    || d.function_call.is_some();
                if !d.reasoning().is_empty() {
                    self.thinking(d.reasoning(), out);
                }
                for text in d.texts() {
                    self.text(text, out);
                }
                let legacy = d.function_call.map(|f| ToolDelta { index: Some(0), id: None, function: Some(f) });
                for t in d.tool_calls.into_iter().flatten().chain(legacy) {
                    if self.ended {
                        return;
                    }
                    self.tool_fragment(t, out);
                }
            }
            if let Some(f) = choice.finish_reason.as_deref().filter(|f| !f.is_empty()) {
                self.finish = Some(stop_reason(f));
                self.answered = true;
                if f == "stop" {
                    self.stop_sequence = matched_stop(choice.stop_reason);
                }
            }
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        let msg = json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}});
        event(out, "message_start", &msg);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Open::Text(i) if !self.calls_waiting() => i,
            _ => {
                if !self.write_calls(out) {
                    return;
                }
                let i = self.open_block(out, json!({"type": "text", "text": ""}));
                self.open = Open::Text(i);
                i
            }
        };
        delta(out, index, "text_delta", "text", text);
    }

    fn thinking(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Open::Thinking(i) if !self.calls_waiting() => i,
            _ => {
                if !self.write_calls(out) {
                    return;
                }
                let i = self.open_block(out, json!({"type": "thinking", "thinking": "", "signature": ""}));
                self.open = Open::Thinking(i);
                i
            }
        };
        delta(out, index, "thinking_delta", "thinking", text);
    }

    fn tool_fragment(&mut self, t: ToolDelta, out: &mut Vec<u8>) {
        let id = t.id.as_deref().filter(|s| !s.is_empty());
        let f = t.function.as_ref();
        let name = f.and_then(|f| f.name.as_deref()).filter(|n| !n.is_empty());
        let at = match t.index {
            Some(index) => self.calls.iter().rposition(|c| c.index == index),
            None => self.calls.len().checked_sub(1), // no index: the call before, unless a new id
        };
        // The same call goes on while neither its id nor its name changes.
        let same = |c: &Call| id.is_none_or(|id| id == c.id) && name.is_none_or(|n| c.name.is_empty() || n == c.name);
        let at = match at {
            Some(i) if same(&self.calls[i]) => i,
            _ => {
                let n = self.calls.len();
                let index = t.index.unwrap_or(n as u64);
                let mut id =
                    id.map_or_else(|| format!("toolu_{}_{n}", self.id.trim_start_matches("msg_")), str::to_string);
                if self.calls.iter().any(|c| c.id == id) {
                    id = format!("{id}_{n}"); // ids answer calls: two calls never share one
                }
                self.calls.push(Call { index, id, name: String::new(), args: String::new(), written: false });
                n
            }
        };
        if let Some(name) = name {
            if self.calls[at].name.is_empty() {
                self.calls[at].name = name.to_string();
            }
        }
        let Some(args) = f.and_then(|f| f.arguments.as_deref()).filter(|a| !a.is_empty()) else { return };
        let call = &mut self.calls[at];
        if call.written {
            let id = call.id.clone();
            self.fail(out, &format!("arguments for tool call {id} after its block ended"));
        } else if self.held + args.len() > MAX_HELD {
            self.fail(out, "tool call arguments over 4 MiB");
        } else {
            call.args.push_str(args);
            self.held += args.len();
        }
    }

    fn calls_waiting(&self) -> bool {
        self.calls.iter().any(|c| !c.written)
    }

    /// Close the open block, then write each waiting call as its block: its arguments checked to
    /// be one JSON object (none at all is `{}`), then sent in one `input_json_delta`. False: a
    /// call failed its check (or has no name) and the stream ended with an `error` event.
    fn write_calls(&mut self, out: &mut Vec<u8>) -> bool {
        self.close_open(out);
        for at in 0..self.calls.len() {
            if self.calls[at].written {
                continue;
            }
            let call = &mut self.calls[at];
            call.written = true;
            let args = std::mem::take(&mut call.args);
            self.held -= args.len();
            let call = &self.calls[at];
            if call.name.is_empty() {
                let why = format!("tool call {} without a name", call.id);
                self.fail(out, &why);
                return false;
            }
            if let Err(e) = check_arguments(&args) {
                let why =
                    format!("tool call {} ({}) with arguments that are not a JSON object: {e}", call.id, call.name);
                self.fail(out, &why);
                return false;
            }
            let block = json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
            let index = self.open_block(out, block);
            if !args.trim_ascii().is_empty() {
                delta(out, index, "input_json_delta", "partial_json", &args);
            }
            event(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
        }
        true
    }

    fn open_block(&mut self, out: &mut Vec<u8>, block: serde_json::Value) -> u32 {
        let index = self.next_block;
        self.next_block += 1;
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        let index = match self.open {
            Open::None => return,
            Open::Text(i) | Open::Thinking(i) => i,
        };
        self.open = Open::None;
        event(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
    }

    /// `message_delta` and `message_stop`, after the open block and every held call's block.
    fn finish_message(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if !self.started {
            self.start(out);
        }
        if !self.answered {
            self.fail(out, "a stream without an answer (no choice said anything)");
            return;
        }
        if !self.write_calls(out) {
            return;
        }
        let stop = match self.finish.unwrap_or("end_turn") {
            "end_turn" if !self.calls.is_empty() => "tool_use",
            "end_turn" if self.stop_sequence.is_some() => "stop_sequence",
            s => s,
        };
        let Usage { input, output, cache_read } = self.usage;
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": self.stop_sequence},
                    "usage": {"input_tokens": input, "output_tokens": output, "cache_read_input_tokens": cache_read}}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// The upstream's stream cannot be read on: an `error` event, and the end.
    fn fail(&mut self, out: &mut Vec<u8>, why: &str) {
        self.failed = Some(format!("upstream stream: {why}"));
        self.error_event(out, "api_error", &format!("the upstream sent {why}"));
    }

    fn error_event(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        if self.ended {
            return;
        }
        event(out, "error", &json!({"type": "error", "error": {"type": kind, "message": message}}));
        self.ended = true;
        self.errored = true;
        self.line.clear();
    }
}

/// A call's joined arguments are one JSON object, or nothing (taken as `{}`).
fn check_arguments(args: &str) -> Result<(), String> {
    if args.trim_ascii().is_empty() {
        return Ok(());
    }
    if !args.trim_ascii_start().starts_with('{') {
        return Err("not an object".into());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(args).map(drop).map_err(|e| e.to_string())
}

/// A `content_block_delta`, written without building a JSON tree (the one event of a stream's
/// hot path).
fn delta(out: &mut Vec<u8>, index: u32, kind: &str, field: &str, text: &str) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{kind}\",\"{field}\":"
    );
    let _ = serde_json::to_writer(&mut *out, text);
    out.extend_from_slice(b"}}\n\n");
}

#[cfg(test)]
mod tests;
