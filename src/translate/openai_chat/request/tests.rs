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

/// Tool results keep everything they carry: search results, text documents and images; never a
/// 400 for content that has a form, never an empty result.
#[test]
fn tool_result_content_is_never_dropped() {
    let out = chat(json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Search", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "search_result", "source": "https://example.com/a", "title": "A page",
             "content": [{"type": "text", "text": "the answer is 42"}]},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes.txt says hi"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]}]}]}));
    let tool = &out["messages"][2];
    assert_eq!(tool["role"], "tool");
    let text = tool["content"].as_str().unwrap();
    for want in ["A page", "https://example.com/a", "the answer is 42", "notes.txt says hi"] {
        assert!(text.contains(want), "{want} in {text}");
    }
    assert_eq!(out["messages"][3]["content"][0]["image_url"]["url"], "data:image/png;base64,AAA");
}

/// What has no form is refused by name, never dropped or rewritten silently: an unknown block, an
/// image in `system`, a `system` message, a prefilled last assistant turn, too many stop sequences.
/// A tool_choice naming a server tool that was left out is not sent.
#[test]
fn unknown_blocks_system_images_roles_prefill_and_stops_are_refused_by_name() {
    let refuse = |req: Value, want: &str| {
        let e = to_chat(req.to_string().as_bytes(), &Options::default(), |_| None).err().expect("refused");
        assert!(e.contains(want), "{want} in {e}");
    };
    let user =
        |content: Value| json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]});
    refuse(user(json!([{"type": "container_upload", "file_id": "f"}])), "\"container_upload\"");
    refuse(
        json!({"model": "m", "system": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A"}}],
               "messages": [{"role": "user", "content": "hi"}]}),
        "image in a system prompt",
    );
    refuse(
        json!({"model": "m", "messages": [{"role": "tool", "content": "x"}, {"role": "user", "content": "hi"}]}),
        "role \"tool\"",
    );
    refuse(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A"}}]}]}),
        "image in a system",
    );
    // A system message (Claude Code sends one after the user's turn) is one, in place.
    let out = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "agents: A, B"}]}),
    );
    assert_eq!(out["messages"][1], json!({"role": "system", "content": "agents: A, B"}));
    refuse(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The answer is"}]}),
        "prefilled",
    );
    let mut five = user(json!("hi"));
    five["stop_sequences"] = json!(["a", "b", "c", "d", "e"]);
    refuse(five, "5 stop_sequences");
    // Known blocks that mean something only at Anthropic are left out, as documented.
    let out = chat(json!({"model": "m", "messages": [
        {"role": "user", "content": "search"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}, {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
                                          {"type": "web_search_tool_result", "tool_use_id": "s", "content": []}, {"type": "text", "text": "found"}]},
        {"role": "user", "content": "thanks"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}, {"name": "Bash", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "web_search"}}));
    assert_eq!(out["messages"][1], json!({"role": "assistant", "content": "found"}));
    assert_eq!(out["tool_choice"], "auto", "the server tool it named was left out");
}
