//! OpenAI-format endpoints (`--format openai`) through the real binary: added and shown as a
//! user does it, sent translated requests, their answers translated, failed over like any
//! endpoint. (Every upstream behaviour through the official SDKs: tests/translate/harness.py.)

use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode};
use crate::support::*;

const BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"system":"be brief",
  "messages":[{"role":"user","content":"hi"}]}"#;

pub(crate) fn chunks() -> Vec<String> {
    [
        r#"{"id":"c1","model":"glm-4.6","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2}}"#,
        "[DONE]",
    ]
    .iter()
    .map(|c| format!("data: {c}\n\n"))
    .collect()
}

fn add(home: &TempHome, url: &str, extra: &[&str]) {
    let mut args = vec!["endpoint", "add", "c", "--url", url, "--key", "sk-oai-0000000000"];
    args.extend_from_slice(extra);
    let out = home.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// An OpenAI-format endpoint of a config file (`metadata.format`).
pub(crate) fn openai_ep<'a>(id: &'a str, url: &'a str, priority: u32) -> Ep<'a> {
    Ep::new(id, url, "sk-o-0000000000", priority).with(serde_json::json!({"metadata": {"format": "openai"}}))
}

/// Cluster "c": `oai` as an OpenAI-format endpoint at priority 1, `ant` an Anthropic one at 2.
fn write_openai_then_anthropic(home: &TempHome, oai: &MockUpstream, ant: &MockUpstream) {
    home.write_cluster(
        "c",
        &[
            openai_ep("a0000001", &format!("{}/v1", oai.url()), 1),
            Ep::new("b0000001", &ant.url(), "sk-b-0000000000", 2),
        ],
    );
}

#[test]
fn an_openai_endpoint_is_added_shown_and_sent_translated_requests() {
    let oai = MockUpstream::start(Mode::Sse { events: chunks(), delay: Duration::ZERO });
    let home = TempHome::new();
    let url = format!("{}/v1", oai.url());
    add(&home, &url, &["--name", "local", "--format", "openai", "--model-map", "claude-*=glm-4.6"]);
    let list = home.run(&["endpoint", "list", "c"]);
    assert!(stdout(&list).contains("FORMAT") && stdout(&list).contains("openai"), "{}", stdout(&list));
    let bad = home.run(&["endpoint", "set", "c", "local", "--format", "gemini"]);
    assert!(!bad.status.success() && stderr(&bad).contains("anthropic or openai"), "{}", stderr(&bad));
    assert_eq!(stderr(&bad).lines().count(), 1);

    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages?beta=true",
        &[("x-api-key", "client"), ("anthropic-version", "2023-06-01")],
        BODY.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    for want in [
        "event: message_start",
        "\"text\":\"Hel\"",
        "\"text\":\"lo\"",
        "\"stop_reason\":\"end_turn\"",
        "event: message_stop",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let reqs = oai.requests();
    let sent = &reqs[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-oai-0000000000"));
    assert!(sent.header("x-api-key").is_none() && sent.header("anthropic-version").is_none(), "{}", sent.raw_head);
    let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("chat json");
    assert_eq!(body["model"], "glm-4.6", "the model map applies");
    assert_eq!(body["messages"][0], serde_json::json!({"role": "system", "content": "be brief"}));
    assert_eq!(body["stream_options"]["include_usage"], true);
    drop(reqs);
    let status = proxy.status();
    assert_eq!(status["endpoints"][0]["format"], "openai", "{status}");
    // The usage a translated stream reported is counted as any endpoint's.
    let metrics = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("qcc_tokens_today") && l.contains("kind=\"output\"") && l.ends_with(" 2")),
        "{metrics}"
    );
}

#[test]
fn a_failing_openai_endpoint_fails_over_to_an_anthropic_one() {
    let oai = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let ant = MockUpstream::start(Mode::Json { status: 200, body: r#"{"type":"message","content":[]}"#.into() });
    let home = TempHome::new();
    write_openai_then_anthropic(&home, &oai, &ant);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(proxy.addr, "POST", "/v1/messages", &[], BODY.as_bytes());
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"type":"message","content":[]}"#));
    assert_eq!((oai.hits(), ant.hits()), (1, 1));
    // A request that does not translate (not /v1/messages) never goes to the OpenAI endpoint.
    let r = request(proxy.addr, "GET", "/v1/models", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!((oai.hits(), ant.hits()), (1, 2));
}

#[test]
fn a_cluster_of_openai_endpoints_answers_models_and_token_counts_itself_and_probes_in_its_format() {
    let oai = MockUpstream::start(Mode::Json {
        status: 200,
        body: r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}]}"#.into(),
    });
    let home = TempHome::new();
    add(
        &home,
        &format!("{}/v1", oai.url()),
        &["--format", "openai", "--max-tokens-field", "max_completion_tokens", "--model-map", "claude-*=qwen3-coder"],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let models = request(proxy.addr, "GET", "/v1/models", &[], b"").json();
    assert_eq!(models["data"][0]["id"], "qwen3-coder", "{models}");
    let n = request(
        proxy.addr,
        "POST",
        "/v1/messages/count_tokens",
        &[],
        br#"{"model":"m","messages":[{"role":"user","content":"four score and seven years"}]}"#,
    );
    assert_eq!(n.status, 200);
    assert!(n.json()["input_tokens"].as_u64().is_some_and(|t| (5..=10).contains(&t)), "{}", n.text());
    let other = request(proxy.addr, "POST", "/v1/messages/batches", &[], b"{}");
    assert_eq!(other.status, 404);
    assert_eq!(other.json()["error"]["type"], "not_found_error");
    // Claude Code's reachability check (`HEAD /`, no key) is answered too, never a 503.
    let mut c = Conn::connect(proxy.addr);
    c.send(b"HEAD / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    assert_eq!(c.read_head().0, 404);
    assert_eq!(oai.hits(), 0, "nothing of that reached the upstream");
    // A non-streamed reply, with the endpoint's limit field.
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[],
        br#"{"model":"claude-haiku","max_tokens":9,"messages":[{"role":"user","content":"ping"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["content"][0]["text"], "pong");
    let sent: serde_json::Value = serde_json::from_slice(&oai.requests()[0].body).expect("json");
    assert_eq!((sent["max_completion_tokens"].as_u64(), sent.get("max_tokens")), (Some(9), None));
    // `health test` asks the endpoint in its own format.
    let out = home.run(&["health", "test", "c", "--json"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let probe = oai.requests().last().map(|r| (r.path.clone(), r.header("authorization").map(str::to_string)));
    assert_eq!(probe, Some(("/v1/chat/completions".to_string(), Some("Bearer sk-oai-0000000000".to_string()))));
}

#[test]
fn a_request_without_a_chat_completions_form_is_a_clear_400() {
    let oai = MockUpstream::start(Mode::Sse { events: chunks(), delay: Duration::ZERO });
    let home = TempHome::new();
    add(&home, &format!("{}/v1", oai.url()), &["--format", "openai"]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let pdf = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]}"#;
    let r = request(proxy.addr, "POST", "/v1/messages", &[], pdf.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().is_some_and(|m| m.contains("PDF")), "{}", r.text());
    assert_eq!(oai.hits(), 0);
}

#[test]
fn an_openai_endpoint_that_answers_garbage_or_a_cut_stream_is_failed_over() {
    let ant = MockUpstream::start(Mode::Json { status: 200, body: r#"{"type":"message","content":[]}"#.into() });
    for mode in [Mode::Garbage, Mode::TruncatedChunked, Mode::CloseBeforeHead] {
        let oai = MockUpstream::start(mode);
        let home = TempHome::new();
        write_openai_then_anthropic(&home, &oai, &ant);
        let proxy = Proxy::start(&home, &["--cluster", "c"]);
        let r = request(proxy.addr, "POST", "/v1/messages", &[], BODY.as_bytes());
        assert_eq!((r.status, r.text().as_str()), (200, r#"{"type":"message","content":[]}"#), "{}", proxy.log());
        assert_eq!(oai.hits(), 1);
    }
}

#[test]
fn a_request_that_does_not_translate_keeps_its_anthropic_endpoints_answer() {
    // The Anthropic endpoint fails a token count; the OpenAI one cannot take it: the client gets
    // the real answer (529), not "no available endpoints".
    let ant = MockUpstream::start(Mode::Status { status: 529, retry_after: None });
    let oai = MockUpstream::start(Mode::Sse { events: chunks(), delay: Duration::ZERO });
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[
            Ep::new("a0000001", &ant.url(), "sk-a-0000000000", 1),
            openai_ep("b0000001", &format!("{}/v1", oai.url()), 2),
        ],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(proxy.addr, "POST", "/v1/messages/count_tokens", &[], br#"{"model":"m","messages":[]}"#);
    assert_eq!(r.status, 529, "{}", r.text());
    assert_eq!((ant.hits(), oai.hits()), (1, 0));
}

/// A translated stream that pauses after its first token across the default 5 s hold arrives
/// whole, as an Anthropic one does (tests/streams.rs).
#[test]
fn a_translated_stream_quiet_after_its_first_token_is_not_cut_at_the_hold() {
    let released = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1)); // the first content chunk
    let oai = MockUpstream::start(Mode::SseGated { events: chunks(), released: released.clone() });
    let ant = MockUpstream::start(crate::support::mock::ok());
    let home = TempHome::new();
    write_openai_then_anthropic(&home, &oai, &ant);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let got = crate::streams::a_quiet_stream_arrives_whole(&proxy, BODY.as_bytes(), &released, "Hel", "message_stop");
    for want in ["\"text\":\"lo\"", "\"stop_reason\":\"end_turn\"", "\"output_tokens\":2"] {
        assert!(got.contains(want), "{want} in {got}");
    }
    assert_eq!(ant.hits(), 0, "never retried");
}

/// An HTTP/1.0 client gets a translated stream framed by the close: no chunked framing, which
/// RFC 9112 forbids toward it, and every event whole.
#[test]
fn an_http10_client_gets_a_translated_stream_framed_by_the_close() {
    let oai = MockUpstream::start(Mode::Sse { events: chunks(), delay: Duration::ZERO });
    let home = TempHome::new();
    add(&home, &format!("{}/v1", oai.url()), &["--format", "openai"]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    let req = format!("POST /v1/messages HTTP/1.0\r\ncontent-length: {}\r\n\r\n{BODY}", BODY.len());
    c.send(req.as_bytes());
    let raw = String::from_utf8(c.read_to_close()).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding"), "{head}");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert!(body.starts_with("event: message_start\n"), "no chunk framing: {body}");
    assert!(body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{body}");
}
