//! Seeing the proxy: the dashboard page, `/metrics`, `/_qcc/recent`, and the access log.

use serde_json::Value;

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::raw::one_endpoint;
use crate::support::*;
use std::time::Duration;

/// The page is one self-contained document: no CDN, no external font or script, small.
#[test]
fn the_dashboard_is_self_contained() {
    let mock = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(proxy.addr, "GET", "/_qcc/", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap_or("").starts_with("text/html"));
    let html = r.text();
    assert!(html.len() < 100 * 1024, "{} bytes", html.len());
    for external in ["http://", "https://", "//cdn", "src=\"", "@import", "url("] {
        assert!(!html.contains(external), "the page refers to something outside: {external}");
    }
    assert!(html.contains("prefers-color-scheme: dark") && html.contains("x-qcc-action"));
    assert_eq!(mock.hits(), 0, "served by qcc, never forwarded");
}

/// `/metrics` in the Prometheus text format: requests by endpoint and class, attempts, queue,
/// histogram, tokens, process metrics; never forwarded.
#[test]
fn metrics_in_prometheus_text_format() {
    let (a, b) = (
        MockUpstream::start(Mode::Status { status: 500, retry_after: None }),
        MockUpstream::start(Mode::Json {
            status: 200,
            body: r#"{"model":"claude-haiku-4-5","usage":{"input_tokens":3,"output_tokens":9}}"#.into(),
        }),
    );
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    for _ in 0..3 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    let r = request(proxy.addr, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap_or("").starts_with("text/plain; version=0.0.4"));
    let text = r.text();
    for line in [
        "qcc_requests_total{endpoint=\"b0000001\",name=\"127.0.0.1-2\",cluster=\"c\",class=\"2xx\"} 3",
        "qcc_upstream_attempts_total{endpoint=\"a0000001\",name=\"127.0.0.1\",cluster=\"c\",outcome=\"failed\"} 1",
        "qcc_upstream_attempts_total{endpoint=\"b0000001\",name=\"127.0.0.1-2\",cluster=\"c\",outcome=\"ok\"} 3",
        "qcc_retries_total 1",
        "qcc_failure_queue_size 1",
        "qcc_failure_queue_events_total{event=\"failed\"} 1",
        "qcc_upstream_ttfb_seconds_count{endpoint=\"b0000001\",name=\"127.0.0.1-2\",cluster=\"c\"} 3",
        "qcc_upstream_ttfb_seconds_bucket{endpoint=\"b0000001\",name=\"127.0.0.1-2\",cluster=\"c\",le=\"+Inf\"} 3",
        "qcc_tokens_today{endpoint=\"b0000001\",name=\"127.0.0.1-2\",model=\"claude-haiku-4-5\",kind=\"output\"} 27",
        "qcc_endpoint_up{endpoint=\"a0000001\",name=\"127.0.0.1\",cluster=\"c\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    for family in ["process_start_time_seconds", "process_resident_memory_bytes", "process_open_fds"] {
        assert!(text.contains(&format!("# TYPE {family} gauge")), "{family}");
    }
    assert_eq!(a.hits() + b.hits(), 4, "/metrics never forwarded");
    assert_eq!(request(proxy.addr, "POST", "/metrics", &[], b"").status, 405);
}

/// With an access key: the page loads (it asks for the key), every data view and /metrics
/// need the key; actions need the custom header too.
#[test]
fn access_rules_for_the_views() {
    let mock = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-key", "qcc-view-key-123"]);
    assert_eq!(request(proxy.addr, "GET", "/_qcc/", &[], b"").status, 200, "the page asks for the key itself");
    for path in ["/_qcc/status", "/_qcc/recent", "/_qcc/history", "/metrics"] {
        assert_eq!(request(proxy.addr, "GET", path, &[], b"").status, 401, "{path}");
        assert_eq!(request(proxy.addr, "GET", path, &[("x-api-key", "qcc-view-key-123")], b"").status, 200, "{path}");
    }
    let key = ("x-api-key", "qcc-view-key-123");
    assert_eq!(request(proxy.addr, "POST", "/_qcc/probe", &[key], b"").status, 403, "no x-qcc-action");
    assert_eq!(request(proxy.addr, "POST", "/_qcc/probe", &[("x-qcc-action", "1")], b"").status, 401, "no key");
    assert_eq!(request(proxy.addr, "POST", "/_qcc/probe", &[key, ("x-qcc-action", "1")], b"").status, 200);
    // A foreign page cannot post an action even with the header (its Origin is refused).
    let r = request(
        proxy.addr,
        "POST",
        "/_qcc/probe",
        &[key, ("x-qcc-action", "1"), ("origin", "http://evil.example")],
        b"",
    );
    assert_eq!(r.status, 403);
    // Disable from the dashboard: the config file changes and the cluster is re-read.
    let r = request(
        proxy.addr,
        "POST",
        "/_qcc/endpoint?endpoint=a0000001&enabled=false",
        &[key, ("x-qcc-action", "1")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cfg: Value = serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("json");
    assert_eq!(cfg["profiles"]["c"]["endpoints"][0]["enabled"], false);
    let s = request(proxy.addr, "GET", "/_qcc/status", &[key], b"").json();
    assert_eq!(s["endpoints"][0]["enabled"], false);
}

/// A home whose cluster `c` is one endpoint answering a Messages reply with token usage (the
/// mock is returned to keep it running).
fn usage_endpoint() -> (MockUpstream, TempHome) {
    let mock = MockUpstream::start(Mode::Json {
        status: 200,
        body: r#"{"model":"claude-haiku-4-5","usage":{"input_tokens":3,"output_tokens":9}}"#.into(),
    });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-SECRET00000", 1)]);
    (mock, home)
}

/// `--access-log`: one JSON line per request with its timing, bytes, session and tokens;
/// never a key or a body. `/_qcc/recent` has the same requests for the dashboard.
#[test]
fn the_access_log_has_one_line_per_request() {
    let (_mock, home) = usage_endpoint();
    let log = home.path("access.log");
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-log", log.to_str().unwrap()]);
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[("x-claude-code-session-id", "abcdef12-3456"), ("x-api-key", "sk-client-SECRET")],
        br#"{"model":"m","messages":[{"role":"user","content":"BODYSECRET"}]}"#,
    );
    assert_eq!(r.status, 200);
    assert!(
        wait_until(std::time::Duration::from_secs(5), || std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty()))
    );
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("SECRET"), "no key, no body: {text}");
    let line: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("json line");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/v1/messages");
    assert_eq!(line["endpoint"], "a0000001");
    assert_eq!(line["status"], "200");
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["session"], "abcdef12");
    assert_eq!(line["tokens"]["output"], 9);
    assert!(line["ttfb_ms"].is_u64() && line["duration_ms"].is_u64() && line["bytes_in"].as_u64() > Some(60));
    assert!(line["bytes_out"].as_u64() > Some(70), "{line}");
    let recent = request(proxy.addr, "GET", "/_qcc/recent", &[], b"").json();
    assert_eq!(recent["requests"][0]["path"], "/v1/messages");
    assert_eq!(recent["rps"].as_array().map(Vec::len), Some(300));
    assert_eq!(recent["rps"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 1);
    // Reopened on SIGHUP (logrotate moved it away).
    std::fs::rename(&log, home.path("access.log.1")).expect("rotate");
    proxy.signal(libc::SIGHUP);
    assert!(wait_until(std::time::Duration::from_secs(5), || log.exists()));
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert!(wait_until(std::time::Duration::from_secs(5), || std::fs::read_to_string(&log)
        .is_ok_and(|t| t.lines().count() == 1)));
}

/// The dashboard's ring keeps the newest 50 requests; a request recorded into the slot of an
/// old one shows nothing of it (no session, no tokens it did not have).
#[test]
fn the_recent_ring_keeps_the_newest_fifty_and_nothing_of_older_ones() {
    let (_mock, home) = usage_endpoint();
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    for _ in 0..50 {
        let r = request(proxy.addr, "POST", "/v1/messages", &[("x-claude-code-session-id", "abcdef12-3456")], b"{}");
        assert_eq!(r.status, 200);
    }
    for i in 0..5 {
        assert_eq!(request(proxy.addr, "GET", &format!("/other/{i}"), &[], b"").status, 200);
    }
    let recent = request(proxy.addr, "GET", "/_qcc/recent", &[], b"").json();
    let rows = recent["requests"].as_array().expect("requests");
    assert_eq!(rows.len(), 50);
    for (i, row) in rows[..5].iter().enumerate() {
        assert_eq!(row["path"], format!("/other/{}", 4 - i), "newest first: {row}");
        assert_eq!((row["method"].as_str(), row["status"].as_str()), (Some("GET"), Some("200")));
        assert!(row["session"].is_null() && row["tokens"].is_null(), "{row}");
    }
    for row in &rows[5..] {
        assert_eq!((row["path"].as_str(), row["session"].as_str()), (Some("/v1/messages"), Some("abcdef12")));
        assert_eq!(row["tokens"]["model"], "claude-haiku-4-5");
    }
}

/// A request qcc answers itself (here a 503: every endpoint disabled) is logged too.
#[test]
fn requests_answered_by_qcc_are_logged_too() {
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", "http://127.0.0.1:9", "sk-a-0000000000", 1).with(serde_json::json!({"enabled": false}))],
    );
    let log = home.path("access.log");
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-log", log.to_str().unwrap()]);
    assert_eq!(post_messages(proxy.addr).status, 503);
    assert!(wait_until(std::time::Duration::from_secs(5), || std::fs::read_to_string(&log)
        .is_ok_and(|t| t.contains("\"status\":\"503\""))));
}

/// logrotate moves proxy.log and sends SIGHUP: the proxy writes the new file. A client
/// in a refused loop does not write a line per request.
#[test]
fn the_log_is_reopened_on_hup_and_refusal_lines_are_rate_limited() {
    let m = MockUpstream::start(ok());
    let (home, proxy) = one_endpoint(&m.url(), &[]);
    let log = home.home().join("proxy.log");
    assert!(wait_until(Duration::from_secs(5), || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening"))));
    std::fs::rename(&log, home.home().join("proxy.log.1")).expect("rotate");
    proxy.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("reloaded"))),
        "the reload after the HUP is written to the new file"
    );
    for _ in 0..300 {
        let r = request(proxy.addr, "GET", "/v1/models", &[("sec-fetch-site", "cross-site")], b"");
        assert_eq!(r.status, 403);
    }
    assert!(wait_until(Duration::from_secs(5), || std::fs::read_to_string(&log)
        .is_ok_and(|t| t.contains("suppressed"))
        || proxy.status()["requests"]["log_lines_suppressed"].as_u64().unwrap_or(0) > 0));
    let lines = std::fs::read_to_string(&log).unwrap_or_default().lines().filter(|l| l.contains("-> 403")).count();
    assert!(lines < 100, "{lines} lines for 300 refused requests");
}
