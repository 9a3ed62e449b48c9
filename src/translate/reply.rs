//! A non-streamed Chat Completions reply as one Messages reply: the first choice's reasoning
//! (a thinking block), text, and tool calls (their arguments parsed back into `input`), its
//! finish reason as `stop_reason`, its usage.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use super::stream::{stop_reason, ChunkUsage, Delta};

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
    usage: Option<ChunkUsage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    message: Delta<'a>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

/// The Messages reply for `body`, or why it is not a Chat Completions reply.
pub fn to_messages(body: &[u8], model: &str, seed: u64) -> Result<Vec<u8>, String> {
    let r: Reply = serde_json::from_slice(body).map_err(|e| format!("upstream reply: not a chat completion ({e})"))?;
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
    let calls = m.tool_calls.unwrap_or_default();
    for (n, c) in calls.iter().enumerate() {
        let f = c.function.as_ref().filter(|f| f.name.as_deref().is_some_and(|n| !n.is_empty()));
        let f = f.ok_or("upstream reply: a tool call without a name")?;
        let args = f.arguments.as_deref().filter(|a| !a.trim().is_empty()).unwrap_or("{}");
        let input: Value = serde_json::from_str(args)
            .map_err(|e| format!("upstream reply: tool call arguments are not JSON ({e})"))?;
        let id = c.id.as_deref().map_or_else(|| format!("toolu_{}_{n}", id.trim_start_matches("msg_")), str::to_string);
        content.push(json!({"type": "tool_use", "id": id, "name": f.name, "input": input}));
    }
    let stop = match choice.finish_reason.as_deref().map(stop_reason).unwrap_or("end_turn") {
        "end_turn" if !calls.is_empty() => "tool_use",
        s => s,
    };
    let (input, output, cache_read) = r.usage.map(|u| u.tokens()).unwrap_or_default();
    let reply = json!({
        "id": id, "type": "message", "role": "assistant",
        "model": r.model.as_deref().filter(|m| !m.is_empty()).unwrap_or(model),
        "content": content, "stop_reason": stop, "stop_sequence": null,
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
        assert!(to_messages(b"{}", "m", 1).is_err());
        assert!(to_messages(br#"{"choices":[]}"#, "m", 1).is_err());
    }
}
