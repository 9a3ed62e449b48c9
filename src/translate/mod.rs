//! Translation between the Messages API, which Claude Code speaks, and OpenAI's Chat
//! Completions, which an endpoint of `format: openai` speaks. Pure: bytes in, bytes out, no
//! sockets, no loop types, no clock. `request.rs` the request; `answer.rs` the HTTP answer
//! re-made as an Anthropic endpoint's (`stream.rs` an event stream, `reply.rs` a whole reply,
//! `error.rs` an error body; `shape.rs` a reply as events and events as a reply, for the shape
//! the client asked for). The rules for what has no counterpart: docs/translation.md.

pub mod answer;
pub mod error;
pub mod reply;
pub mod request;
pub mod shape;
pub mod stream;

/// What an OpenAI-format endpoint takes, beyond the common request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Send the limit as `max_completion_tokens` (OpenAI's newer models, Azure) rather than
    /// `max_tokens`.
    pub max_completion_tokens: bool,
    /// Send `thinking` as `reasoning_effort` (an endpoint that takes it).
    pub reasoning_effort: bool,
}
