//! Failover, retries and the failure queue (issue 3): the 0.4.1 scenarios through the proxy.

use std::sync::Arc;
use std::time::Duration;

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::{post_messages, wait_until, Conn, Ep, Proxy, TempHome};

fn concurrently(n: usize, addr: std::net::SocketAddr) -> Vec<u16> {
    let handles: Vec<_> = (0..n).map(|_| std::thread::spawn(move || post_messages(addr).status)).collect();
    handles.into_iter().map(|h| h.join().expect("client thread")).collect()
}

fn count_info(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains("[INFO]") && l.contains(needle)).count()
}

#[test]
fn seed_scenario_two_failing_endpoints_ten_concurrent_requests_count_two() {
    let a = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let b = MockUpstream::start(Mode::Status { status: 502, retry_after: None });
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("f0000001", &a.url(), "sk-a-000000000001", 1), Ep::new("f0000002", &b.url(), "sk-b-000000000002", 2)],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    let statuses = concurrently(10, proxy.addr);
    assert!(statuses.iter().all(|s| *s == 500 || *s == 502), "{statuses:?}");
    let s = proxy.status();
    let q = &s["failure_queue"];
    assert_eq!(q["stats"]["total_failed"], 2, "{q}");
    assert_eq!(q["failed_endpoints_count"], 2);
    assert_eq!(q["failed_endpoints"].as_array().map(Vec::len), Some(2));
    let log = proxy.log();
    assert_eq!(count_info(&log, "added to failure queue"), 2, "{log}");
    // Named as everywhere else: name (here the host, none was given), then id.
    assert!(log.contains("endpoint 127.0.0.1 (f0000001) added to failure queue: HTTP 500"), "{log}");
    assert_eq!(s["requests"]["failed"], 10);
    assert_eq!((a.hits(), b.hits()), (10, 10), "one copy per endpoint: two attempts per request, not three");
}

#[test]
fn ten_distinct_failing_endpoints_under_concurrency_count_ten() {
    let mocks: Vec<MockUpstream> =
        (0..10).map(|_| MockUpstream::start(Mode::Status { status: 503, retry_after: None })).collect();
    let home = TempHome::new();
    let ids: Vec<String> = (0..10).map(|i| format!("d000000{i}")).collect();
    let urls: Vec<String> = mocks.iter().map(MockUpstream::url).collect();
    let eps: Vec<Ep> = (0..10)
        .map(|i| {
            Ep::new(&ids[i], &urls[i], "sk-d-0000000000", 1 + i as u32).with(serde_json::json!({"max_failures": 1}))
        })
        .collect();
    home.write_cluster("c", &eps);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--strategy", "round_robin", "--verify-interval", "3600"]);
    concurrently(20, proxy.addr);
    let s = proxy.status();
    let hit = mocks.iter().filter(|m| m.hits() > 0).count();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], hit as u64);
    assert_eq!(s["failure_queue"]["failed_endpoints_count"], hit as u64);
    assert_eq!(hit, 10, "20 requests × 3 attempts reach all 10 endpoints");
}

#[test]
fn primary_fails_secondary_serves_primary_recovers_after_probe_and_counts_again() {
    let primary = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let secondary = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[
            Ep::new("p0000001", &primary.url(), "sk-p-0000000000", 1).with(serde_json::json!({"max_failures": 1})),
            Ep::new("s0000001", &secondary.url(), "sk-s-0000000000", 2),
        ],
    );
    let proxy =
        Proxy::start(&home, &["--cluster", "c", "--verify-interval", "1", "--probe-model", "claude-probe-test"]);
    // The same request is retried on the secondary.
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 200);
    assert_eq!((primary.hits(), secondary.hits()), (1, 1));
    // Unhealthy primary: traffic goes straight to the secondary.
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!((primary.hits(), secondary.hits()), (1, 2));
    // Probes keep failing while the primary is down...
    assert!(wait_until(Duration::from_secs(5), || proxy.status()["failure_queue"]["stats"]["total_still_failed"]
        .as_u64()
        >= Some(1)));
    // ...and restore it once it answers.
    primary.set_mode(ok());
    assert!(wait_until(Duration::from_secs(5), || proxy.status()["failure_queue"]["failed_endpoints_count"] == 0));
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_recovered"], 1);
    let probe = primary
        .requests()
        .iter()
        .rev()
        .find(|r| r.path == "/v1/messages" && r.body.windows(17).any(|w| w == b"claude-probe-test"))
        .map(|r| (r.header("x-api-key").map(String::from), r.header("anthropic-version").map(String::from)));
    assert_eq!(
        probe,
        Some((Some("sk-p-0000000000".into()), Some("2023-06-01".into()))),
        "probe is the spec's tiny real request"
    );
    // The primary takes traffic again.
    let before = primary.hits();
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(primary.hits(), before + 1);
    // A later failure is counted again.
    primary.set_mode(Mode::Status { status: 500, retry_after: None });
    assert_eq!(post_messages(proxy.addr).status, 200);
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 2);
    let endpoints = s["endpoints"].as_array().cloned().unwrap_or_default();
    assert!(endpoints.iter().all(|e| e.get("api_key").is_none()), "no key in status");
    assert!(!s.to_string().contains("sk-p-0000000000"));
}

#[test]
fn client_errors_are_not_retried_or_blamed() {
    let a = MockUpstream::start(Mode::Status { status: 400, retry_after: None });
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("e0000001", &a.url(), "sk-e-000000000", 1), Ep::new("e0000002", &b.url(), "sk-e-000000000", 2)],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "mock 400");
    assert_eq!((a.hits(), b.hits()), (1, 0));
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["failed_endpoints_count"], 0);
    assert_eq!(s["endpoints"][0]["health"]["consecutive_failures"], 0);
}

#[test]
fn retry_after_keeps_the_endpoint_out_until_then() {
    let a = MockUpstream::start(Mode::Status { status: 429, retry_after: Some(60) });
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[
            Ep::new("r0000001", &a.url(), "sk-r-000000000", 1).with(serde_json::json!({"max_failures": 10})),
            Ep::new("r0000002", &b.url(), "sk-r-000000000", 2),
        ],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    a.set_mode(ok());
    for _ in 0..3 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    assert_eq!(a.hits(), 1, "not picked again inside Retry-After");
    assert_eq!(b.hits(), 4);
}

#[test]
fn all_attempts_failing_gives_502_or_504_in_anthropic_shape() {
    let home = TempHome::new();
    let dead = MockUpstream::refused_url();
    let hang = MockUpstream::start(Mode::Hang);
    home.write_cluster("c", &[Ep::new("x0000001", &dead, "sk-x-000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["type"], "error");
    assert!(r.json()["error"]["message"].as_str().unwrap_or("").contains("connect"));
    drop(proxy);
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("x0000002", &hang.url(), "sk-x-000000000", 1).with(serde_json::json!({"timeout": 1}))],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(hang.hits(), 1, "504 after the first timeout: one copy of the request, not three");
}

#[test]
fn every_endpoint_unusable_still_tries_the_cluster_in_priority_order() {
    let a = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let b = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let home = TempHome::new();
    let one = serde_json::json!({"max_failures": 1});
    home.write_cluster(
        "c",
        &[
            Ep::new("u0000001", &a.url(), "sk-u-000000000", 1).with(one.clone()),
            Ep::new("u0000002", &b.url(), "sk-u-000000000", 2).with(one),
        ],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 500);
    let s = proxy.status();
    assert_eq!(s["endpoints"][0]["usable"], false);
    assert_eq!(s["endpoints"][1]["usable"], false);
    a.set_mode(ok());
    let before = a.hits();
    assert_eq!(post_messages(proxy.addr).status, 200, "stale health must not refuse the request");
    assert_eq!(a.hits(), before + 1, "the primary is tried first");
}

#[test]
fn streaming_failure_mid_body_closes_the_client_connection() {
    for mode in [Mode::ResetMidBody { total: 1000, send: 100 }, Mode::TruncatedChunked] {
        let m = MockUpstream::start(mode);
        let home = TempHome::new();
        home.write_cluster("c", &[Ep::new("m0000001", &m.url(), "sk-m-000000000", 1)]);
        let proxy = Proxy::start(&home, &["--cluster", "c"]);
        let mut c = Conn::connect(proxy.addr);
        c.send_request("POST", "/v1/messages", &[], b"{}");
        let (status, _) = c.read_head();
        assert_eq!(status, 200);
        let (rest, closed) = c.try_read_to_close();
        assert!(closed, "the connection is closed, not left hanging");
        assert!(!rest.ends_with(b"0\r\n\r\n"), "never a silently complete chunked body");
        assert!(rest.len() < 1000);
        assert!(wait_until(Duration::from_secs(2), || proxy.status()["failure_queue"]["failed_endpoints_count"] == 1));
        assert_eq!(m.hits(), 1, "no retry once bytes reached the client");
    }
}

#[test]
fn persisted_queue_file_agrees_with_status_after_a_burst() {
    let mocks: Vec<MockUpstream> =
        (0..4).map(|_| MockUpstream::start(Mode::Status { status: 500, retry_after: None })).collect();
    let home = TempHome::new();
    let ids = ["q0000001", "q0000002", "q0000003", "q0000004"];
    let urls: Vec<String> = mocks.iter().map(MockUpstream::url).collect();
    let eps: Vec<Ep> = (0..4).map(|i| Ep::new(ids[i], &urls[i], "sk-q-000000000", 1)).collect();
    home.write_cluster("c", &eps);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--strategy", "round_robin", "--verify-interval", "3600"]);
    concurrently(30, proxy.addr);
    let path = home.home().join("failure_endpoints.json");
    assert!(wait_until(Duration::from_secs(3), || {
        let Ok(bytes) = std::fs::read(&path) else {
            return false;
        };
        let Ok(file) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return false;
        };
        let q = &proxy.status()["failure_queue"];
        file["stats"] == q["stats"]
            && file["failed_endpoints"].as_array().map(Vec::len)
                == q["failed_endpoints_count"].as_u64().map(|n| n as usize)
    }));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("queue file")).expect("json");
    assert_eq!(file["stats"]["total_failed"], 4);
    assert!(file["updated_at"].as_str().is_some_and(|t| t.len() == 26));
}

#[test]
fn restart_clears_queued_ids_and_keeps_counters() {
    let home = TempHome::new();
    std::fs::create_dir_all(home.home()).expect("home");
    std::fs::write(
        home.home().join("failure_endpoints.json"),
        r#"{"failed_endpoints": ["k0000001"], "last_check_times": {}, "stats": {"total_failed": 7, "total_verified": 3, "total_recovered": 1, "total_still_failed": 2}, "updated_at": "2025-10-17T10:05:00.123456"}"#,
    )
    .expect("write");
    let m = MockUpstream::start(ok());
    home.write_cluster("c", &[Ep::new("k0000001", &m.url(), "sk-k-000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let q = &proxy.status()["failure_queue"];
    assert_eq!(q["failed_endpoints_count"], 0);
    assert_eq!(q["stats"]["total_failed"], 7);
    drop(proxy);
    std::fs::write(home.home().join("failure_endpoints.json"), b"{ corrupt").expect("write");
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 0);
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy
            .log()
            .contains("failure_endpoints.json")),
        "corrupt file reported"
    );
}

#[test]
fn two_hundred_concurrent_requests_while_endpoints_flap_keep_counters_consistent() {
    let a = Arc::new(MockUpstream::start(ok()));
    let b = Arc::new(MockUpstream::start(ok()));
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("g0000001", &a.url(), "sk-g-000000000", 1), Ep::new("g0000002", &b.url(), "sk-g-000000000", 2)],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--strategy", "round_robin", "--verify-interval", "1"]);
    let flapper = {
        let (a, b) = (a.clone(), b.clone());
        std::thread::spawn(move || {
            for i in 0..20 {
                let bad = Mode::Status { status: 503, retry_after: None };
                let (x, y) = if i % 2 == 0 { (bad, ok()) } else { (ok(), bad) };
                a.set_mode(x);
                b.set_mode(y);
                std::thread::sleep(Duration::from_millis(25));
            }
            a.set_mode(ok());
            b.set_mode(ok());
        })
    };
    let addr = proxy.addr;
    let clients: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || (0..25).map(|_| post_messages(addr).status).collect::<Vec<u16>>()))
        .collect();
    // While it runs, the queue's list and the endpoints' own flags are two views of one state.
    for _ in 0..10 {
        let s = proxy.status();
        assert_queue_matches_endpoints(&s);
        std::thread::sleep(Duration::from_millis(20));
    }
    let statuses: Vec<u16> = clients.into_iter().flat_map(|h| h.join().expect("client")).collect();
    flapper.join().expect("flapper");
    assert_eq!(statuses.len(), 200);
    let s = proxy.status();
    let r = &s["requests"];
    let ok_count = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert_eq!(r["total"], 200);
    assert_eq!(r["successful"].as_u64(), Some(ok_count));
    assert_eq!(r["successful"].as_u64().unwrap_or(0) + r["failed"].as_u64().unwrap_or(0), 200);
    let q = &s["failure_queue"];
    assert_queue_matches_endpoints(&s);
    // The flapping must have been seen, or this test proves nothing.
    assert!(q["stats"]["total_failed"].as_u64() >= Some(1), "{q}");
    assert!(r["retries"].as_u64() >= Some(1), "{r}");
    let hits = (a.hits() + b.hits()) as u64;
    let per_ep: u64 = s["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["health"]["total_requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        per_ep + q["stats"]["total_verified"].as_u64().unwrap_or(0),
        hits,
        "every upstream hit is accounted once"
    );
}

/// `failure_queue.failed_endpoints` lists exactly the endpoints whose `in_failure_queue` is true.
fn assert_queue_matches_endpoints(s: &serde_json::Value) {
    let mut listed: Vec<String> = s["failure_queue"]["failed_endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let mut flagged: Vec<String> = s["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["in_failure_queue"] == true)
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect();
    listed.sort();
    flagged.sort();
    assert_eq!(listed, flagged, "{s}");
    assert_eq!(s["failure_queue"]["failed_endpoints_count"].as_u64(), Some(listed.len() as u64));
}
