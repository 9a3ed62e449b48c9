//! Messages requests as Chat Completions requests: each rule of docs/translation.md.

use super::*;
use serde_json::{json, Value};

fn chat(req: Value) -> Value {
    let t = to_chat(req.to_string().as_bytes(), &Options::default(), |_| None).unwrap();
    serde_json::from_slice(&t.body).unwrap()
}

#[test]
fn a_tool_turn_becomes_tool_calls_and_tool_messages_in_order() {
    let out = chat(json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "run it"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "x"},
                {"type": "text", "text": "ok"},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "echo hi"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hi"}]},
                {"type": "text", "text": "go on"}]}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}},
                  {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "stop_sequences": ["END"], "metadata": {"user_id": "u1"}, "thinking": {"type": "enabled", "budget_tokens": 5000}
    }));
    assert_eq!(out["messages"][0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        out["messages"][2]["tool_calls"][0]["function"],
        json!({"name": "Bash", "arguments": "{\"command\":\"echo hi\"}"})
    );
    assert_eq!(out["messages"][2]["content"], "ok");
    assert_eq!(out["messages"][3], json!({"role": "tool", "content": "hi", "tool_call_id": "toolu_1"}));
    assert_eq!(out["messages"][4], json!({"role": "user", "content": "go on"}));
    assert_eq!(out["tools"].as_array().unwrap().len(), 1, "the server tool is left out");
    assert_eq!(out["tool_choice"], "required");
    assert_eq!(out["parallel_tool_calls"], false);
    assert_eq!(out["stop"], json!(["END"]));
    assert_eq!(out["user"], "u1");
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert!(out.get("reasoning_effort").is_none(), "only where the endpoint takes it");
    assert_eq!(out["max_tokens"], 100);
}

#[test]
fn images_unanswered_calls_and_options() {
    let req = json!({
        "model": "claude-haiku", "max_tokens": 5, "thinking": {"type": "enabled", "budget_tokens": 20000},
        "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAA"}}, {"type": "text", "text": "what?"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "T", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "zzz", "content": "old"}]}]
    });
    let opts = Options { max_completion_tokens: true, reasoning_effort: true };
    let t = to_chat(req.to_string().as_bytes(), &opts, |m| Some(format!("{m}-mapped"))).unwrap();
    let out: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(out["model"], "claude-haiku-mapped");
    assert_eq!(out["messages"][0]["content"][0]["image_url"]["url"], "data:image/jpeg;base64,AAA");
    assert_eq!(out["messages"][2], json!({"role": "tool", "content": "[no result]", "tool_call_id": "a"}));
    assert_eq!(out["messages"][3]["content"], "[result of tool call zzz]\nold");
    assert_eq!(out["max_completion_tokens"], 5);
    assert_eq!(out["reasoning_effort"], "high");
    assert!(out.get("max_tokens").is_none());
}

#[test]
fn what_has_no_form_is_refused_with_a_reason() {
    let pdf = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "x"}}]}]});
    let e = to_chat(pdf.to_string().as_bytes(), &Options::default(), |_| None).err().unwrap();
    assert!(e.contains("PDF"), "{e}");
    assert!(to_chat(b"not json", &Options::default(), |_| None).is_err());
    assert!(to_chat(br#"{"model":"m","messages":"x"}"#, &Options::default(), |_| None).is_err());
}
