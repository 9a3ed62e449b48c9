//! Reading answers: the response head decides (`response.rs`), the body is read as it passes
//! (`sse.rs` for event streams, `json.rs` for JSON replies, `usage.rs` their token counts), and
//! `outcome.rs` says how an attempt ended (retry or not, the request's end), and `verdict.rs`
//! records what an answer or a probe says about its endpoint (blame, credit).

use json::JsonScanner;
use sse::{SseScanner, StreamError};
use usage::Tokens;

pub(crate) mod json;
pub(crate) mod mapping;
pub(crate) mod sse;
pub(crate) mod translation;
pub(crate) mod usage;

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
        let is = |prefix: &[u8]| crate::http::starts_with_ignore_case(ctype, prefix);
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

    /// What a response cut short is charged: the final usage when it came; else, of a stream,
    /// `message_start`'s input with the output estimated from the deltas seen (`estimated`
    /// true). `None` when nothing was reported.
    pub fn usage_so_far(&self) -> Option<(Option<String>, Tokens, bool)> {
        match self {
            Scan::Sse(s) if s.final_usage => Some((s.model.clone(), s.tokens.clone(), false)),
            Scan::Sse(s) if s.has_usage => {
                let mut t = s.tokens.clone();
                t.output = t.output.max(s.estimated_output);
                Some((s.model.clone(), t, true))
            }
            Scan::Sse(_) => None,
            Scan::Json(j) => j.finish().map(|(m, t)| (m, t, false)),
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
