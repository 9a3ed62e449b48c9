//! Hostile input and failing upstreams (issue 5): limits, timeouts, every fault, no leaks.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::{fd_count, post_messages, request, rss_kib, wait_until, Conn, Ep, Proxy, TempHome};

fn proxy_with(mock_url: &str, extra_ep: serde_json::Value, args: &[&str]) -> (TempHome, Proxy) {
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("h0000001", mock_url, "sk-h-000000000", 1).with(extra_ep)]);
    let mut all = vec!["--cluster", "c", "--verify-interval", "3600"];
    all.extend_from_slice(args);
    let proxy = Proxy::start(&home, &all);
    (home, proxy)
}

#[test]
fn slow_head_gets_408_and_idle_keep_alive_is_closed() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = proxy_with(&m.url(), serde_json::json!({}), &["--header-timeout", "1", "--idle-timeout", "1"]);
    let mut slow = Conn::connect(proxy.addr);
    slow.send(b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\n");
    let started = Instant::now();
    let (got, closed) = slow.try_read_to_close();
    assert!(got.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&got));
    assert!(closed);
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut idle = Conn::connect(proxy.addr);
    let r = idle.request("POST", "/v1/messages", &[], b"{}");
    assert_eq!(r.status, 200);
    let mut buf = [0u8; 16];
    let n = idle.stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "idle keep-alive connection closed by the proxy");
    assert_eq!(m.hits(), 1);
}

/// At `--max-connections`, an idle keep-alive connection gives way to a new client; only when
/// every connection is busy with a request does the new one get a readable 503.
#[test]
fn at_the_connection_limit_idle_connections_give_way_and_busy_ones_get_a_503() {
    let m = MockUpstream::start(Mode::ByPath {
        routes: vec![("/v1/slow".into(), Mode::Slow { delay: Duration::from_millis(1500) })],
        other: Box::new(ok()),
    });
    let (_h, proxy) = proxy_with(&m.url(), serde_json::json!({}), &["--max-connections", "2"]);
    let mut a = Conn::connect(proxy.addr);
    let mut b = Conn::connect(proxy.addr);
    assert_eq!(a.request("POST", "/v1/messages", &[], b"{}").status, 200);
    assert_eq!(b.request("POST", "/v1/messages", &[], b"{}").status, 200);
    // Both idle: a new client is admitted, the longest-idle (a) is closed.
    let mut c = Conn::connect(proxy.addr);
    assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 200);
    let mut buf = [0u8; 16];
    assert_eq!(a.stream.read(&mut buf).unwrap_or(0), 0, "the longest-idle connection gave way");
    // Both busy: the next one gets a 503 it can read.
    b.send_request("POST", "/v1/slow", &[], b"{}");
    c.send_request("POST", "/v1/slow", &[], b"{}");
    assert!(wait_until(Duration::from_secs(5), || m.hits() == 5));
    let mut d = Conn::connect(proxy.addr);
    d.send_request("POST", "/v1/messages", &[], b"{}");
    let (got, _) = d.try_read_to_close();
    assert!(got.starts_with(b"HTTP/1.1 503"), "{}", String::from_utf8_lossy(&got));
    assert_eq!(b.read_response().status, 200, "existing connections keep working");
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn client_gone_mid_stream_is_aborted_not_an_endpoint_failure() {
    let events: Vec<String> = (0..20).map(|i| format!("data: {i}\n\n")).collect();
    let m = MockUpstream::start(Mode::Sse { events, delay: Duration::from_millis(100) });
    let (_h, proxy) = proxy_with(&m.url(), serde_json::json!({}), &[]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[], b"{}");
    assert_eq!(c.read_head().0, 200);
    drop(c);
    assert!(wait_until(Duration::from_secs(5), || proxy.status()["requests"]["aborted"] == 1));
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["failed_endpoints_count"], 0);
    assert_eq!(s["endpoints"][0]["health"]["failed_requests"], 0);
    assert!(wait_until(Duration::from_secs(3), || proxy.status()["connections"]["upstreams"] == 0), "upstream closed");
}

#[test]
fn an_upstream_silent_mid_response_fails_after_the_stream_idle_timeout() {
    let m = MockUpstream::start(Mode::HeadNoBody);
    let (_h, proxy) = proxy_with(&m.url(), serde_json::json!({}), &["--stream-idle-timeout", "1"]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[], b"{}");
    assert_eq!(c.read_head().0, 200);
    let started = Instant::now();
    let (rest, closed) = c.try_read_to_close();
    assert!(closed && rest.is_empty(), "the connection is closed, not a silent complete body");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after the stream idle timeout");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 1);
    assert_eq!(s["requests"]["failed"], 1);
    assert_eq!(m.hits(), 1, "no retry once the head reached the client");
}

#[test]
fn every_upstream_fault_gives_the_right_status_and_one_failure() {
    let cases: Vec<(Mode, serde_json::Value, u16)> = vec![
        (Mode::CloseBeforeHead, serde_json::json!({}), 502),
        (Mode::Garbage, serde_json::json!({}), 502),
        (Mode::Hang, serde_json::json!({"timeout": 1}), 504),
        (Mode::Slow { delay: Duration::from_secs(3) }, serde_json::json!({"timeout": 1}), 504),
        (Mode::Status { status: 503, retry_after: None }, serde_json::json!({}), 503),
    ];
    for (mode, extra, want) in cases {
        let label = format!("{mode:?}");
        let m = MockUpstream::start(mode);
        let (_h, proxy) = proxy_with(&m.url(), extra, &[]);
        let r = post_messages(proxy.addr);
        assert_eq!(r.status, want, "{label}: {}", r.text());
        assert_eq!(r.json()["type"], "error", "{label}: Anthropic error shape");
        let s = proxy.status();
        assert_eq!(s["failure_queue"]["stats"]["total_failed"], 1, "{label}");
        assert_eq!(s["endpoints"][0]["health"]["failed_requests"], 1, "{label}: the only endpoint got one copy");
        assert_eq!(m.hits(), 1, "{label}");
        assert_eq!(s["requests"]["failed"], 1, "{label}");
        // The proxy keeps serving.
        m.set_mode(ok());
        assert_eq!(post_messages(proxy.addr).status, 200, "{label}: still serving");
    }
    // Refused connections: the request provably never reached it, so it is tried again.
    let (_h, proxy) = proxy_with(&MockUpstream::refused_url(), serde_json::json!({}), &[]);
    assert_eq!(post_messages(proxy.addr).status, 502);
    assert_eq!(proxy.status()["endpoints"][0]["health"]["failed_requests"], 3);
}

#[test]
fn ten_thousand_requests_through_every_fault_leak_neither_fds_nor_memory() {
    let good = MockUpstream::start(ok());
    let faulty = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[
            Ep::new("w0000001", &faulty.url(), "sk-w-000000000", 1)
                .with(serde_json::json!({"timeout": 1, "max_failures": 1000000})),
            Ep::new("w0000002", &good.url(), "sk-w-000000000", 2),
        ],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600", "--log-level", "warn"]);
    let pid = proxy.child.id();
    let run = |n: usize| {
        let addr = proxy.addr;
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut conn = Conn::connect(addr);
                    let mut codes = Vec::new();
                    for i in 0..n / 8 {
                        if (i + t) % 50 == 0 {
                            // A client that leaves mid-request now and then.
                            let mut c = Conn::connect(addr);
                            c.send(b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-length: 10\r\n\r\nabc");
                            continue;
                        }
                        conn.send_request("POST", "/v1/messages", &[], b"{}");
                        match conn.try_response() {
                            Some(r) => {
                                codes.push(r.status);
                                if r.header("connection") == Some("close") {
                                    conn = Conn::connect(addr);
                                }
                            }
                            // A stream cut mid-body by the upstream: the proxy closed the
                            // connection, as it must. Count it and reconnect.
                            None => {
                                codes.push(0);
                                conn = Conn::connect(addr);
                            }
                        }
                    }
                    codes
                })
            })
            .collect();
        threads.into_iter().flat_map(|h| h.join().expect("client")).collect::<Vec<u16>>()
    };
    let faults = [
        Mode::Status { status: 500, retry_after: None },
        Mode::CloseBeforeHead,
        Mode::Garbage,
        Mode::ResetMidBody { total: 100, send: 10 },
        Mode::TruncatedChunked,
        Mode::Status { status: 429, retry_after: None },
        Mode::Status { status: 400, retry_after: None },
        ok(),
    ];
    run(400); // warm up: pools, buffers
              // File descriptors that are not connections (listener, epoll, pipes, log file): constant.
              // One keep-alive connection for these status reads, so the reading itself does not open and
              // close sockets while descriptors are counted.
    let status_conn = std::cell::RefCell::new(Conn::connect(proxy.addr));
    let conns = || {
        let s = status_conn.borrow_mut().request("GET", "/_qcc/status", &[], b"").json();
        s["connections"]["clients"].as_u64().unwrap_or(0) + s["connections"]["upstreams"].as_u64().unwrap_or(0)
    };
    // Count only when the connection count is the same before and after reading the fds (a
    // pooled connection closed by its upstream in between would skew one side).
    let other_fds = || {
        for _ in 0..50 {
            let before = conns();
            let fds = fd_count(pid) as i64;
            if conns() == before {
                return fds - before as i64;
            }
        }
        panic!("connection count never settled");
    };
    assert!(wait_until(Duration::from_secs(5), || proxy.status()["connections"]["clients"].as_u64() <= Some(2)));
    let (fd0, rss0) = (other_fds(), rss_kib(pid));
    let mut total = 0;
    for (round, mode) in faults.iter().cycle().take(24).enumerate() {
        faulty.set_mode(mode.clone());
        let codes = run(10_000 / 24 + 8);
        total += codes.len();
        let mid_body = matches!(mode, Mode::ResetMidBody { .. } | Mode::TruncatedChunked);
        let allowed: &[u16] = if mid_body { &[200, 0] } else { &[200, 400] };
        assert!(
            codes.iter().all(|c| allowed.contains(c)),
            "round {round} {mode:?}: {:?}",
            codes.iter().filter(|c| !allowed.contains(c)).take(5).collect::<Vec<_>>()
        );
    }
    assert!(total >= 9_500, "{total} requests answered");
    faulty.set_mode(ok());
    assert!(wait_until(Duration::from_secs(5), || proxy.status()["requests"]["in_flight"] == 0));
    let s = proxy.status();
    let r = &s["requests"];
    let sum = ["successful", "failed", "aborted", "rejected", "in_flight"]
        .iter()
        .map(|k| r[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(r["total"].as_u64(), Some(sum), "counters agree: {r}");
    // Every client connection is gone, every upstream connection is an idle pooled one, and
    // no descriptor exists beyond those.
    assert!(
        wait_until(Duration::from_secs(5), || proxy.status()["connections"]["clients"] == 2),
        "clients: {}",
        proxy.status()["connections"]
    );
    let c = &proxy.status()["connections"];
    assert_eq!(c["upstreams"], c["idle_upstreams"], "no busy upstream connection left: {c}");
    let fds = || {
        let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).map(|p| p.display().to_string()).collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(
        other_fds(),
        fd0,
        "descriptors beyond the open connections: {:?} {}",
        fds(),
        proxy.status()["connections"]
    );
    let rss1 = rss_kib(pid);
    assert!(rss1 < rss0 + 4 * 1024, "RSS grew from {rss0} KiB to {rss1} KiB");
    // The faulty endpoint failed thousands of times, yet was queued once per failure episode.
    let q = &s["failure_queue"];
    assert!(q["stats"]["total_failed"].as_u64() >= Some(1), "{q}");
    assert!(q["stats"]["total_failed"].as_u64() <= s["endpoints"][0]["health"]["failed_requests"].as_u64(), "{s}");
}

#[test]
fn header_injection_and_smuggling_never_reach_the_upstream() {
    let m = MockUpstream::start(Mode::Echo);
    let (_h, proxy) = proxy_with(&m.url(), serde_json::json!({}), &[]);
    // A request smuggled in a body stays a body.
    let mut c = Conn::connect(proxy.addr);
    let inner = b"GET /smuggled HTTP/1.1\r\nhost: localhost\r\n\r\n";
    let mut req =
        format!("POST /a HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n", inner.len()).into_bytes();
    req.extend_from_slice(inner);
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(m.requests().iter().all(|r| r.path != "/smuggled"));
    let r = request(proxy.addr, "POST", "/v1/messages", &[("content-length", "3"), ("content-length", "3")], b"abc");
    assert_eq!(r.status, 400);
    assert_eq!(m.hits(), 1);
}

/// A listener whose accept queue is full: the kernel drops new SYNs, so a connect hangs.
fn blackhole_listener() -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor we own; it is handed to TcpListener at once.
    let listener = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, &addr as *const libc::sockaddr_in as *const libc::sockaddr, len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        std::net::TcpListener::from_raw_fd(fd)
    };
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (listener, fillers)
}

#[test]
fn a_connect_that_hangs_times_out_and_fails_over() {
    let (blackhole, _fillers) = blackhole_listener();
    let hole = format!("http://{}", blackhole.local_addr().expect("addr"));
    let good = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[
            Ep::new("b1000001", &hole, "sk-b-000000000", 1).with(serde_json::json!({"timeout": 1})),
            Ep::new("b1000002", &good.url(), "sk-b-000000000", 2),
        ],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    let started = Instant::now();
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for the connect timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy.log().contains("timeout: connect")),
        "{}",
        proxy.log()
    );
    assert_eq!(proxy.status()["failure_queue"]["failed_endpoints"][0], "b1000001");
}

#[test]
fn more_than_a_hundred_headers_get_431() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = proxy_with(&m.url(), serde_json::json!({}), &[]);
    let mut raw = b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\n".to_vec();
    for i in 0..101 {
        raw.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"content-length: 0\r\n\r\n");
    let mut c = Conn::connect(proxy.addr);
    c.send(&raw);
    let (got, closed) = c.try_read_to_close();
    assert!(got.starts_with(b"HTTP/1.1 431"), "{}", String::from_utf8_lossy(&got));
    assert!(closed);
    assert_eq!(m.hits(), 0);
    assert_eq!(proxy.status()["requests"]["bad_requests"], 1);
}

/// What goes upstream is origin-form and cannot climb out of a base-URL prefix: absolute-form is
/// reduced to its path; traversal in every spelling, CONNECT, `OPTIONS *` and lowercase methods
/// are answered by qcc and never forwarded.
#[test]
fn request_targets_are_canonical_or_refused() {
    let mock = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &format!("{}/anthropic", mock.url()), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let raw = |line: &str| {
        let mut c = Conn::connect(proxy.addr);
        c.send(format!("{line}\r\nhost: localhost\r\ncontent-length: 0\r\n\r\n").as_bytes());
        c.read_response().status
    };
    assert_eq!(raw("POST http://example.com/v1/messages?beta=true HTTP/1.1"), 200);
    assert_eq!(mock.requests().last().map(|r| r.path.clone()), Some("/anthropic/v1/messages?beta=true".into()));
    for (line, status) in [
        ("GET /../admin HTTP/1.1", 400),
        ("GET /v1/../../admin/users HTTP/1.1", 400),
        ("GET /%2e%2e/admin HTTP/1.1", 400),
        ("GET /v1/%2F..%2Fadmin HTTP/1.1", 400),
        ("GET /v1%5c..%5cadmin HTTP/1.1", 400),
        ("CONNECT example.com:443 HTTP/1.1", 405),
        ("OPTIONS * HTTP/1.1", 400),
        ("post /v1/messages HTTP/1.1", 400),
    ] {
        assert_eq!(raw(line), status, "{line}");
    }
    assert_eq!(mock.hits(), 1, "only the absolute-form request was forwarded");
}

/// A raw upstream that answers every request on its connections with `reply`.
fn raw_upstream(reply: &'static [u8]) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for sock in l.incoming().take(8) {
            let Ok(mut sock) = sock else { return };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 65536];
                while let Ok(n) = sock.read(&mut buf) {
                    if n == 0 || sock.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// A response with both framings reaches the client with one (chunked wins, the length is
/// dropped); a `Transfer-Encoding` that does not end in chunked is a failed attempt, not a
/// response Node's parser (Claude Code's runtime) would reject.
#[test]
fn responses_reach_the_client_with_one_framing() {
    let url = raw_upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let (_h, proxy) = proxy_with(&url, serde_json::json!({}), &[]);
    let mut c = Conn::connect(proxy.addr);
    let r = c.request("POST", "/v1/messages", &[], b"{}");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));

    let url = raw_upstream(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello");
    let (_h, proxy) = proxy_with(&url, serde_json::json!({}), &[]);
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 1);
}

/// Raise this test process's descriptor limit so it can hold a flood of sockets.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on our own process with valid structs.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(want.max(lim.rlim_cur));
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// 1,100 idle sockets (keep-alive ones that finished a request, and ones that never sent a
/// byte) do not lock a normal client out: at the limit the longest-idle connection gives way.
/// A connection that sends nothing is closed after the short first-byte timeout.
#[test]
fn a_flood_of_idle_sockets_does_not_lock_users_out() {
    let limit = raise_nofile(4096);
    assert!(limit >= 1300, "need ~1,300 descriptors for this test, have {limit}");
    let mock = MockUpstream::start(ok());
    let (_h, proxy) = proxy_with(&mock.url(), serde_json::json!({}), &[]);
    let mut held = Vec::new();
    for i in 0..1100 {
        let mut c = Conn::connect(proxy.addr);
        if i % 10 == 0 {
            // A keep-alive connection that made one request and then sits idle.
            assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 200);
        }
        held.push(c);
    }
    for i in 0..20 {
        let r = post_messages(proxy.addr);
        assert_eq!(r.status, 200, "normal client, request {i}: {}", r.text());
    }
    drop(held);

    let mut silent = Conn::connect(proxy.addr);
    let started = Instant::now();
    let (rest, closed) = silent.try_read_to_close();
    assert!(
        closed && rest.is_empty(),
        "closed={closed} after {:?}: {:?}",
        started.elapsed(),
        String::from_utf8_lossy(&rest)
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(9) && waited < Duration::from_secs(15), "first-byte timeout: {waited:?}");
}

/// Chunk lines as the client wrote them never reach the upstream: it gets qcc's canonical
/// chunks. Every Transfer-Encoding but one `chunked` is refused, and a chunk size beyond the body
/// limit is refused from its size line.
#[test]
fn chunked_request_bodies_go_upstream_canonical() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Ok((mut sock, _)) = l.accept() else { return };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"0\r\n\r\n") {
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let _ = tx.send(got);
    });
    let (_h, proxy) = proxy_with(&url, serde_json::json!({}), &["--max-body", "4096"]);
    let mut c = Conn::connect(proxy.addr);
    c.send(b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n2 \r\nhi\r\n5;x=\"y\"\r\n, you\r\n0\r\nx-trailer: 1\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    let got = rx.recv_timeout(Duration::from_secs(10)).expect("upstream saw the request");
    let text = String::from_utf8_lossy(&got);
    let body = &text[text.find("\r\n\r\n").expect("head end") + 4..];
    assert_eq!(body, "2\r\nhi\r\n5\r\n, you\r\n0\r\n\r\n", "canonical chunks:\n{text}");
    assert!(text.contains("\r\nTransfer-Encoding: chunked\r\n") && !text.contains("x-trailer"), "{text}");

    for (te, chunk) in [
        ("transfer-encoding: gzip, chunked", "2\r\nhi\r\n0\r\n\r\n"),
        ("transfer-encoding: identity, chunked", "2\r\nhi\r\n0\r\n\r\n"),
        ("transfer-encoding: chunked\r\ntransfer-encoding: ", "2\r\nhi\r\n0\r\n\r\n"),
        ("transfer-encoding: chunked", "ffffffffffffffff\r\n"),
        ("transfer-encoding: chunked", "1001\r\n"),
    ] {
        let mut c = Conn::connect(proxy.addr);
        c.send(format!("POST /v1/messages HTTP/1.1\r\nhost: localhost\r\n{te}\r\n\r\n{chunk}").as_bytes());
        assert_eq!(c.read_response().status, 400, "{te:?} {chunk:?}");
    }
}

/// A peer that answers with `100 Continue` without end — an endpoint, its recovery probe, `qcc
/// health check` and `qcc health test`, a webhook receiver — costs the loop a bounded read: the
/// attempt fails as the endpoint's fault and the request fails over, probes and alerts give up,
/// and every other client is served meanwhile with the proxy's memory flat.
#[test]
fn endless_interim_responses_fail_over_and_never_hold_the_loop() {
    let flood = MockUpstream::start(Mode::Continues);
    let good = MockUpstream::start(ok());
    let receiver = MockUpstream::start(Mode::Continues);
    let home = TempHome::new();
    home.write_pair(&flood.url(), &good.url());
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600", "--notify-url", &receiver.url()]);
    let started = Instant::now();
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(10), "failed over in {:?}", started.elapsed());
    assert_eq!((flood.hits(), good.hits()), (1, 1));
    let s = proxy.status();
    assert_eq!(s["endpoints"][0]["health"]["failed_requests"], 1, "the endpoint's fault: {s}");
    assert!(proxy.log().contains("interim"), "{}", proxy.log());
    // The endpoint_down alert goes to a receiver that floods too; probes of the queued endpoint
    // (asked for now by `qcc health check`) meet the flood again. Clients are served throughout.
    assert!(wait_until(Duration::from_secs(5), || receiver.hits() >= 1), "the alert was sent");
    let check = home.qcc().args(["health", "check"]).output().expect("qcc health check");
    let said = crate::support::stdout(&check);
    assert!(!check.status.success() && said.contains("interim"), "the probe failed and says why: {said}");
    assert!(flood.hits() >= 2, "probed");
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(post_messages(proxy.addr).status, 200);
        assert!(t.elapsed() < Duration::from_secs(5), "a request waited {:?}", t.elapsed());
    }
    assert!(rss_kib(proxy.child.id()) < 64 * 1024, "memory grew: {} KiB", rss_kib(proxy.child.id()));
    assert_eq!(proxy.status()["failure_queue"]["failed_endpoints_count"], 1, "still queued");
    // `qcc health test` (no proxy: the CLI's own client) says why, quickly.
    let t = Instant::now();
    let out = home.qcc().args(["health", "test", "c"]).output().expect("qcc health test");
    assert!(!out.status.success());
    let text = crate::support::stdout(&out);
    assert!(text.contains("interim"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}
