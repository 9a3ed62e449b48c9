//! A non-streamed Chat Completions reply as one Messages reply: the first choice's reasoning
//! (a thinking block), text, and tool calls (their arguments parsed back into `input`), its
//! finish reason as `stop_reason`, its usage.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use super::stream::stop_reason;
use super::types::{matched_stop, ChunkUsage, Delta, ToolDelta};

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    usage: Option<ChunkUsage>,
    /// A provider's error in a 200 (OpenRouter's "Provider returned error").
    error: Option<Value>,
}

/// Why a 200's body is not a reply.
#[derive(Debug, PartialEq)]
pub enum NotAReply {
    /// The provider's own error, as an HTTP status (its `code` when that is one, else by what
    /// it says: a rate limit 429, an overload 529, anything else 502) and a Messages error body
    /// with the provider's message.
    Provider(u16, Vec<u8>),
    /// Not a chat completion at all.
    Bad(String),
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    message: Delta<'a>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stop_reason: Option<&'a serde_json::value::RawValue>,
}

/// The Messages reply for `body`, or why it is not a Chat Completions reply.
pub fn to_messages(body: &[u8], model: &str, seed: u64) -> Result<Vec<u8>, NotAReply> {
    let r: Reply = serde_json::from_slice(body)
        .map_err(|e| NotAReply::Bad(format!("upstream reply: not a chat completion ({e})")))?;
    if let Some(err) = r.error.as_ref().filter(|e| !e.is_null()) {
        return Err(provider_error(err));
    }
    reply(r, model, seed).map_err(NotAReply::Bad)
}

/// A provider's error object as an HTTP status and a Messages error body.
pub fn provider_error(err: &Value) -> NotAReply {
    let code = err.get("code").and_then(Value::as_u64).filter(|c| (400..600).contains(c));
    let (kind, message) = crate::translate::error::kind_and_message(err, 0);
    let status = match (code, kind) {
        (Some(c), _) => c as u16,
        (None, "rate_limit_error") => 429,
        (None, "overloaded_error") => 529,
        (None, _) => 502,
    };
    let kind = if code.is_some() { crate::translate::error::kind_for_status(status) } else { kind };
    let message = match status {
        400 | 413 => crate::translate::error::context_overflow(&message, None).unwrap_or(message),
        _ => message,
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    NotAReply::Provider(status, body.to_string().into_bytes())
}

fn reply(r: Reply, model: &str, seed: u64) -> Result<Vec<u8>, String> {
    let choice = r.choices.into_iter().next().ok_or("upstream reply: no choices")?;
    let m = choice.message;
    let id = match r.id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) if id.starts_with("msg_") => id.to_string(),
        Some(id) => format!("msg_{id}"),
        None => format!("msg_qcc{seed:x}"),
    };
    let mut content = Vec::new();
    if !m.reasoning().is_empty() {
        content.push(json!({"type": "thinking", "thinking": m.reasoning(), "signature": ""}));
    }
    for t in m.texts() {
        content.push(json!({"type": "text", "text": t}));
    }
    let legacy = m.function_call.map(|f| ToolDelta { index: None, id: None, function: Some(f) });
    let calls: Vec<ToolDelta> = m.tool_calls.unwrap_or_default().into_iter().chain(legacy).collect();
    for (n, c) in calls.iter().enumerate() {
        let f = c.function.as_ref().filter(|f| f.name.as_deref().is_some_and(|n| !n.is_empty()));
        let f = f.ok_or("upstream reply: a tool call without a name")?;
        let args = f.arguments.as_deref().filter(|a| !a.trim().is_empty()).unwrap_or("{}");
        let input: Value = serde_json::from_str(args)
            .map_err(|e| format!("upstream reply: tool call arguments are not JSON ({e})"))?;
        let id = c.id.as_deref().map_or_else(|| format!("toolu_{}_{n}", id.trim_start_matches("msg_")), str::to_string);
        content.push(json!({"type": "tool_use", "id": id, "name": f.name, "input": input}));
    }
    let matched =
        choice.finish_reason.as_deref().filter(|f| *f == "stop").and_then(|_| matched_stop(choice.stop_reason));
    let stop = match choice.finish_reason.as_deref().map(stop_reason).unwrap_or("end_turn") {
        "end_turn" if !calls.is_empty() => "tool_use",
        "end_turn" if matched.is_some() => "stop_sequence",
        s => s,
    };
    let (input, output, cache_read) = r.usage.map(|u| u.tokens()).unwrap_or_default();
    let reply = json!({
        "id": id, "type": "message", "role": "assistant",
        "model": r.model.as_deref().filter(|m| !m.is_empty()).unwrap_or(model),
        "content": content, "stop_reason": stop, "stop_sequence": matched,
        "usage": {"input_tokens": input, "output_tokens": output, "cache_read_input_tokens": cache_read},
    });
    Ok(reply.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_with_text_and_a_tool_call() {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-x","choices":[{"index":0,
            "message":{"role":"assistant","content":"sure","tool_calls":[{"id":"call_1","type":"function",
            "function":{"name":"Bash","arguments":"{\"command\":\"ls\"}"}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let v: Value = serde_json::from_slice(&to_messages(body, "claude", 1).unwrap()).unwrap();
        assert_eq!(v["id"], "msg_chatcmpl-1");
        assert_eq!(v["content"][0], json!({"type": "text", "text": "sure"}));
        assert_eq!(v["content"][1]["input"], json!({"command": "ls"}));
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["usage"], json!({"input_tokens": 6, "output_tokens": 3, "cache_read_input_tokens": 4}));
        assert!(matches!(to_messages(b"{}", "m", 1), Err(NotAReply::Bad(_))));
        assert!(to_messages(br#"{"choices":[]}"#, "m", 1).is_err());
    }

    /// A 200 whose body is an error is the provider's error: its message kept, typed by its
    /// code or its words.
    #[test]
    fn an_error_in_a_200_is_the_providers_error() {
        let or = br#"{"error":{"message":"Provider returned error","code":502,"metadata":{"raw":"x"}}}"#;
        let Err(NotAReply::Provider(status, body)) = to_messages(or, "m", 1) else { panic!() };
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, v["error"]["type"].as_str(), v["error"]["message"].as_str()),
            (502, Some("api_error"), Some("Provider returned error"))
        );
        let Err(NotAReply::Provider(status, _)) =
            to_messages(br#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#, "m", 1)
        else {
            panic!()
        };
        assert_eq!(status, 429);
        let Err(NotAReply::Provider(status, _)) = to_messages(br#"{"error":"the model is overloaded"}"#, "m", 1) else {
            panic!()
        };
        assert_eq!(status, 502, "a bare string says nothing of its kind by type or code");
    }
}
