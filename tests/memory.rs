//! Bounded memory: request bodies held for retries are capped across all clients.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

/// Six 30 MiB uploads to an upstream that never reads: the proxy holds at most its body budget
/// (64 MiB) plus socket buffers, instead of all 180 MiB (which the unit's `MemoryMax=256M`
/// would turn into an OOM kill of every stream). The clients are slowed, not refused.
#[test]
fn uploads_to_a_stalled_upstream_stay_within_the_body_budget() {
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", stalled.local_addr().expect("addr"));
    let accepted = std::thread::spawn(move || {
        // Accept and never read.
        let mut held = Vec::new();
        for s in stalled.incoming().take(6).flatten() {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", &url, "sk-a-0000000000", 1).with(serde_json::json!({"timeout": 60}))],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--idle-timeout", "120"]);
    let pid = proxy.child.id();
    let before = rss_kib(pid);
    const BODY: usize = 30 * 1024 * 1024;
    let written = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let (addr, written) = (proxy.addr, written.clone());
            std::thread::spawn(move || {
                let mut c = Conn::connect(addr);
                let _ = c.stream.set_write_timeout(Some(Duration::from_secs(15)));
                c.send(
                    format!("POST /v1/files HTTP/1.1\r\nhost: localhost\r\ncontent-length: {BODY}\r\n\r\n").as_bytes(),
                );
                let chunk = vec![b'x'; 256 * 1024];
                let mut sent = 0;
                while sent < BODY {
                    match c.stream.write(&chunk[..chunk.len().min(BODY - sent)]) {
                        Ok(n) => {
                            sent += n;
                            written.fetch_add(n, Ordering::SeqCst);
                        }
                        Err(_) => break, // the proxy stopped reading: backpressure
                    }
                }
                c
            })
        })
        .collect();
    // Wait until the uploads stall (nothing more accepted for a second), bounded.
    let started = Instant::now();
    let mut last = 0;
    let mut still_since = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(25) {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(rss_kib(pid));
        let now = written.load(Ordering::SeqCst);
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let total = written.load(Ordering::SeqCst);
    assert!(total > 64 * 1024 * 1024, "the clients got to send well past one budget ({} MiB)", total >> 20);
    assert!(total < 6 * BODY, "a stalled upstream must slow the uploads down");
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(grown_mib < 64 + 40, "RSS grew by {grown_mib} MiB holding {} MiB of uploads", total >> 20);
    let s = proxy.status();
    assert_eq!(s["requests"]["rejected"], 0, "nobody refused: {s}");
    drop(writers);
    drop(accepted);
}
