//! The request history (issue 31): `qcc logs` and `/_qcc/logs` search the JSON access log, its
//! rotated files included, and each entry says what happened to each attempt.

use std::time::Duration;

use crate::keys::{add_key, keys_loaded, usage_upstream, with_key};
use crate::support::mock::{MockUpstream, Mode};
use crate::support::{request, stderr, stdout, wait_until, Proxy, TempHome};

fn logs(home: &TempHome, args: &[&str]) -> serde_json::Value {
    let out = home.qcc().arg("logs").args(args).arg("--json").output().expect("run qcc");
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn what_happened_to_each_request_is_found_by_endpoint_key_status_and_time() {
    let home = TempHome::new();
    let down = MockUpstream::start(Mode::Status { status: 503, retry_after: None });
    let up = usage_upstream();
    home.add_named_pair(&down.url(), &up.url());
    let log = home.path("access.log");
    // An older file as logrotate leaves it: found too, after the live one.
    let old = r#"{"time":"2026-01-05T09:00:00.000000","method":"POST","path":"/v1/messages","endpoint":"x","endpoint_name":"a","status":"429","attempts":1,"key":"bob","tried":[{"endpoint":"x","name":"a","outcome":"HTTP 429","ms":4}]}"#;
    std::fs::write(home.path("access.log.1"), format!("{old}\n")).expect("write rotated");
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-log", log.to_str().expect("utf-8")]);
    let bob = add_key(&home, "bob", &[]);
    keys_loaded(&proxy, 1);
    for _ in 0..3 {
        assert_eq!(with_key(&proxy, &bob).status, 200);
    }
    assert!(wait_until(Duration::from_secs(3), || std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 3)));

    let all = logs(&home, &["--key", "bob", "-n", "10"]);
    let all = all.as_array().expect("entries");
    assert_eq!(all.len(), 4, "three today, one from the rotated file: {all:?}");
    assert_eq!(all[3]["time"], "2026-01-05T09:00:00.000000", "newest first, the rotated file last");
    // The first request: a's 503, then b's 200, each with its time.
    let first = &all[2];
    let tried = first["tried"].as_array().expect("tried");
    assert_eq!(tried.len(), 2, "{first}");
    assert_eq!((tried[0]["name"].as_str(), tried[0]["outcome"].as_str()), (Some("a"), Some("HTTP 503")));
    assert_eq!((tried[1]["name"].as_str(), tried[1]["outcome"].as_str()), (Some("b"), Some("200")));
    assert!(tried.iter().all(|t| t["ms"].is_u64()));
    assert_eq!(first["key"], "bob");
    assert_eq!(first["tokens"]["input"], 5);
    // Filters: the failed endpoint, a status class, a time window, a model.
    assert_eq!(logs(&home, &["--endpoint", "a", "--since", "1h"]).as_array().map(Vec::len), Some(1));
    assert_eq!(logs(&home, &["--status", "429"]).as_array().map(Vec::len), Some(1));
    // A status met on the way counts: the request that failed over from a's 503 to b's 200.
    let failed_over = logs(&home, &["--status", "5xx"]);
    assert_eq!(failed_over.as_array().map(Vec::len), Some(1), "{failed_over}");
    assert_eq!(failed_over[0]["status"], "200");
    assert_eq!(logs(&home, &["--status", "503", "--key", "bob"]).as_array().map(Vec::len), Some(1));
    assert_eq!(logs(&home, &["--until", "2026-06-01"]).as_array().map(Vec::len), Some(1));
    assert_eq!(logs(&home, &["--model", "claude-sonnet-4-5", "-n", "2"]).as_array().map(Vec::len), Some(2));
    let table = home.qcc().args(["logs", "--endpoint", "a"]).output().expect("run");
    let text = stdout(&table);
    assert!(text.contains("a HTTP 503 → b 200") && text.contains("bob"), "{text}");
    // The table, newest first as documented: the rotated file's entry is the last row.
    let table = stdout(&home.qcc().args(["logs", "--key", "bob"]).output().expect("run"));
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(rows.last().is_some_and(|r| r.starts_with("2026-01-05")), "{table}");
    assert!(!rows[0].starts_with("2026-01-05"), "{table}");
    // Bad filters: one line, exit 2.
    for bad in [["--status", "6xx"], ["--since", "yesterday"]] {
        let out = home.qcc().arg("logs").args(bad).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(stderr(&out).lines().next().map(|l| l.starts_with("qcc: error: ")), Some(true));
    }

    // The dashboard's search: the same entries, a page at a time, off the loop.
    let page = |q: &str| request(proxy.addr, "GET", &format!("/_qcc/logs?{q}"), &[("x-api-key", &bob)], b"");
    assert_eq!(page("n=2").status, 403, "a client key without --admin may not search");
    let admin = add_key(&home, "ops", &["--admin"]);
    keys_loaded(&proxy, 2);
    let get = |q: &str| request(proxy.addr, "GET", &format!("/_qcc/logs?{q}"), &[("x-api-key", &admin)], b"");
    let p1 = get("key=bob&n=2").json();
    assert_eq!(p1["entries"].as_array().map(Vec::len), Some(2));
    let next = p1["next"].as_str().expect("a next page").to_string();
    let p2 = get(&format!("key=bob&n=2&cursor={next}")).json();
    assert_eq!(p2["entries"].as_array().map(Vec::len), Some(2));
    assert!(p2["next"].is_null(), "exhausted: {p2}");
    assert_eq!(p2["entries"][1]["status"], "429");
    assert_eq!(get("status=nope").status, 400);
}

/// The request history is on by default (`$QCC_HOME/access.jsonl`): a proxy started as `qcc
/// use`, `qcc env` or the service start it has one, and `qcc logs` finds it, the proxy running
/// or not. `--no-access-log` keeps none, and both say so.
#[test]
fn the_history_is_on_by_default_and_off_when_asked() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.add_named_pair(&up.url(), &up.url());
    let mut proxy = Proxy::start(&home, &["--cluster", "c"]);
    assert_eq!(request(proxy.addr, "POST", "/v1/messages", &[], b"{}").status, 200);
    let log = home.home().join("access.jsonl");
    assert!(wait_until(Duration::from_secs(3), || log.metadata().is_ok_and(|m| m.len() > 0)), "no default history");
    assert_eq!(logs(&home, &[]).as_array().map(Vec::len), Some(1));
    let r = request(proxy.addr, "GET", "/_qcc/logs", &[], b"");
    assert_eq!(r.json()["entries"].as_array().map(Vec::len), Some(1), "{}", r.text());
    assert!(proxy.terminate().is_some_and(|s| s.success()));
    assert_eq!(logs(&home, &[]).as_array().map(Vec::len), Some(1), "found with no proxy running");

    let off = TempHome::new();
    off.add_named_pair(&up.url(), &up.url());
    let proxy = Proxy::start(&off, &["--cluster", "c", "--no-access-log"]);
    assert_eq!(request(proxy.addr, "POST", "/v1/messages", &[], b"{}").status, 200);
    let r = request(proxy.addr, "GET", "/_qcc/logs", &[], b"");
    assert_eq!(r.status, 409);
    assert!(r.text().contains("--no-access-log"), "{}", r.text());
    let out = off.qcc().args(["logs"]).output().expect("run");
    assert!(!out.status.success() && stderr(&out).contains("--no-access-log"), "{}", stderr(&out));
    assert!(!off.home().join("access.jsonl").exists());
    let both = off.run(&["proxy", "start", "--access-log", "x.jsonl", "--no-access-log"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

/// A stalled disk under the request history (an access log nobody drains: a FIFO without a
/// reader) drops history lines and counts them in `/metrics`; requests, reloads and dashboard
/// edits go on without waiting behind them.
#[test]
fn a_stalled_history_disk_drops_lines_counted_and_edits_never_wait() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.add_named_pair(&up.url(), &up.url());
    let fifo = home.home().join("stalled.fifo");
    std::fs::create_dir_all(home.home()).expect("home");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-log", fifo.to_str().expect("path")]);
    // Traffic until the history's queue (64 batches of a tenth of a second) is full and lines
    // are dropped; bounded: four clients, at most 30 s.
    let dropped = |addr| {
        let metrics = request(addr, "GET", "/metrics", &[], b"").text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("qcc_history_dropped_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("qcc_history_dropped_total")
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop) = (proxy.addr, stop.clone());
            std::thread::spawn(move || {
                let mut c = crate::support::Conn::connect(addr);
                let until = std::time::Instant::now() + Duration::from_secs(30);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < until {
                    assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 200);
                }
            })
        })
        .collect();
    let counted = wait_until(Duration::from_secs(30), || dropped(proxy.addr) > 0);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in clients {
        c.join().expect("client");
    }
    assert!(counted, "no line dropped in 30 s of traffic to a stalled disk");
    // Edits and reloads are not queued behind the stalled lines.
    let out = home.run(&["endpoint", "disable", "c", "b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_until(Duration::from_secs(3), || {
        let s = request(proxy.addr, "GET", "/_qcc/status", &[], b"").json();
        s["endpoints"][1]["enabled"] == false
    }));
    // A stop is not held up by the stalled log (its lines wait a few seconds at most).
    let mut proxy = proxy;
    let stopped = std::time::Instant::now();
    assert!(proxy.terminate().is_some_and(|s| s.success()), "the proxy did not stop");
    assert!(stopped.elapsed() < Duration::from_secs(15), "stopping took {:?}", stopped.elapsed());
}

/// A search past its time limit answers with its own message (not a config error) and stops.
#[test]
fn a_search_past_its_time_limit_says_so() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.add_named_pair(&up.url(), &up.url());
    let log = home.home().join("access.jsonl");
    let mut cmd = home.qcc();
    cmd.env("QCC_SEARCH_LIMIT_MS", "0").args([
        "proxy",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--cluster",
        "c",
        "--access-log",
        log.to_str().expect("path"),
    ]);
    cmd.stderr(std::process::Stdio::null());
    let proxy = Proxy::spawn(&home, cmd);
    assert_eq!(request(proxy.addr, "POST", "/v1/messages", &[], b"{}").status, 200);
    assert!(wait_until(Duration::from_secs(3), || log.metadata().is_ok_and(|m| m.len() > 0)));
    let r = request(proxy.addr, "GET", "/_qcc/logs", &[], b"");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        r.json()["error"]["message"].as_str().is_some_and(|m| m.contains("search ran out of time")),
        "{}",
        r.text()
    );
    // The next search may run (the first one is over).
    assert_eq!(request(proxy.addr, "GET", "/_qcc/logs", &[], b"").status, 504);
}
