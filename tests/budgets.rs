//! Budgets and usage that hold (issue 38): usage read whatever the client accepts, a client
//! that hangs up mid-answer charged all the same, requests that start together held to a budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::keys::{add_key, USAGE_BODY};
use crate::support::mock::{MockUpstream, Mode};
use crate::support::{request, stderr, wait_until, Conn, Ep, Proxy, TempHome};

/// Key `name`'s counters today, as `qcc usage --by key --json` shows them.
fn key_usage(home: &TempHome, name: &str) -> serde_json::Value {
    let out = home.run(&["usage", "--by", "key", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["keys"].as_object().and_then(|d| d.values().next()).map(|day| day[name].clone()).unwrap_or_default()
}

/// Claude Code asks for `gzip, deflate, br, zstd`; an upstream that compresses when asked would
/// hide every reply's usage. The upstream is asked for `identity`, and the usage is counted.
#[test]
fn usage_is_read_whatever_encodings_the_client_accepts() {
    let home = TempHome::new();
    let up = MockUpstream::start(Mode::GzipIfAsked { body: USAGE_BODY.into() });
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &[]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[("x-api-key", &bob), ("accept-encoding", "gzip, deflate, br, zstd"), ("content-type", "application/json")],
        br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(up.requests()[0].header("accept-encoding"), Some("identity"));
    let u = key_usage(&home, "bob");
    assert_eq!(u["tokens"], 8, "{u}");
    assert!(u["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{u}");
}

const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n";

fn delta(text: &str) -> String {
    format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n")
}

const END: &str = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// A client that hangs up mid-stream is charged: the final usage when the rest of the answer
/// comes within a few seconds (read for it, unrelayed), else `message_start`'s input and the
/// output estimated from the deltas it saw.
#[test]
fn a_client_that_hangs_up_mid_stream_is_charged() {
    let released = Arc::new(AtomicUsize::new(0));
    let start = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string();
    let events = vec![START.to_string(), start, delta(&"a".repeat(400)), delta("b"), END.to_string()];
    let up = MockUpstream::start(Mode::SseGated { events, released: released.clone() });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &[]);
    let carol = add_key(&home, "carol", &[]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[]}"#;

    // Bob hangs up after the first delta; the upstream then finishes: its final usage is charged.
    released.store(3, Ordering::SeqCst);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("x-api-key", &bob)], body);
    assert_eq!(c.read_head().0, 200);
    c.read_until(b"text_delta");
    drop(c);
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("aborted by the client")));
    released.store(5, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(5), || key_usage(&home, "bob")["output_tokens"] == 15),
        "{}",
        key_usage(&home, "bob")
    );
    assert_eq!(key_usage(&home, "bob")["input_tokens"], 25);

    // Carol hangs up the same way, and the upstream never finishes: charged from what was read.
    released.store(3, Ordering::SeqCst);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("x-api-key", &carol)], body);
    assert_eq!(c.read_head().0, 200);
    c.read_until(b"text_delta");
    drop(c);
    assert!(
        wait_until(Duration::from_secs(10), || key_usage(&home, "carol")["input_tokens"] == 25),
        "{}",
        key_usage(&home, "carol")
    );
    let out = key_usage(&home, "carol")["output_tokens"].as_u64().unwrap_or(0);
    assert!((50..=200).contains(&out), "output estimated from a 400-character delta: {out}");
    assert!(proxy.log().contains("estimated"), "{}", proxy.log());
    released.store(5, Ordering::SeqCst);
}

/// Twenty requests that start together on a 100-token budget: each reserves its estimate
/// (`max_tokens` and its size), so the budget is overshot by one request at most.
#[test]
fn requests_that_start_together_are_held_to_the_budget() {
    let up = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(300) });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &["--daily-tokens", "100"]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (addr, bob) = (proxy.addr, bob.clone());
            std::thread::spawn(move || {
                let body =
                    br#"{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#;
                request(addr, "POST", "/v1/messages", &[("x-api-key", &bob)], body).status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().expect("client")).collect();
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=2).contains(&served), "served {served} of 20: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20 - served);
    assert_eq!(up.hits(), served, "refused requests went nowhere");
    // Settled: nothing stays reserved once they are over (the mock reports no usage).
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &bob)], br#"{"max_tokens":50}"#);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// An upstream that reports a count no answer can have (u64::MAX, or a negative one) is read as
/// 0 for that counter: the totals never wrap down, on an Anthropic endpoint and a translated one,
/// and the answer itself still reaches the client.
#[test]
fn usage_never_wraps() {
    let huge = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":"end_turn","usage":{"input_tokens":18446744073709551615,"output_tokens":9}}"#;
    let chat = r#"{"id":"c1","object":"chat.completion","model":"glm","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":-4,"prompt_cache_hit_tokens":2}}"#;
    let ant = MockUpstream::start(Mode::Json { status: 200, body: huge.into() });
    let oai = MockUpstream::start(Mode::Json { status: 200, body: chat.into() });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &ant.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &["--daily-tokens", "1000000"]);
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    for _ in 0..2 {
        let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &bob)], body);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let u = key_usage(&home, "bob");
    assert_eq!((u["input_tokens"].as_u64(), u["output_tokens"].as_u64()), (Some(0), Some(18)), "{u}");
    let mut proxy = proxy;
    proxy.terminate();
    let oai_url = format!("{}/v1", oai.url());
    home.write_cluster(
        "c",
        &[Ep::new("b0000001", &oai_url, "sk-upstream-0000000002", 1)
            .with(serde_json::json!({"metadata": {"format": "openai"}}))],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &bob)], body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["usage"]["input_tokens"], 0, "{}", r.text());
    let u = key_usage(&home, "bob");
    assert_eq!((u["input_tokens"].as_u64(), u["output_tokens"].as_u64()), (Some(0), Some(18)), "{u}");
    assert_eq!(u["cache_read_input_tokens"].as_u64(), Some(0), "a cache read above the prompt is clipped to it: {u}");
}

/// A translated stream says its input only at its end. A client that leaves before then (every
/// Esc in Claude Code) is charged the request's input as its reservation estimates it, so
/// `--daily-tokens` holds on these endpoints too.
#[test]
fn an_abandoned_translated_stream_is_charged_its_input() {
    let chunks: Vec<String> = [
        r#"{"id":"c1","model":"glm","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
        r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2}}"#,
        "[DONE]",
    ]
    .iter()
    .map(|c| format!("data: {c}\n\n"))
    .collect();
    let released = Arc::new(AtomicUsize::new(1));
    let up = MockUpstream::start(Mode::SseGated { events: chunks, released: released.clone() });
    let home = TempHome::new();
    let url = format!("{}/v1", up.url());
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", &url, "sk-upstream-0000000001", 1)
            .with(serde_json::json!({"metadata": {"format": "openai"}}))],
    );
    let bob = add_key(&home, "bob", &[]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let text = "x".repeat(40_000);
    let body = format!(
        r#"{{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{{"role":"user","content":"{text}"}}]}}"#
    );
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("x-api-key", &bob)], body.as_bytes());
    assert_eq!(c.read_head().0, 200);
    c.read_until(b"Hel");
    drop(c);
    let want = body.len() as u64 / 4;
    assert!(
        wait_until(Duration::from_secs(10), || key_usage(&home, "bob")["input_tokens"] == want),
        "charged the estimate {want}: {} {}",
        key_usage(&home, "bob"),
        proxy.log()
    );
    assert!(proxy.log().contains("input estimated from the request's size"), "{}", proxy.log());
    released.store(5, Ordering::SeqCst);
}

/// A translated answer names the provider's model, which no price names: it is priced as the
/// model the client asked for, so `--daily-usd` holds, and the history says which price it was.
#[test]
fn a_translated_answer_is_priced_as_the_model_asked_for() {
    let chat = r#"{"id":"c1","object":"chat.completion","model":"glm-4.6","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":1000}}"#;
    let oai = MockUpstream::start(Mode::Json { status: 200, body: chat.into() });
    let home = TempHome::new();
    let url = format!("{}/v1", oai.url());
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", &url, "sk-upstream-0000000001", 1)
            .with(serde_json::json!({"metadata": {"format": "openai"}}))],
    );
    let bob = add_key(&home, "bob", &[]);
    let log = home.path("access.log");
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-log", log.to_str().expect("utf-8")]);
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &bob)], body);
    assert_eq!((r.status, r.json()["model"].as_str()), (200, Some("glm-4.6")), "{}", r.text());
    let u = key_usage(&home, "bob");
    let cost = u["cost_usd"].as_f64().unwrap_or(0.0);
    assert!((0.0179..0.0181).contains(&cost), "1000 in and 1000 out at Sonnet's $3 and $15 per million: {u}");
    assert!(wait_until(Duration::from_secs(3), || std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty())));
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).expect("log").lines().next().expect("a line"))
            .expect("json");
    assert_eq!(line["tokens"]["model"], "glm-4.6", "{line}");
    assert_eq!(line["tokens"]["priced_as"], "claude-sonnet-4-5", "{line}");
}

/// A `--concurrent 1` key whose client leaves mid-answer (an Esc in Claude Code) has its slot
/// back at once: its next request is served, while the answer left behind is still read for its
/// usage (and charged then).
#[test]
fn a_key_slot_is_free_as_soon_as_its_client_leaves() {
    let released = Arc::new(AtomicUsize::new(3));
    let start = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string();
    let events = vec![START.to_string(), start, delta("first"), delta("b"), END.to_string()];
    let up = MockUpstream::start(Mode::ByPath {
        routes: vec![("/v1/messages?slow".into(), Mode::SseGated { events, released: released.clone() })],
        other: Box::new(Mode::Json { status: 200, body: USAGE_BODY.into() }),
    });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &["--concurrent", "1"]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[]}"#;
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages?slow", &[("x-api-key", &bob)], body);
    assert_eq!(c.read_head().0, 200);
    c.read_until(b"first");
    drop(c);
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("aborted by the client")));
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &bob)], br#"{"max_tokens":8}"#);
    assert_eq!(r.status, 200, "the slot came back with the client's leaving: {}", r.text());
    released.store(5, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(5), || key_usage(&home, "bob")["output_tokens"].as_u64() == Some(18)),
        "the answer left behind is still charged: {}",
        key_usage(&home, "bob")
    );
}
