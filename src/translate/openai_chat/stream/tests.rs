//! Every stream below is fed whole, then split at every byte boundary, then a byte at a time;
//! the output must be the same each way, and a valid Messages event sequence.

use super::*;
use serde_json::{json, Value};

fn run(input: &[u8], splits: &[usize]) -> (Vec<u8>, End) {
    let mut s = Stream::new("claude-x", 7);
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in splits {
        s.feed(&input[at..cut], &mut out);
        at = cut;
    }
    s.feed(&input[at..], &mut out);
    let end = s.end(&mut out);
    (out, end)
}

/// The events of `out`, checked to be a valid sequence: message_start first; a block's deltas
/// only while it is open, of its kind; blocks numbered in order; then message_delta and
/// message_stop — or an error event last.
fn events(out: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(out).expect("UTF-8");
    let mut evs = Vec::new();
    for ev in text.split("\n\n").filter(|e| !e.is_empty()) {
        let mut lines = ev.lines();
        let name = lines.next().unwrap().strip_prefix("event: ").unwrap().to_string();
        let data: Value = serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["type"], name.as_str());
        evs.push((name, data));
    }
    let mut open: Option<(u64, String)> = None;
    let mut next = 0;
    let mut started = false;
    let mut finished = false;
    for (i, (name, d)) in evs.iter().enumerate() {
        assert!(!finished, "nothing after the end: {evs:?}");
        match name.as_str() {
            "message_start" => {
                assert_eq!(i, 0);
                started = true;
            }
            "content_block_start" => {
                assert!(started && open.is_none(), "one block at a time");
                assert_eq!(d["index"], next);
                open = Some((next, d["content_block"]["type"].as_str().unwrap().to_string()));
                next += 1;
            }
            "content_block_delta" => {
                let (idx, kind) = open.as_ref().expect("a delta for a block never started");
                assert_eq!(d["index"], *idx);
                let want = match kind.as_str() {
                    "text" => "text_delta",
                    "thinking" => "thinking_delta",
                    _ => "input_json_delta",
                };
                assert_eq!(d["delta"]["type"], want);
            }
            "content_block_stop" => {
                assert_eq!(d["index"], open.take().expect("a stop for a block never started").0);
            }
            "message_delta" => assert!(open.is_none() && started),
            "message_stop" => finished = true,
            "error" => finished = true,
            other => panic!("unknown event {other}"),
        }
    }
    assert!(finished, "a stream must end with message_stop or error");
    evs
}

/// The message the events add up to (blocks with their text / joined JSON input).
fn message(evs: &[(String, Value)]) -> Value {
    let mut blocks: Vec<Value> = Vec::new();
    let mut stop = Value::Null;
    let mut usage = Value::Null;
    for (name, d) in evs {
        match name.as_str() {
            "content_block_start" => blocks.push(d["content_block"].clone()),
            "content_block_delta" => {
                let b = blocks.last_mut().unwrap();
                let (field, piece) = match d["delta"]["type"].as_str().unwrap() {
                    "text_delta" => ("text", &d["delta"]["text"]),
                    "thinking_delta" => ("thinking", &d["delta"]["thinking"]),
                    _ => ("json", &d["delta"]["partial_json"]),
                };
                let s = b.get(field).and_then(Value::as_str).unwrap_or("").to_string() + piece.as_str().unwrap();
                b[field] = Value::String(s);
            }
            "message_delta" => {
                stop = d["delta"]["stop_reason"].clone();
                usage = d["usage"].clone();
            }
            "error" => stop = d["error"]["type"].clone(),
            _ => {}
        }
    }
    for b in &mut blocks {
        if let Some(j) = b.get("json").and_then(Value::as_str) {
            b["input"] = serde_json::from_str(j).expect("tool input JSON");
            b.as_object_mut().unwrap().remove("json");
        }
    }
    serde_json::json!({"content": blocks, "stop": stop, "usage": usage})
}

/// Feeds `input` every way; returns the one result.
fn check(input: &str) -> (Value, End) {
    let input = input.as_bytes();
    let (whole, end) = run(input, &[]);
    let evs = events(&whole);
    for cut in 1..input.len() {
        let (out, e) = run(input, &[cut]);
        assert_eq!(out, whole, "split at {cut}");
        assert_eq!(e, end);
    }
    let bytes: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run(input, &bytes).0, whole, "a byte at a time");
    (message(&evs), end)
}

fn sse(chunks: &[&str]) -> String {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
}

#[test]
fn text_with_usage_in_a_final_chunk_without_choices() {
    let s = sse(&[
        r#"{"id":"c1","model":"glm","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"lo é"},"finish_reason":"stop"}]}"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}}"#,
        "[DONE]",
    ]);
    let (m, end) = check(&s);
    assert_eq!(end, End::Complete);
    assert_eq!(m["content"], serde_json::json!([{"type": "text", "text": "Hello é"}]));
    assert_eq!(m["stop"], "end_turn");
    assert_eq!(m["usage"], serde_json::json!({"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 2}));
}

#[test]
fn reasoning_then_text() {
    let s = sse(&[
        r#"{"choices":[{"delta":{"reasoning_content":"let me"}}]}"#,
        r#"{"choices":[{"delta":{"reasoning":" think"}}]}"#,
        r#"{"choices":[{"delta":{"content":"42"},"finish_reason":"length"}]}"#,
    ]);
    let (m, end) = check(&s);
    assert_eq!(end, End::Complete, "a finish reason without [DONE] still ends the message");
    assert_eq!(m["content"][0]["thinking"], "let me think");
    assert_eq!(m["content"][1]["text"], "42");
    assert_eq!(m["stop"], "max_tokens");
}

#[test]
fn one_tool_call_in_many_fragments_and_arguments_empty_then_whole() {
    let s = sse(&[
        r#"{"choices":[{"delta":{"content":"running"}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"Bash","arguments":""}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"comm"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"and\": \"echo hi\"}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"Read","arguments":""}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"path\":\"/x\"}"}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    let (m, _) = check(&s);
    assert_eq!(
        m["content"][1],
        serde_json::json!({"type": "tool_use", "id": "call_a", "name": "Bash", "input": {"command": "echo hi"}})
    );
    assert_eq!(m["content"][2]["input"], serde_json::json!({"path": "/x"}));
    assert_eq!(m["stop"], "tool_use");
}

#[test]
fn two_parallel_calls_interleaved_by_index_never_mix() {
    let s = sse(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"A","arguments":"{\"x\":"}},{"index":1,"id":"b","function":{"name":"B","arguments":"{\"y\":"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"2}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
        r#"{"choices":[{"finish_reason":"tool_calls","delta":{}}]}"#,
        "[DONE]",
    ]);
    let (m, _) = check(&s);
    assert_eq!(m["content"][0]["input"], serde_json::json!({"x": 1}));
    assert_eq!(m["content"][1]["input"], serde_json::json!({"y": 2}));
}

#[test]
fn two_ids_on_one_index_are_two_calls_and_a_call_without_id_gets_one() {
    let s = sse(&[
        r#"{"id":"r9","choices":[{"delta":{"tool_calls":[{"index":0,"id":"first","function":{"name":"A","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"second","function":{"name":"B","arguments":"{\"k\":1}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"name":"C"}}]}}]}"#,
        r#"{"choices":[{"finish_reason":"stop","delta":{}}]}"#,
    ]);
    let (m, end) = check(&s);
    assert_eq!(end, End::Complete);
    let c = m["content"].as_array().unwrap();
    assert_eq!((c[0]["id"].as_str(), c[1]["id"].as_str()), (Some("first"), Some("second")));
    assert_eq!(c[1]["input"], serde_json::json!({"k": 1}));
    assert_eq!(c[2]["name"], "C");
    assert!(c[2]["id"].as_str().unwrap().starts_with("toolu_r9"), "{}", c[2]["id"]);
    assert!(c[2].get("input").is_some_and(|i| i == &serde_json::json!({})), "a call without arguments has input {{}}");
    assert_eq!(m["stop"], "tool_use", "tool calls with finish_reason stop still stop for tool use");
}

#[test]
fn errors_cuts_and_malformed_chunks_end_with_an_error_event() {
    let (m, end) = check(&sse(&[r#"{"error":{"message":"overloaded, try later","code":503}}"#]));
    assert_eq!((m["stop"].as_str(), end), (Some("overloaded_error"), End::Error { cut: false }));
    let (m, end) = check(&sse(&[r#"{"choices":[{"delta":{"content":"par"}}]}"#]));
    assert_eq!(
        (m["stop"].as_str(), end),
        (Some("api_error"), End::Error { cut: true }),
        "EOF before a finish is a cut"
    );
    let (m, end) = check(&(sse(&[r#"{"choices":[{"delta":{"content":"a"}}]}"#]) + "data: {not json\n\n"));
    assert_eq!((m["stop"].as_str(), end), (Some("api_error"), End::Error { cut: false }));
    let (_, end) = check(&sse(&[r#"{"choices":{"wrong":"shape"}}"#]));
    assert_eq!(end, End::Error { cut: false });
    // A 1 MiB line is refused without being kept.
    let mut s = Stream::new("m", 1);
    let mut out = Vec::new();
    s.feed(b"data: \"", &mut out);
    s.feed(&vec![b'a'; MAX_LINE], &mut out);
    assert!(s.failure().is_some_and(|f| f.contains("1 MiB")));
    assert!(s.line.capacity() < MAX_LINE);
    assert!(events(&out).last().is_some_and(|(n, _)| n == "error"));
}

#[test]
fn keepalive_comments_crlf_and_an_empty_stream() {
    let s = ": keep-alive\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\r\n\r\ndata: [DONE]\r\n\r\n";
    let (m, _) = check(s);
    assert_eq!(m["content"][0]["text"], "x");
}

/// A stream in which no choice said anything is no answer: an error event, never an empty
/// message (the same upstream non-streamed fails over on `no choices`).
#[test]
fn a_stream_without_an_answer_ends_with_an_error() {
    for s in [
        "data: [DONE]\n\n".to_string(),
        sse(&[r#"{"id":"c","choices":[]}"#, r#"{"choices":[],"usage":{"prompt_tokens":3}}"#, "[DONE]"]),
        sse(&[r#"{"choices":[{"index":0,"delta":null}]}"#, "[DONE]"]),
        sse(&[r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#, "[DONE]"]),
    ] {
        let (m, end) = check(&s);
        assert_eq!((m["content"].as_array().map(Vec::len), end), (Some(0), End::Error { cut: false }), "{s}");
        let mut st = Stream::new("m", 1);
        let mut out = Vec::new();
        st.feed(s.as_bytes(), &mut out);
        st.end(&mut out);
        assert!(st.failure().is_some_and(|f| f.contains("without an answer")), "{s}");
    }
    // An empty answer that finished is an answer.
    let (m, end) = check(&sse(&[r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#]));
    assert_eq!((m["stop"].as_str(), end), (Some("end_turn"), End::Complete));
}

/// Each call's arguments are one JSON object when its block is written, or the stream ends with
/// an error event: never input that joins two objects, or one that never closes.
#[test]
fn tool_input_is_always_one_json_object() {
    // A reused id on another index, and a third call: three calls, each its own input, ids unique.
    let s = sse(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"A","arguments":"{\"a\":1}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_1","function":{"name":"C","arguments":"{\"c\":3}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":2,"id":"call_3","function":{"name":"D","arguments":"{\"d\":4}"}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
    ]);
    let (m, end) = check(&s);
    assert_eq!(end, End::Complete);
    let c = m["content"].as_array().unwrap();
    assert_eq!(c.len(), 3, "{m}");
    assert_eq!(
        [&c[0]["input"], &c[1]["input"], &c[2]["input"]],
        [&json!({"a": 1}), &json!({"c": 3}), &json!({"d": 4})]
    );
    assert_ne!(c[0]["id"], c[1]["id"], "two calls never share an id");
    // The same id again with a new name, on no index: a new call.
    let s = sse(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"id":"x","function":{"name":"A","arguments":"{\"a\":1}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"id":"x","function":{"name":"B","arguments":"{\"b\":2}"}}]}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
    ]);
    let (m, _) = check(&s);
    assert_eq!((m["content"][0]["name"].as_str(), m["content"][1]["name"].as_str()), (Some("A"), Some("B")));
    assert_eq!(m["content"][1]["input"], json!({"b": 2}));
    // Arguments that never close, two objects joined, and an array: an error event, nothing of
    // the call's block written.
    for bad in [r#"{\"unterminated\": "#, r#"{\"a\":1}{\"c\":3}"#, "[1]"] {
        let s = sse(&[
            r#"{"choices":[{"delta":{"content":"ok"}}]}"#,
            &format!(
                r#"{{"choices":[{{"delta":{{"tool_calls":[{{"index":0,"id":"q","function":{{"name":"Q","arguments":"{bad}"}}}}]}}}}]}}"#
            ),
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ]);
        let (m, end) = check(&s);
        assert_eq!((m["stop"].as_str(), end), (Some("api_error"), End::Error { cut: false }), "{bad}");
        assert_eq!(m["content"].as_array().map(Vec::len), Some(1), "only the text: {m}");
    }
}

/// An event's data lines and the calls' held arguments are bounded: past 4 MiB the stream ends.
#[test]
fn held_data_is_bounded() {
    let mut s = Stream::new("m", 1);
    let mut out = Vec::new();
    let line = format!("data: {}\n", "a".repeat(1000));
    for _ in 0..(MAX_HELD / 1000 + 2) {
        s.feed(line.as_bytes(), &mut out);
    }
    assert!(s.failure().is_some_and(|f| f.contains("4 MiB")), "{:?}", s.failure());
    assert!(s.data.len() <= MAX_HELD);
    let mut s = Stream::new("m", 1);
    let mut out = Vec::new();
    s.feed(br#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"q","function":{"name":"Q","arguments":"{"}}]}}]}"#, &mut out);
    s.feed(b"\n\n", &mut out);
    let piece = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"arguments\":\"{}\"}}}}]}}}}]}}\n\n",
        "b".repeat(100_000)
    );
    for _ in 0..(MAX_HELD / 100_000 + 2) {
        s.feed(piece.as_bytes(), &mut out);
    }
    assert!(s.failure().is_some_and(|f| f.contains("4 MiB")), "{:?}", s.failure());
    assert!(s.held <= MAX_HELD);
}

/// The stop sequence the provider says matched (vLLM's `stop_reason`) is `stop_sequence`; a
/// legacy `function_call` is a tool_use block.
#[test]
fn a_matched_stop_sequence_and_a_legacy_function_call() {
    let (m, _) =
        check(&sse(&[r#"{"choices":[{"delta":{"content":"1 2 3"},"finish_reason":"stop","stop_reason":"END"}]}"#]));
    assert_eq!(m["stop"], "stop_sequence");
    let (m, _) =
        check(&sse(&[r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop","stop_reason":128009}]}"#]));
    assert_eq!(m["stop"], "end_turn", "a stop token is not a stop sequence");
    let s = sse(&[
        r#"{"choices":[{"delta":{"function_call":{"name":"Bash","arguments":"{\"comm"}}}]}"#,
        r#"{"choices":[{"delta":{"function_call":{"arguments":"and\":\"ls\"}"}}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"function_call"}]}"#,
    ]);
    let (m, _) = check(&s);
    assert_eq!(
        (m["content"][0]["name"].as_str(), &m["content"][0]["input"]),
        (Some("Bash"), &json!({"command": "ls"}))
    );
    assert_eq!(m["stop"], "tool_use");
}
