//! The upstream dialects, one module each, behind one seam. Claude Code speaks the Messages API;
//! an endpoint speaks its own dialect (`store::cluster::Format`, its config value), and
//! everything that depends on which lives here, so that outside `src/translate/` a dialect is
//! only that config value, the CLI flag and the dashboard field:
//! - `anthropic.rs`: the Messages API itself, forwarded as it comes;
//! - `openai_chat/`: OpenAI's Chat Completions, translated both ways (`types.rs` its wire
//!   types; `request.rs` the request;
//!   `answer.rs` the HTTP answer re-made as an Anthropic endpoint's: `stream.rs` an event stream,
//!   `reply.rs` a whole reply), its probe and its local answers.
//!
//! Shared by the dialects: `error.rs` (the one status -> Messages error table, and error bodies),
//! `shape.rs` (a reply as events and events as a reply, for the shape the client asked for).
//!
//! What a dialect supplies, asked through the functions below: the request head (the path, the
//! key's headers, which client headers it takes, a version header), whether it re-makes every
//! body (and so which requests it can take at all, and their new body), the answer reader, the
//! probe body, the local answers. Adding a dialect is one module and one arm in each.
//!
//! Pure: bytes in, bytes out, no sockets, no loop types, no clock. The rules for what has no
//! counterpart: docs/translation.md.

pub mod anthropic;
pub mod error;
pub mod openai_chat;
pub mod shape;

use crate::store::cluster::{EndpointConfig, Format};

/// What an OpenAI-format endpoint takes, beyond the common request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Send the limit as `max_completion_tokens` (OpenAI's newer models, Azure) rather than
    /// `max_tokens`.
    pub max_completion_tokens: bool,
    /// Send `thinking` as `reasoning_effort` (an endpoint that takes it).
    pub reasoning_effort: bool,
}

/// The reader that re-makes a dialect's answer as an Anthropic endpoint's, as it arrives.
pub use openai_chat::answer::{Answer, Wants};
/// A request made anew for a dialect that re-makes bodies: the body, the client's model and
/// the one sent, and whether the client asked for a stream.
pub use openai_chat::request::Translated;

/// The token count's path: every dialect answers it itself when no endpoint can (an estimate).
pub const COUNT_TOKENS: &[u8] = b"/v1/messages/count_tokens";

/// `/v1/messages/count_tokens` answered with an estimate: a quarter of the request's string
/// bytes (`(status, JSON body)`; a body that is not JSON is a 400).
pub fn estimate_tokens(body: &[u8]) -> (u16, serde_json::Value) {
    use serde_json::{json, Value};
    fn text_bytes(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(text_bytes).sum(),
            Value::Object(o) => o.values().map(text_bytes).sum(),
            _ => 0,
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => (200, json!({"input_tokens": (text_bytes(&v) / 4).max(1)})),
        Err(e) => (
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": format!("the request body is not JSON: {e}")}}),
        ),
    }
}

/// The path the dialect's requests go to under the endpoint's base path; `None`: the client's
/// own target, as sent.
pub fn upstream_path(format: &Format) -> Option<&'static str> {
    match format {
        Format::Anthropic => None,
        Format::OpenAi { .. } => Some(openai_chat::PATH),
    }
}

/// Whether a client header `name` goes to the dialect (Anthropic's own headers mean nothing to
/// another, and some refuse what they do not know).
pub fn forwards_header(format: &Format, name: &[u8]) -> bool {
    match format {
        Format::Anthropic => true,
        Format::OpenAi { .. } => openai_chat::forwards_header(name),
    }
}

/// The version header added when the client sent none.
pub fn default_version(format: &Format) -> Option<&'static [u8]> {
    match format {
        Format::Anthropic => Some(anthropic::VERSION_HEADER),
        Format::OpenAi { .. } => None,
    }
}

/// The endpoint's key as its dialect reads it, as header lines into `out` (nothing for an empty
/// key: the client's own credentials go through).
pub fn key_headers(format: &Format, key: &str, out: &mut Vec<u8>) {
    if key.is_empty() {
        return;
    }
    match format {
        Format::Anthropic => anthropic::key_headers(key, out),
        Format::OpenAi { .. } => openai_chat::key_headers(key, out),
    }
}

/// The dialect re-makes every request body (so the whole body is needed before an attempt,
/// and only the requests `takes` says go there).
pub fn rewrites(format: &Format) -> bool {
    !matches!(format, Format::Anthropic)
}

/// Whether a request (`method`, `path`) can go to the dialect at all (its content may still
/// have no form there: `request` says).
pub fn takes(format: &Format, method: &[u8], path: &[u8]) -> bool {
    match format {
        Format::Anthropic => true,
        Format::OpenAi { .. } => openai_chat::takes(method, path),
    }
}

/// A Messages request (its JSON text) as endpoint `cfg` takes it (its dialect's options, its
/// model map), or why it has no such form there. Only for a dialect that `rewrites`.
pub fn request(cfg: &EndpointConfig, body: &[u8]) -> Result<Translated, String> {
    match cfg.format {
        Format::Anthropic => Err("an Anthropic endpoint takes the request as it is".into()),
        Format::OpenAi { max_completion_tokens, reasoning_effort } => {
            let opts = Options { max_completion_tokens, reasoning_effort };
            // A model tag (`[1m]`) is never sent: a Chat Completions endpoint takes no betas.
            openai_chat::request::to_chat(body, &opts, |m| {
                let (base, tag) = crate::store::models::untagged(m);
                crate::store::models::map(&cfg.model_map, base).or(tag.map(|_| base)).map(str::to_string)
            })
        }
    }
}

/// The tiny real request body of a recovery probe, in the dialect.
pub fn probe_body(format: &Format, model: &str) -> String {
    match format {
        Format::Anthropic => anthropic::probe_body(model),
        Format::OpenAi { max_completion_tokens, .. } => openai_chat::probe_body(model, *max_completion_tokens),
    }
}

/// What the dialect answers itself to a request to `path` it cannot take (`answers_locally`),
/// for a cluster whose `endpoints` are the ones named: `(status, JSON body)`.
pub fn local_answer<'a>(
    format: &Format,
    path: &[u8],
    body: &[u8],
    endpoints: impl Iterator<Item = &'a EndpointConfig>,
) -> (u16, serde_json::Value) {
    match format {
        Format::OpenAi { .. } => openai_chat::local_answer(path, body, endpoints),
        Format::Anthropic if path == COUNT_TOKENS => estimate_tokens(body),
        Format::Anthropic => {
            (404, serde_json::json!({"type": "error", "error": {"type": "not_found_error", "message": "not found"}}))
        }
    }
}

/// Whether some dialect answers a request to `path` itself (`answers_locally`): the cheap
/// question asked of every request before the exact one.
pub fn some_dialect_answers(path: &[u8]) -> bool {
    path == COUNT_TOKENS || openai_chat::answers_locally(path)
}

/// Whether the dialect answers a request to `path` itself when nothing of the client's own
/// dialect can (a token count, the model list), rather than never taking it.
pub fn answers_locally(format: &Format, path: &[u8]) -> bool {
    match format {
        // (An Anthropic endpoint is kept out of a token count only when it lacks the API.)
        Format::Anthropic => path == COUNT_TOKENS,
        Format::OpenAi { .. } => openai_chat::answers_locally(path),
    }
}
