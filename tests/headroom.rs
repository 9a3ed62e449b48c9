//! Headroom and sessions (issue 33): endpoints skipped before their rate limit runs out, by
//! what their own answers say; usage and cost per Claude Code session.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::mock::{read_request, MockUpstream, Mode};
use crate::support::{request, stdout, wait_until, Proxy, TempHome};

/// RFC 3339 UTC of `t` (seconds).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// An upstream with a window of `limit` requests per `window`: every answer says what is left
/// and when the window resets; past the limit it answers 429 (and counts them).
struct Limited {
    url: String,
    ok: Arc<AtomicUsize>,
    limited: Arc<AtomicUsize>,
}

fn limited(limit: usize, window: Duration) -> Limited {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let (ok, limited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let state = Arc::new(Mutex::new((SystemTime::now() + window, 0usize)));
    let (o, lim) = (ok.clone(), limited.clone());
    std::thread::spawn(move || {
        for sock in l.incoming().take(200) {
            let Ok(mut sock) = sock else { return };
            let (o, lim, state) = (o.clone(), lim.clone(), state.clone());
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(20)));
                let Ok(read_half) = sock.try_clone() else { return };
                let mut r = BufReader::new(read_half);
                while read_request(&mut r).is_some() {
                    let (reset, remaining, over) = {
                        let mut s = state.lock().expect("state");
                        if SystemTime::now() >= s.0 {
                            *s = (SystemTime::now() + window, 0);
                        }
                        let over = s.1 >= limit;
                        if !over {
                            s.1 += 1;
                        }
                        (s.0, limit - s.1, over)
                    };
                    let body =
                        r#"{"model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":10,"output_tokens":20}}"#;
                    let (status, counter) = if over { ("429 Too Many Requests", &lim) } else { ("200 OK", &o) };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                         anthropic-ratelimit-requests-limit: {limit}\r\nanthropic-ratelimit-requests-remaining: {remaining}\r\n\
                         anthropic-ratelimit-requests-reset: {}\r\n\r\n{body}",
                        body.len(),
                        rfc3339(reset)
                    );
                    if sock.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Limited { url, ok, limited }
}

fn post(proxy: &Proxy, session: &str) -> u16 {
    let mut h = vec![("content-type", "application/json")];
    if !session.is_empty() {
        h.push(("x-claude-code-session-id", session));
    }
    request(proxy.addr, "POST", "/v1/messages", &h, br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#)
        .status
}

#[test]
fn an_endpoint_that_said_it_is_used_up_gets_no_request_until_its_reset() {
    let a = limited(5, Duration::from_secs(60));
    let b = MockUpstream::start(Mode::Json { status: 200, body: r#"{"content":[]}"#.into() });
    let home = TempHome::new();
    home.add_named_pair(&a.url, &b.url());
    let proxy = Proxy::start(&home, &["--verify-interval", "3600"]);
    for i in 0..12 {
        assert_eq!(post(&proxy, ""), 200, "request {i}");
    }
    assert_eq!(a.ok.load(Ordering::SeqCst), 5, "a served its window");
    assert_eq!(a.limited.load(Ordering::SeqCst), 0, "and never had to say 429");
    assert_eq!(b.hits(), 7);
    let s = proxy.status();
    assert_eq!(s["endpoints"][0]["headroom"]["dimensions"]["requests"]["remaining"], 0, "{s}");
    assert!(s["endpoints"][0]["headroom"]["blocked_secs"].as_u64() > Some(0), "{s}");
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "nobody blamed");
    assert!(
        wait_until(Duration::from_secs(5), || proxy.log().contains("skipped=a (rate limit used up)")),
        "{}",
        proxy.log()
    );
    let metrics = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("qcc_ratelimit_remaining{endpoint=") && metrics.contains("dimension=\"requests\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("qcc_ratelimit_limit{") && metrics.contains("dimension=\"requests\"} 5"), "{metrics}");
    let status = stdout(&home.run(&["proxy", "status"]));
    assert!(status.contains("rate limit a: requests 0/5 until"), "{status}");
}

#[test]
fn a_session_moves_while_its_endpoint_is_used_up_and_comes_back_after_the_reset() {
    let a = limited(2, Duration::from_secs(3));
    let b = MockUpstream::start(Mode::Json { status: 200, body: r#"{"content":[]}"#.into() });
    let home = TempHome::new();
    home.add_named_pair(&a.url, &b.url());
    let proxy = Proxy::start(&home, &["--verify-interval", "3600"]);
    let session = "0b9d3d5e-1111-4222-8333-444455556666";
    for _ in 0..4 {
        assert_eq!(post(&proxy, session), 200);
    }
    assert_eq!((a.ok.load(Ordering::SeqCst), b.hits()), (2, 2), "two on a, then b while a is used up");
    std::thread::sleep(Duration::from_millis(3300)); // a's window resets
    assert_eq!(post(&proxy, session), 200);
    assert_eq!(a.ok.load(Ordering::SeqCst), 3, "the session came back to its endpoint");
    assert_eq!(a.limited.load(Ordering::SeqCst), 0);
}

#[test]
fn usage_and_cost_per_claude_code_session() {
    let m = MockUpstream::start(Mode::Json {
        status: 200,
        body: r#"{"model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":1000000,"output_tokens":0}}"#.into(),
    });
    let home = TempHome::new();
    assert!(home.run(&["endpoint", "add", "c", "--url", &m.url(), "--key", "sk-a-0000000000"]).status.success());
    let proxy = Proxy::start(&home, &[]);
    for s in ["s-one", "s-one", "s-two"] {
        assert_eq!(post(&proxy, s), 200);
    }
    assert_eq!(post(&proxy, ""), 200, "no session: counted per endpoint only");
    let v: serde_json::Value =
        serde_json::from_slice(&home.run(&["usage", "--by", "session", "--json"]).stdout).expect("json");
    let day = v["sessions"].as_object().and_then(|d| d.values().next()).expect("today");
    assert_eq!(day["s-one"]["requests"], 2, "{v}");
    assert!((day["s-one"]["cost_usd"].as_f64().expect("cost") - 6.0).abs() < 1e-9, "2M input at $3: {v}");
    assert_eq!(day["s-two"]["requests"], 1);
    assert_eq!(day.as_object().expect("map").len(), 2);
    let top = &proxy.status()["usage"]["top_sessions"];
    assert_eq!(top[0]["session"], "s-one", "{top}");
    let text = stdout(&home.run(&["usage", "--by", "session"]));
    assert!(text.contains("s-one") && text.contains("$6.00"), "{text}");
}

/// Rate-limit counts near the top of u64 are read without overflow: the proxy keeps serving.
#[test]
fn huge_rate_limit_counts_do_not_overflow() {
    let max = u64::MAX.to_string();
    let headers = vec![
        format!("anthropic-ratelimit-tokens-limit: {max}"),
        format!("anthropic-ratelimit-tokens-remaining: {max}"),
        format!("anthropic-ratelimit-requests-limit: {max}"),
        "anthropic-ratelimit-requests-remaining: 18446744073709551614".to_string(),
    ];
    let up = MockUpstream::start(Mode::JsonWith { headers, body: "{}".into() });
    let home = TempHome::new();
    home.write_cluster("c", &[crate::support::Ep::new("a0000001", &up.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    for _ in 0..3 {
        assert_eq!(request(proxy.addr, "POST", "/v1/messages", &[], b"{}").status, 200);
    }
    let s = proxy.status();
    // The tightest dimension: requests, one short of the top of u64.
    assert_eq!(s["endpoints"][0]["headroom"]["share"], 999, "{}", s["endpoints"][0]["headroom"]);
}

/// Endpoint caps (`--concurrent`, `--rpm`, `--tpm`) steer like headroom: at its cap an endpoint
/// is skipped, never failed or queued; bad caps are one line and write nothing.
#[test]
fn an_endpoint_at_its_concurrency_cap_is_skipped_not_failed() {
    let a = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(600) });
    let b = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(600) });
    let home = TempHome::new();
    home.add_named_pair(&a.url(), &b.url());
    let out = home.run(&["endpoint", "set", "c", "a", "--concurrent", "1"]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    for bad in [&["--rpm", "-1"][..], &["--concurrent", "0"], &["--tpm", "lots"]] {
        let before = std::fs::read(home.config()).expect("config");
        let mut args = vec!["endpoint", "set", "c", "a"];
        args.extend_from_slice(bad);
        let out = home.run(&args);
        let err = crate::support::stderr(&out);
        assert!(!out.status.success() && err.contains("at least 1") && err.lines().count() == 1, "{bad:?}: {err}");
        assert_eq!(std::fs::read(home.config()).expect("config"), before, "nothing written");
    }
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    assert_eq!(proxy.status()["endpoints"][0]["caps"]["concurrent"], 1);
    let addr = proxy.addr;
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#;
    let threads: Vec<_> = (0..3)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 100 }));
            std::thread::spawn(move || request(addr, "POST", "/v1/messages", &[], body).status)
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!((a.hits(), b.hits()), (1, 2), "one on the capped endpoint, the rest on the next");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["failed_endpoints_count"], 0, "{s}");
    assert_eq!(s["endpoints"][0]["health"]["status"], "healthy", "{}", s["endpoints"][0]);
    // Under its cap again, it is first again.
    assert_eq!(request(addr, "POST", "/v1/messages", &[], body).status, 200);
    assert_eq!(a.hits(), 2);
}

/// `--tpm` holds when requests start together: each holds its estimate (`max_tokens` and its
/// size) against the cap while it is in progress, so twenty parallel requests put at most what
/// the cap allows on the capped endpoint and the rest go to the next.
#[test]
fn a_tpm_cap_holds_for_requests_that_start_together() {
    let a = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(400) });
    let b = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(400) });
    let home = TempHome::new();
    home.add_named_pair(&a.url(), &b.url());
    let out = home.run(&["endpoint", "set", "c", "a", "--tpm", "300"]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let addr = proxy.addr;
    // An estimate of 100 + 19 tokens each: two fit under 300, a third does not.
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let threads: Vec<_> =
        (0..20).map(|_| std::thread::spawn(move || request(addr, "POST", "/v1/messages", &[], body).status)).collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!((1..=3).contains(&a.hits()), "at most the cap's worth on the capped endpoint: {}", a.hits());
    assert_eq!(a.hits() + b.hits(), 20);
}
