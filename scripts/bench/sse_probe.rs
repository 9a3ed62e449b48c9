//! SSE latency probe for scripts/bench.sh, std only (built there with `rustc -O`), so that its
//! own cost per event is a few microseconds instead of the ~200µs of a Python client.
//!
//!   sse_probe server PORT            upstream: any request -> a chunked text/event-stream of
//!                                    N events (?events=N&gap_ms=M, default 20 and 20), each
//!                                    carrying the wall-clock time (ns) it was written at
//!   sse_probe latency URL N          one stream of N events through URL: p50/p99 of
//!                                    (arrival - written) in µs, and time to the first event
//!   sse_probe idle URL N SECS        N keep-alive clients, each makes one Messages request and
//!                                    reads its reply, then all stay open and idle for SECS;
//!                                    prints `ok=K` once all are open (the bench reads RSS then)
//!
//! Loopback only; every stream is bounded in events and time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn serve(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    for sock in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = sock.set_nodelay(true);
            let Ok(mut w) = sock.try_clone() else { return };
            let mut r = BufReader::new(sock);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let target = line.split(' ').nth(1).unwrap_or("/").to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 {
                        return;
                    }
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let q = |k: &str, d: u64| {
                    target.split(['?', '&']).find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse().ok()).unwrap_or(d)
                };
                let (n, gap) = (q("events", 20).min(10_000), q("gap_ms", 20).min(10_000));
                if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n").is_err() {
                    return;
                }
                for i in 0..n {
                    let data = format!("event: content_block_delta\ndata: {{\"i\": {i}, \"t\": {}}}\n\n", now_ns());
                    if w.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes()).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(gap));
                }
                if w.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
            }
        });
    }
}

fn latency(url: &str, n: usize) {
    let hostport = url.trim_start_matches("http://").split('/').next().unwrap_or("");
    let mut s = TcpStream::connect(hostport).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let body = r#"{"model":"bench","stream":true}"#;
    let started = now_ns();
    write!(
        s,
        "POST /v1/messages?events={n}&gap_ms=20 HTTP/1.1\r\nhost: {hostport}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut samples: Vec<u128> = Vec::with_capacity(n);
    let mut first: Option<u128> = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 65536];
    while samples.len() < n {
        let got = match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => k,
        };
        let arrived = now_ns();
        buf.extend_from_slice(&chunk[..got]);
        while let Some(at) = find(&buf, b"\"t\": ") {
            let rest = &buf[at + 5..];
            let Some(end) = rest.iter().position(|&b| b == b'}') else { break };
            if let Some(sent) = std::str::from_utf8(&rest[..end]).ok().and_then(|t| t.parse::<u128>().ok()) {
                samples.push(arrived.saturating_sub(sent) / 1000);
                first.get_or_insert(arrived.saturating_sub(started) / 1000);
            }
            buf.drain(..at + 5 + end);
        }
    }
    // Read to the end of the stream before leaving: a client that hangs up early is an abort,
    // and the proxy rightly drops that upstream connection instead of pooling it.
    while !buf.ends_with(b"0\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        if buf.len() > 1 << 20 {
            break;
        }
    }
    samples.sort_unstable();
    if samples.is_empty() {
        println!("p50_us=nan p99_us=nan first_us=nan n=0");
        return;
    }
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!("p50_us={} p99_us={} first_us={} n={}", p(0.5), p(0.99), first.unwrap_or(0), samples.len());
}

fn idle(url: &str, n: usize, secs: u64) {
    let hostport = url.trim_start_matches("http://").split('/').next().unwrap_or("");
    let body = r#"{"model":"claude-bench","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}"#;
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {hostport}\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut held = Vec::with_capacity(n);
    let mut chunk = [0u8; 16384];
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect(hostport) else { break };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        if s.write_all(req.as_bytes()).is_err() {
            break;
        }
        // One reply with a Content-Length body (the bench upstream's fixed reply).
        let mut buf = Vec::new();
        let complete = loop {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break false,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
            let Some(end) = find(&buf, b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break head.starts_with("http/1.1 200");
            }
        };
        if !complete {
            break;
        }
        held.push(s);
    }
    println!("ok={}", held.len());
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(secs.min(600)));
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => serve(args.get(2).and_then(|p| p.parse().ok()).expect("PORT")),
        Some("idle") => idle(
            args.get(2).expect("URL"),
            args.get(3).and_then(|n| n.parse().ok()).unwrap_or(10_000),
            args.get(4).and_then(|n| n.parse().ok()).unwrap_or(5),
        ),
        Some("latency") => latency(args.get(2).expect("URL"), args.get(3).and_then(|n| n.parse().ok()).unwrap_or(20)),
        _ => eprintln!("usage: sse_probe server PORT | sse_probe latency URL N | sse_probe idle URL N SECS"),
    }
}
