//! A Messages answer in the shape the client asked for: its `stream` flag decides, not the
//! upstream's whim. A whole reply becomes the event sequence that streams it
//! (`reply_as_events`); the events a stream was translated into become one reply
//! (`events_as_reply`), or, when they end in an `error` event, that error as an HTTP answer.

use serde_json::{json, Map, Value};

/// The Messages event stream of a whole Messages `reply` (as `reply.rs` makes it): one block at a
/// time, each written whole in one delta.
pub fn reply_as_events(reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(reply) else {
        event(
            &mut out,
            "error",
            &json!({"type": "error", "error": {"type": "api_error", "message": "the upstream's reply could not be read"}}),
        );
        return out;
    };
    let content = m.remove("content").and_then(|c| if let Value::Array(a) = c { Some(a) } else { None });
    let usage = m.get("usage").cloned().unwrap_or_else(|| json!({}));
    let stop = (m.remove("stop_reason"), m.remove("stop_sequence"));
    let mut start = m.clone();
    start.insert("content".into(), json!([]));
    start.insert("stop_reason".into(), Value::Null);
    start.insert("stop_sequence".into(), Value::Null);
    let input = |k: &str| usage.get(k).cloned().unwrap_or(json!(0));
    start.insert(
        "usage".into(),
        json!({"input_tokens": input("input_tokens"), "cache_read_input_tokens": input("cache_read_input_tokens"), "output_tokens": 0}),
    );
    event(&mut out, "message_start", &json!({"type": "message_start", "message": start}));
    for (index, mut block) in content.unwrap_or_default().into_iter().enumerate() {
        // The block starts empty; what it holds goes in one delta.
        let (field, kind, empty) = match block.get("type").and_then(Value::as_str) {
            Some("text") => ("text", "text_delta", json!("")),
            Some("thinking") => ("thinking", "thinking_delta", json!("")),
            Some("tool_use") => ("input", "input_json_delta", json!({})),
            _ => ("", "", Value::Null),
        };
        let delta = block.get_mut(field).map(|v| std::mem::replace(v, empty)).map(|v| match kind {
            "input_json_delta" => json!({"type": kind, "partial_json": v.to_string()}),
            _ => json!({"type": kind, field: v}),
        });
        event(
            &mut out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        if let Some(delta) = delta {
            event(
                &mut out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            );
        }
        event(&mut out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
    }
    let (stop_reason, stop_sequence) = stop;
    event(
        &mut out,
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": usage}),
    );
    event(&mut out, "message_stop", &json!({"type": "message_stop"}));
    out
}

/// The one Messages reply that translated `events` add up to; `Err((status, body))` when they
/// end in an `error` event (its type decides the status: an overload 529, a rate limit 429,
/// anything else 502) or never finish.
pub fn events_as_reply(events: &[u8]) -> Result<Vec<u8>, (u16, Vec<u8>)> {
    let mut message: Option<Map<String, Value>> = None;
    let mut blocks: Vec<(Value, String)> = Vec::new();
    for data in events.split(|&b| b == b'\n').filter_map(|l| l.strip_prefix(b"data: ")) {
        let Ok(ev) = serde_json::from_slice::<Value>(data) else { continue };
        match ev.get("type").and_then(Value::as_str) {
            Some("message_start") => message = ev.get("message").and_then(Value::as_object).cloned(),
            Some("content_block_start") => blocks.push((ev["content_block"].clone(), String::new())),
            Some("content_block_delta") => {
                let Some((block, json)) = blocks.last_mut() else { continue };
                let d = &ev["delta"];
                match d.get("type").and_then(Value::as_str) {
                    Some("input_json_delta") => json.push_str(d["partial_json"].as_str().unwrap_or("")),
                    Some(kind @ ("text_delta" | "thinking_delta")) => {
                        let field = kind.trim_end_matches("_delta");
                        let piece = d[field].as_str().unwrap_or("");
                        let had = block[field].as_str().unwrap_or("").to_string();
                        block[field] = Value::String(had + piece);
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                let Some(m) = message.as_mut() else { continue };
                for (k, v) in ev["delta"].as_object().into_iter().flatten() {
                    m.insert(k.clone(), v.clone());
                }
                if let (Some(Value::Object(u)), Some(more)) = (m.get_mut("usage"), ev["usage"].as_object()) {
                    for (k, v) in more {
                        u.insert(k.clone(), v.clone());
                    }
                }
            }
            Some("message_stop") => {
                let Some(mut m) = message.take() else { break };
                let content = blocks
                    .drain(..)
                    .map(|(mut block, json)| {
                        if !json.is_empty() {
                            block["input"] = serde_json::from_str(&json).unwrap_or_else(|_| json!({}));
                        }
                        block
                    })
                    .collect();
                m.insert("content".into(), Value::Array(content));
                return Ok(Value::Object(m).to_string().into_bytes());
            }
            Some("error") => {
                let status = match ev["error"]["type"].as_str() {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    _ => 502,
                };
                return Err((status, ev.to_string().into_bytes()));
            }
            _ => {}
        }
    }
    let body = json!({"type": "error", "error": {"type": "api_error", "message": "the upstream's stream ended before it finished"}});
    Err((502, body.to_string().into_bytes()))
}

/// One Messages event, `event: NAME` and its JSON data (every writer of Messages events: this
/// module's and the dialects' stream translators).
pub fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut *out, data); // (writing to a Vec cannot fail)
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as events and back is the same reply; the events are a valid sequence.
    #[test]
    fn a_reply_goes_to_events_and_back() {
        let reply = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "glm",
            "content": [{"type": "thinking", "thinking": "hm", "signature": ""}, {"type": "text", "text": "hi"},
                        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 1}});
        let events = reply_as_events(reply.to_string().as_bytes());
        let text = String::from_utf8(events.clone()).unwrap();
        assert!(
            text.starts_with("event: message_start\n")
                && text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
        );
        assert!(text.contains(r#""partial_json":"{\"command\":\"ls\"}""#), "{text}");
        let back: Value = serde_json::from_slice(&events_as_reply(&events).unwrap()).unwrap();
        assert_eq!(back, reply);
    }

    #[test]
    fn an_error_or_an_unfinished_stream_is_an_error_answer() {
        let e = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n";
        let (status, body) = events_as_reply(e).unwrap_err();
        assert_eq!(status, 529);
        assert!(String::from_utf8_lossy(&body).contains("busy"));
        assert_eq!(
            events_as_reply(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n")
                .unwrap_err()
                .0,
            502
        );
    }
}
