//! Streams that fail after a 200: held until the first content event, retried while nothing was
//! released; in-stream errors blamed; token usage read from the events as they pass.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode};
use crate::support::raw::one_endpoint;
use crate::support::*;
use std::io::Read;
use std::time::Instant;

pub(crate) fn ev(kind: &str, data: &str) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

fn message_start(model: &str) -> String {
    ev(
        "message_start",
        &format!(
            r#"{{"type":"message_start","message":{{"id":"msg_1","type":"message","role":"assistant","model":"{model}","content":[],"usage":{{"input_tokens":25,"cache_creation_input_tokens":7,"cache_read_input_tokens":100,"output_tokens":1}}}}}}"#
        ),
    )
}

pub(crate) fn full_stream(model: &str) -> Vec<String> {
    vec![
        message_start(model),
        ev(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        ev("ping", r#"{"type": "ping"}"#),
        ev(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        ),
        ev("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
        ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#,
        ),
        ev("message_stop", r#"{"type":"message_stop"}"#),
    ]
}

fn overloaded() -> String {
    ev("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
}

fn sse(events: Vec<String>) -> Mode {
    Mode::Sse { events, delay: Duration::from_millis(5) }
}

fn two(home: &TempHome, a: &MockUpstream, b: &MockUpstream) {
    home.write_pair(&a.url(), &b.url());
}

fn stream_request(proxy: &Proxy) -> Response {
    let mut c = Conn::connect(proxy.addr);
    c.request("POST", "/v1/messages", &[("content-type", "application/json")], br#"{"stream":true}"#)
}

/// `overloaded_error` inside the primary's 200 stream, before any content: the client gets one
/// complete, clean stream from the secondary; the primary is queued with the reason.
#[test]
fn an_in_stream_error_before_content_is_retried_elsewhere() {
    let a = MockUpstream::start(sse(vec![message_start("m-a"), overloaded()]));
    let b = MockUpstream::start(sse(full_stream("m-b")));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    let r = stream_request(&proxy);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), full_stream("m-b").concat(), "exactly the secondary's stream, nothing of the primary's");
    assert_eq!((a.hits(), b.hits()), (1, 1));
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["failed_endpoints"], serde_json::json!(["a0000001"]));
    assert_eq!(s["streams"]["retried_before_content"], 1);
    assert_eq!(s["requests"]["successful"], 1);
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy
            .log()
            .contains("added to failure queue: in-stream overloaded_error")),
        "{}",
        proxy.log()
    );
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy
            .log()
            .contains("failed before any content")),
        "{}",
        proxy.log()
    );
}

/// The primary's connection dies after `message_start`: the same — retried, nothing leaks.
#[test]
fn a_death_before_content_is_retried_elsewhere() {
    let a = MockUpstream::start(Mode::SseThenDie { events: vec![message_start("m-a")] });
    let b = MockUpstream::start(sse(full_stream("m-b")));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    let r = stream_request(&proxy);
    assert_eq!((r.status, r.text()), (200, full_stream("m-b").concat()));
    assert_eq!(proxy.status()["failure_queue"]["failed_endpoints_count"], 1);
}

/// After content, an in-stream error passes through unchanged and is the endpoint's failure;
/// a death closes the client's connection as before. Neither is retried.
#[test]
fn after_content_errors_pass_through_and_deaths_close() {
    let mut events = full_stream("m-a");
    events.truncate(4); // up to the first content_block_delta
    events.push(overloaded());
    let a = MockUpstream::start(sse(events.clone()));
    let b = MockUpstream::start(sse(full_stream("m-b")));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    let r = stream_request(&proxy);
    assert_eq!((r.status, r.text()), (200, events.concat()), "the error event reaches the client");
    assert_eq!(b.hits(), 0, "content was relayed: no retry");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 1, "{s}");
    assert_eq!(s["streams"]["in_stream_errors"], 1);
    assert_eq!(s["requests"]["failed"], 1);
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy
            .log()
            .contains("200 (in-stream overloaded_error)")),
        "{}",
        proxy.log()
    );

    let mut events = full_stream("m-a");
    events.truncate(4);
    a.set_mode(Mode::SseThenDie { events });
    // A is queued now; B would serve. Make B the one that dies after content.
    b.set_mode(Mode::SseThenDie { events: full_stream("m-b")[..4].to_vec() });
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], br#"{"stream":true}"#);
    assert_eq!(c.read_head().0, 200);
    let (rest, closed) = c.try_read_to_close();
    assert!(closed, "connection closed");
    assert!(!String::from_utf8_lossy(&rest).contains("0\r\n\r\n"), "never looks complete");
}

/// A slow first token (long thinking sends pings): the hold ends after --stream-hold, the pings
/// reach the client, and nothing is retried.
#[test]
fn a_slow_first_token_is_released_after_the_hold() {
    let mut events = vec![message_start("m-a")];
    events.extend((0..6).map(|_| ev("ping", r#"{"type": "ping"}"#)));
    events.extend(full_stream("m-a")[3..].iter().cloned());
    let released = Arc::new(AtomicUsize::new(7)); // message_start and six pings; content waits
    let a = MockUpstream::start(Mode::SseGated { events: events.clone(), released: released.clone() });
    let b = MockUpstream::start(sse(full_stream("m-b")));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--stream-hold", "1"]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], br#"{"stream":true}"#);
    assert_eq!(c.read_head().0, 200, "the head is released after the hold, before any content");
    let pings = c.read_until(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
    assert!(String::from_utf8_lossy(&pings).contains("message_start"));
    released.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let rest = String::from_utf8_lossy(&c.read_until(b"0\r\n\r\n")).into_owned();
    assert!(rest.contains("message_stop"), "{rest}");
    assert_eq!(b.hits(), 0);
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 0);
}

/// Token usage is read from streams whose events are split at every byte offset, across reads
/// and chunk boundaries: the totals are exact. JSON replies count too; `qcc usage` shows them.
#[test]
fn token_usage_is_exact_whatever_the_splits() {
    let stream = full_stream("claude-sonnet-4-5").concat();
    let n = stream.len() + 1;
    let a = MockUpstream::start(Mode::ByPath {
        routes: vec![("/v1/messages?s".into(), Mode::SseSplit { stream: stream.clone(), next: Arc::new(AtomicUsize::new(0)) })],
        other: Box::new(Mode::Json {
            status: 200,
            body: r#"{"id":"msg_2","type":"message","model":"claude-haiku-4-5","content":[],"usage":{"input_tokens":3,"output_tokens":9,"cache_read_input_tokens":2}}"#.into(),
        }),
    });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1)]);
    let mut proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    for i in 0..n {
        let r = c.request("POST", "/v1/messages?s=1", &[("content-type", "application/json")], br#"{"stream":true}"#);
        assert_eq!(r.text(), stream, "split {i}: relayed byte for byte");
    }
    for _ in 0..3 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    let s = proxy.status();
    let today = &s["usage"]["today"]["a0000001"];
    let sonnet = &today["claude-sonnet-4-5"];
    let n = n as u64;
    assert_eq!(sonnet["requests"], n, "{s}");
    assert_eq!(sonnet["input_tokens"], 25 * n);
    assert_eq!(sonnet["output_tokens"], 15 * n);
    assert_eq!(sonnet["cache_creation_input_tokens"], 7 * n);
    assert_eq!(sonnet["cache_read_input_tokens"], 100 * n);
    assert_eq!(today["claude-haiku-4-5"]["requests"], 3);
    assert_eq!(today["claude-haiku-4-5"]["output_tokens"], 27);
    // Persisted at exit; `qcc usage --json` reads the file.
    assert_eq!(proxy.terminate().and_then(|s| s.code()), Some(0));
    let out = home.run(&["usage", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let u: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let day = s["usage"]["day"].as_str().expect("day");
    assert_eq!(u["days"][day]["a0000001"]["claude-sonnet-4-5"]["output_tokens"], 15 * n, "{u}");
    let table = stdout(&home.run(&["usage"]));
    assert!(table.contains("claude-sonnet-4-5") && table.contains(&format!("{}", 15 * n)), "{table}");
    // A restart keeps the counts.
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    assert_eq!(proxy.status()["usage"]["today"]["a0000001"]["claude-haiku-4-5"]["requests"], 3);
}

/// Leading events past the 64 KiB hold (a long run of pings before the first token) end the
/// hold: everything held goes out intact, and the stream continues as usual.
#[test]
fn a_hold_that_fills_up_releases_everything_intact() {
    let mut events = vec![message_start("m-a")];
    let pad = "p".repeat(1000);
    events.extend((0..100).map(|i| ev("ping", &format!(r#"{{"type": "ping", "n": {i}, "pad": "{pad}"}}"#))));
    events.extend(full_stream("m-a")[3..].iter().cloned());
    let a = MockUpstream::start(sse(events.clone()));
    let b = MockUpstream::start(sse(full_stream("m-b")));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = stream_request(&proxy);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), events.concat(), "head and every held event reach the client");
    assert_eq!(b.hits(), 0);
}

/// A bulk download beside an event stream on the same proxy: the stream's events keep coming
/// at their pace (the loop drives each connection a bounded number of rounds per turn).
#[test]
fn a_bulk_download_does_not_starve_an_event_stream() {
    use crate::support::mock::Mode;
    let events: Vec<String> =
        (0..40).map(|i| format!("event: ping\ndata: {{\"type\": \"ping\", \"i\": {i}}}\n\n")).collect();
    let m = MockUpstream::start(Mode::ByPath {
        routes: vec![("/v1/files".into(), Mode::Big { size: 300 << 20 })],
        other: Box::new(Mode::Sse { events, delay: Duration::from_millis(20) }),
    });
    let (_h, proxy) = one_endpoint(&m.url(), &["--stream-hold", "0"]);
    let addr = proxy.addr;
    let bulk = std::thread::spawn(move || {
        let mut c = Conn::connect(addr);
        c.send_request("GET", "/v1/files/big", &[], b"");
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0usize;
        let started = Instant::now();
        while got < 300 << 20 && started.elapsed() < Duration::from_secs(30) {
            match c.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    std::thread::sleep(Duration::from_millis(100)); // the download is under way
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], br#"{"stream":true}"#);
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..40 {
        c.read_until(format!("\"i\": {i}}}").as_bytes());
        worst = worst.max(last.elapsed());
        last = Instant::now();
    }
    assert!(worst < Duration::from_millis(1000), "an event waited {worst:?} behind the download");
    assert!(bulk.join().expect("bulk") > 0);
}

/// The first delta, then 7 s of silence (past the default 5 s hold), then the rest, relayed
/// through `proxy` from gated `events` of which the first `head` are sent at once: the whole
/// stream arrives, nothing is retried and no endpoint is blamed.
pub(crate) fn a_quiet_stream_arrives_whole(
    proxy: &Proxy,
    body: &[u8],
    released: &Arc<AtomicUsize>,
    first: &str,
    last: &str,
) -> String {
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], body);
    assert_eq!(c.read_head().0, 200);
    let mut got = String::from_utf8_lossy(&c.read_until(first.as_bytes())).into_owned();
    std::thread::sleep(Duration::from_secs(7));
    released.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    got.push_str(&String::from_utf8_lossy(&c.read_until(b"0\r\n\r\n")));
    assert!(got.contains(last), "the stream arrived whole: {got}");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "no endpoint blamed: {s}");
    assert_eq!(s["requests"]["successful"], 1, "{s}");
    got
}

/// A stream that pauses after its first content across the --stream-hold mark (5 s by default)
/// is relayed whole: only --stream-idle-timeout (60 s) of silence may end it.
#[test]
fn a_stream_quiet_after_its_first_token_is_not_cut_at_the_hold() {
    let events = full_stream("m-a");
    let released = Arc::new(AtomicUsize::new(4)); // up to the first content_block_delta
    let a = MockUpstream::start(Mode::SseGated { events: events.clone(), released: released.clone() });
    let b = MockUpstream::start(sse(full_stream("m-b")));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let got = a_quiet_stream_arrives_whole(&proxy, br#"{"stream":true}"#, &released, "Hello", "message_stop");
    for e in &events {
        assert!(got.contains(e.as_str()), "every event, as sent: {e} in {got}");
    }
    assert_eq!(b.hits(), 0, "never retried");
}
