//! The soak run behind `scripts/soak.sh` (ignored in `cargo test`): mixed normal and streaming
//! load plus injected faults for `SOAK_SECS`, then a report; fails if anything leaked or died.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::{fd_count, proc_status_kib, rss_kib, wait_until, Conn, Ep, Proxy, TempHome};

#[test]
#[ignore = "long-running; run by scripts/soak.sh"]
fn soak() {
    let secs: u64 = std::env::var("SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let events: Vec<String> = (0..5).map(|i| format!("event: delta\ndata: {{\"i\":{i}}}\n\n")).collect();
    let stable = MockUpstream::start(ok());
    let flaky = Arc::new(MockUpstream::start(ok()));
    let stream = MockUpstream::start(Mode::Sse { events, delay: Duration::from_millis(20) });
    let home = TempHome::new();
    let fast = serde_json::json!({"timeout": 2});
    home.write_cluster(
        "soak",
        &[
            Ep::new("5000f001", &flaky.url(), "sk-soak-0001", 1).with(fast.clone()),
            Ep::new("5000f002", &stable.url(), "sk-soak-0002", 2).with(fast),
        ],
    );
    let sse_home = TempHome::new();
    sse_home.write_cluster("sse", &[Ep::new("5000f003", &stream.url(), "sk-soak-0003", 1)]);
    // The gap case: content first, then a pause past the stream hold (1 s here), then the rest.
    // Held streams need a second endpoint to fail over to.
    let content = |i: u32| {
        format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{i}\"}}}}\n\n")
    };
    let gapped =
        MockUpstream::start(Mode::Sse { events: (0..3).map(content).collect(), delay: Duration::from_millis(1300) });
    let gap_home = TempHome::new();
    gap_home.write_cluster(
        "gap",
        &[Ep::new("5000f004", &gapped.url(), "sk-soak-0004", 1), Ep::new("5000f005", &stable.url(), "sk-soak-0005", 2)],
    );
    let proxy = Proxy::start(&home, &["--cluster", "soak", "--verify-interval", "2", "--log-level", "warn"]);
    let sse_proxy = Proxy::start(&sse_home, &["--cluster", "sse", "--log-level", "warn"]);
    let gap_proxy = Proxy::start(&gap_home, &["--cluster", "gap", "--stream-hold", "1", "--log-level", "warn"]);
    let pid = proxy.child.id();
    std::thread::sleep(Duration::from_millis(300));
    let (fd0, rss0) = (fd_count(pid), rss_kib(pid));

    let stop = Arc::new(AtomicBool::new(false));
    let counters: Arc<[AtomicU64; 6]> = Arc::new(Default::default()); // ok, 4xx, 5xx, cut, streams, stream_errors
    let deadline = Instant::now() + Duration::from_secs(secs);
    let injector = {
        let (flaky, stop) = (flaky.clone(), stop.clone());
        std::thread::spawn(move || {
            let faults = [
                Mode::Status { status: 503, retry_after: None },
                Mode::CloseBeforeHead,
                Mode::Garbage,
                Mode::ResetMidBody { total: 64, send: 8 },
                Mode::Status { status: 429, retry_after: Some(1) },
                Mode::Slow { delay: Duration::from_secs(3) },
            ];
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                flaky.set_mode(faults[i % faults.len()].clone());
                std::thread::sleep(Duration::from_millis(300));
                flaky.set_mode(ok());
                std::thread::sleep(Duration::from_millis(700));
                i += 1;
            }
        })
    };
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (stop, counters) = (stop.clone(), counters.clone());
            let (addr, sse_addr, gap_addr) = (proxy.addr, sse_proxy.addr, gap_proxy.addr);
            std::thread::spawn(move || {
                let mut conn = Conn::connect(addr);
                while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
                    if w == 0 {
                        let mut s = Conn::connect(sse_addr);
                        s.send_request("POST", "/v1/messages", &[], br#"{"stream":true}"#);
                        let ok = s
                            .try_response()
                            .is_some_and(|r| r.status == 200 && r.text().matches("event: delta").count() == 5);
                        counters[if ok { 4 } else { 5 }].fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if w == 1 {
                        let mut s = Conn::connect(gap_addr);
                        s.send_request("POST", "/v1/messages", &[], br#"{"stream":true}"#);
                        let ok = s
                            .try_response()
                            .is_some_and(|r| r.status == 200 && r.text().matches("content_block_delta").count() == 6);
                        counters[if ok { 4 } else { 5 }].fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    conn.send_request(
                        "POST",
                        "/v1/messages",
                        &[("content-type", "application/json")],
                        b"{\"model\":\"m\"}",
                    );
                    match conn.try_response() {
                        Some(r) if r.status < 400 => counters[0].fetch_add(1, Ordering::Relaxed),
                        Some(r) if r.status < 500 => counters[1].fetch_add(1, Ordering::Relaxed),
                        Some(_) => counters[2].fetch_add(1, Ordering::Relaxed),
                        None => {
                            conn = Conn::connect(addr);
                            counters[3].fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    stop.store(true, Ordering::SeqCst);
    injector.join().expect("injector");
    flaky.set_mode(ok());

    let alive = proxy_child_alive(&proxy);
    let settled = wait_until(Duration::from_secs(5), || proxy.status()["connections"]["clients"] == 1);
    let s = proxy.status();
    let idle = s["connections"]["idle_upstreams"].as_u64().unwrap_or(0) as usize;
    // (The least of a few looks: a state file being written by the disk thread holds a
    // descriptor or two for a moment, which is not a leak.)
    let fd1 = (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(200));
            fd_count(pid)
        })
        .min()
        .unwrap_or(0);
    let (rss1, hwm) = (rss_kib(pid), proc_status_kib(pid, "VmHWM:"));
    let c: Vec<u64> = counters.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    println!("soak: {secs}s");
    println!(
        "  requests ok {}, 4xx {}, 5xx {}, cut mid-body {}; streams ok {}, stream errors {}",
        c[0], c[1], c[2], c[3], c[4], c[5]
    );
    println!("  proxy counters: {}", s["requests"]);
    println!("  failure queue: {}", s["failure_queue"]["stats"]);
    println!(
        "  fds {fd0} -> {fd1} ({idle} idle pooled upstream connections); RSS {rss0} -> {rss1} KiB, peak {hwm} KiB"
    );
    assert!(alive, "proxy died");
    assert!(settled, "client connections not closed: {}", s["connections"]);
    assert!(fd1 <= fd0 + idle + 1, "fd leak: {fd0} -> {fd1}");
    assert!(rss1 < rss0 + 8 * 1024, "RSS grew {rss0} -> {rss1} KiB");
    assert!(c[0] > 0 && c[4] > 0, "load ran");
    assert_eq!(c[5], 0, "every stream arrived whole, the ones with a gap past the hold too");
    assert_eq!(
        gapped.hits() as u64,
        gap_proxy.status()["requests"]["successful"].as_u64().unwrap_or(0),
        "none cut or retried"
    );
    let r = &s["requests"];
    let sum: u64 =
        ["successful", "failed", "aborted", "rejected", "in_flight"].iter().map(|k| r[k].as_u64().unwrap_or(0)).sum();
    assert_eq!(r["total"].as_u64(), Some(sum), "counters agree");
}

fn proxy_child_alive(p: &Proxy) -> bool {
    crate::support::fd_count(p.child.id()) > 0
}
