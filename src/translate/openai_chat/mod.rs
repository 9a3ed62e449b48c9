//! OpenAI's Chat Completions as an upstream dialect: a Messages request translated
//! (`request.rs`), its answer re-made as an Anthropic endpoint's as it arrives (`answer.rs`, with
//! `stream.rs` for an event stream and `reply.rs` for a whole reply), the request head's parts
//! (the path, the bearer key, no Anthropic headers), the probe body, and what a cluster of such
//! endpoints answers itself (a token count, the model list). Rules: docs/translation.md.

pub mod answer;
pub mod reply;
pub mod request;
pub mod stream;
pub mod types;

/// Why a request has no Chat Completions form (the 400's message).
pub(super) fn bad(e: impl std::fmt::Display) -> String {
    format!("the request cannot be translated for an OpenAI-format endpoint: {e}")
}

/// Where the requests go, under the endpoint's base path (`https://host/v1`).
pub const PATH: &str = "/chat/completions";

/// Anthropic's own headers (`anthropic-version`, `anthropic-beta`, the key's `x-api-key`) mean
/// nothing to a Chat Completions provider, and some refuse what they do not know.
pub fn forwards_header(name: &[u8]) -> bool {
    !(name.eq_ignore_ascii_case(b"x-api-key") || crate::http::starts_with_ignore_case(name, b"anthropic-"))
}

/// The key as a bearer token.
pub fn key_headers(key: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"Authorization: Bearer ");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// What translates: a Messages request (`POST /v1/messages`).
pub fn takes(method: &[u8], path: &[u8]) -> bool {
    method == b"POST" && path == b"/v1/messages"
}

/// A recovery probe's body: the smallest real Chat Completions request (the limit in the field
/// the endpoint takes).
pub fn probe_body(model: &str, max_completion_tokens: bool) -> String {
    let limit = if max_completion_tokens { "max_completion_tokens" } else { "max_tokens" };
    serde_json::json!({"model": model, limit: 10, "messages": [{"role": "user", "content": "ping"}]}).to_string()
}

/// Requests such an endpoint answers itself when nothing of the client's own dialect can (a
/// token count, the model list): never sent to it as a chat request.
pub fn answers_locally(path: &[u8]) -> bool {
    path == super::COUNT_TOKENS || path == b"/v1/models"
}

/// What a cluster whose usable endpoints all speak OpenAI's format answers itself to a request
/// it cannot translate: `/v1/messages/count_tokens` an estimate (a quarter of the request's
/// string bytes: the Chat Completions API has no token count), `/v1/models` the models its
/// endpoints' maps name, anything else 404. `(status, JSON body)`.
pub fn local_answer<'a>(
    path: &[u8],
    body: &[u8],
    endpoints: impl Iterator<Item = &'a crate::store::cluster::EndpointConfig>,
) -> (u16, serde_json::Value) {
    use serde_json::{json, Value};
    match path {
        super::COUNT_TOKENS => super::estimate_tokens(body),
        b"/v1/models" => {
            let mut ids: Vec<&str> = Vec::new();
            for rule in endpoints.flat_map(|e| e.model_map.iter()) {
                let id = if rule.pattern.contains('*') { &rule.model } else { &rule.pattern };
                if !ids.contains(&id.as_str()) {
                    ids.push(id);
                }
            }
            let data: Vec<Value> = ids
                .iter()
                .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
                .collect();
            (200, json!({"data": data, "has_more": false, "first_id": ids.first(), "last_id": ids.last()}))
        }
        _ => (
            404,
            json!({"type": "error", "error": {"type": "not_found_error", "message":
                "this cluster's endpoints speak OpenAI Chat Completions: qcc translates POST /v1/messages only"}}),
        ),
    }
}
