//! An attempt on an OpenAI-format endpoint (`format: openai`): its body is the client's
//! Messages request translated (`translate::request`), and its answer is read through
//! `translate::answer::Answer` into the connection's `inbuf`. What `answer/` then reads is an
//! Anthropic endpoint's answer, so the hold before first content, in-stream errors, usage,
//! charging and failover are the one path every endpoint takes.

use crate::proxy::event::io::IoOutcome;
use crate::proxy::upstream::mapping::Mapped;
use crate::proxy::upstream::transport::Transport;
use crate::store::cluster::EndpointConfig;
use crate::translate::answer::Answer;
use crate::translate::request::Translated;

/// What an attempt keeps to translate its answer.
#[derive(Debug)]
pub struct Translation {
    answer: Answer,
    /// The upstream's bytes not yet translated.
    raw: Vec<u8>,
}

impl Translation {
    /// The body to send `cfg` (an OpenAI-format endpoint) for the client's `body` (its JSON
    /// text), and the attempt's translation; `made`: the request's form already made for this
    /// endpoint (`facts.rs`); `Err`: why the request has no Chat Completions form (a 400).
    /// `seed` makes the ids qcc invents unique.
    pub fn start(
        cfg: &EndpointConfig,
        body: &[u8],
        made: Option<Translated>,
        seed: u64,
        http10: bool,
    ) -> Result<(Mapped, Translation), String> {
        let t = match made {
            Some(t) => t,
            None => crate::translate::request::for_endpoint(cfg, body)?,
        };
        let wants = crate::translate::answer::Wants { stream: t.stream, http10 };
        let translation = Translation { answer: Answer::new(&t.to, seed, wants), raw: Vec::new() };
        Ok((Mapped { body: t.body, splice: None, from: t.from, to: t.to }, translation))
    }

    /// Ready for the answer on a fresh connection (a pooled one turned out closed).
    pub fn restart(&mut self) {
        self.answer.reset();
        self.raw.clear();
    }

    /// Why the answer was cut or refused, once it was: the attempt fails with it.
    pub fn failure(&self) -> Option<&str> {
        self.answer.failure()
    }
}

/// Read once from an upstream connection: into its `inbuf` as sent, or through the attempt's
/// translation. The outcome is the socket's (`Progress` counts the bytes read from it), except
/// that a translated answer framed by the close reads as `Closed` once it is whole.
pub fn read(t: Option<&mut Translation>, from: &mut Transport, inbuf: &mut Vec<u8>, scratch: &mut [u8]) -> IoOutcome {
    let Some(t) = t else {
        return from.read(inbuf, scratch);
    };
    let outcome = from.read(&mut t.raw, scratch);
    match outcome {
        IoOutcome::Closed => t.answer.eof(&mut t.raw, inbuf),
        _ => t.answer.feed(&mut t.raw, inbuf),
    }
    if t.answer.ended_by_close() && matches!(outcome, IoOutcome::Progress(_)) {
        return IoOutcome::Closed; // what went out ends with the close: it is over (not pooled)
    }
    outcome
}

/// Requests an OpenAI-format endpoint answers itself when nothing of their own format can (a
/// token count, the model list): never sent to it as a chat request.
pub fn answers_locally(path: &[u8]) -> bool {
    matches!(path, b"/v1/messages/count_tokens" | b"/v1/models")
}

/// What a cluster whose usable endpoints all speak OpenAI's format answers itself to a request
/// it cannot translate: `/v1/messages/count_tokens` an estimate (a quarter of the request's
/// string bytes: the Chat Completions API has no token count), `/v1/models` the models its
/// endpoints' maps name, anything else 404. `(status, JSON body)`.
pub fn local_answer<'a>(
    path: &[u8],
    body: &[u8],
    endpoints: impl Iterator<Item = &'a EndpointConfig>,
) -> (u16, serde_json::Value) {
    use serde_json::{json, Value};
    match path {
        b"/v1/messages/count_tokens" => {
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
