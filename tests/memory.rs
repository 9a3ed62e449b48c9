//! Bounded memory: request bodies held for retries are capped across all clients.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::mock::{ok, MockUpstream};
use crate::support::raw::{cpu_secs, one_endpoint, small_window_connect};
use crate::support::*;
use std::io::Read;

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

/// a client pipelining requests the proxy answers itself, reading nothing, used to take
/// the proxy to a gigabyte. Now the next request is not read while a reply waits.
#[test]
fn pipelined_local_replies_to_a_client_that_never_reads_stay_bounded() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = one_endpoint(&m.url(), &[]);
    let pid = proxy.child.id();
    let before = rss_kib(pid);
    let c = Conn::connect(proxy.addr);
    c.stream.set_write_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let one = format!("GET /_qcc/ HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.addr).repeat(64);
    let mut sent = 0usize;
    let started = Instant::now();
    while sent < 8 << 20 && started.elapsed() < Duration::from_secs(20) {
        match (&c.stream).write(one.as_bytes()) {
            Ok(n) => sent += n,
            Err(_) => break, // the proxy stopped reading: what we want
        }
    }
    std::thread::sleep(Duration::from_millis(500)); // what was read is answered by now
    let grown = rss_kib(pid).saturating_sub(before);
    eprintln!("pipelined: {sent} bytes sent, RSS grew by {grown} KiB");
    assert!(grown < 6 * 1024, "RSS grew by {grown} KiB after {sent} bytes of pipelined requests");
    assert!(sent < 8 << 20, "the proxy kept reading a client that reads nothing ({sent} bytes)");
    // The proxy still serves everyone else.
    assert_eq!(post_messages(proxy.addr).status, 200);
}

/// clients that ask for a large local reply (`/_qcc/status` of a big cluster) and never
/// read it used to hold a whole copy each. Unread local replies are bounded all together now:
/// past the bound a client gets a short 503 instead.
#[test]
fn unread_local_replies_are_bounded_across_clients() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    let ids: Vec<String> = (0..12_000).map(|i| format!("e{i:07}")).collect();
    let url = m.url();
    let eps: Vec<Ep> =
        ids.iter().enumerate().map(|(i, id)| Ep::new(id, &url, "sk-a-0000000000", 1 + (i as u32 % 3))).collect();
    home.write_cluster("big", &eps);
    let proxy = Proxy::start(&home, &["--cluster", "big", "--verify-interval", "3600"]);
    let size = request(proxy.addr, "GET", "/_qcc/status", &[], b"").body.len();
    assert!(size > 5 << 20, "a status of {size} bytes, more than a socket buffer takes");
    let pid = proxy.child.id();
    let before = rss_kib(pid);
    // Clients with a small receive window, so that what they do not read stays in the proxy
    // (a default loopback socket would take megabytes into the kernel's buffers).
    let mut conns: Vec<std::net::TcpStream> = (0..12).map(|_| small_window_connect(proxy.addr)).collect();
    for c in &mut conns {
        c.write_all(format!("GET /_qcc/status HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.addr).as_bytes()).expect("send");
    }
    // (every request answered or refused: the status line of the last one has been written)
    std::thread::sleep(Duration::from_millis(3000));
    let grown = rss_kib(pid).saturating_sub(before);
    let mut refused = 0;
    for c in &mut conns {
        let mut first = [0u8; 12];
        c.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        c.read_exact(&mut first).expect("a reply");
        refused += usize::from(&first == b"HTTP/1.1 503");
    }
    assert!(refused > 0, "every one of 12 clients got its {size}-byte reply queued");
    assert!(grown < 40 * 1024, "RSS grew by {grown} KiB for 12 unread replies of {size} bytes");
}

/// a 60 KB head sent a few bytes at a time used to cost the loop seconds of CPU (every
/// read rescanned and re-parsed from the start). The CPU bound is loose on purpose (4.3 s before).
#[test]
fn a_head_sent_a_few_bytes_at_a_time_costs_little_cpu() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = one_endpoint(&m.url(), &["--header-timeout", "120"]);
    let pid = proxy.child.id();
    let mut head = format!("POST /v1/messages HTTP/1.1\r\nHost: {}\r\ncontent-length: 2\r\n", proxy.addr);
    while head.len() < 60_000 {
        head.push_str(&format!("x-filler-{}: {}\r\n", head.len(), "v".repeat(900)));
    }
    head.push_str("\r\n{}");
    let before = cpu_secs(pid);
    let mut c = Conn::connect(proxy.addr);
    // Spaced out, so that each read finds a few bytes (as a slow link delivers them).
    for piece in head.as_bytes().chunks(2) {
        c.send(piece);
        std::thread::sleep(Duration::from_micros(100));
    }
    let r = c.read_response();
    let used = cpu_secs(pid) - before;
    assert_eq!(r.status, 200);
    eprintln!("slow head: {used:.2} s of CPU");
    // About 0.5 s on a quiet 2-core machine (30,000 wakeups); rescanning the head from its start
    // at each one costs many seconds. The bound leaves room for a machine busy with other tests.
    assert!(used < 2.5, "the proxy used {used:.2} s of CPU for one slowly sent head");
}
