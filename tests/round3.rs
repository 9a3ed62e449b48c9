//! Robustness round 3 (issue 25): each finding of the review reproduced against the built binary
//! on loopback, and what the user sees now.

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::mock::{ok, read_request, MockUpstream};
use crate::support::{post_messages, request, rss_kib, stderr, wait_until, Conn, Ep, Proxy, TempHome};

/// A raw upstream on 127.0.0.1: reads each request (head + Content-Length body) and answers with
/// `reply(n)` for the n-th request overall; `close_after` closes the connection after each reply.
fn raw_upstream(
    close_after: bool,
    reply: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for sock in l.incoming().take(500) {
            let Ok(mut sock) = sock else { return };
            let (seen, reply) = (seen.clone(), reply.clone());
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(20)));
                let Ok(read_half) = sock.try_clone() else { return };
                let mut r = BufReader::new(read_half);
                while read_request(&mut r).is_some() {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    if sock.write_all(&reply(n)).is_err() || close_after {
                        return;
                    }
                }
            });
        }
    });
    (url, hits)
}

fn json_reply(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

fn start(url: &str, args: &[&str]) -> (TempHome, Proxy) {
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", url, "sk-a-0000000000", 1)]);
    let mut all = vec!["--cluster", "c", "--verify-interval", "3600"];
    all.extend_from_slice(args);
    let proxy = Proxy::start(&home, &all);
    (home, proxy)
}

/// Item 1: a client pipelining requests the proxy answers itself, reading nothing, used to take
/// the proxy to a gigabyte. Now the next request is not read while a reply waits.
#[test]
fn pipelined_local_replies_to_a_client_that_never_reads_stay_bounded() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = start(&m.url(), &[]);
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

/// Item 4: an upstream head with bare LF line ends reaches the client as a well-formed head, its
/// hop-by-hop headers dropped.
#[test]
fn bare_lf_response_heads_reach_the_client_well_formed() {
    let (url, _) = raw_upstream(false, |_| {
        b"HTTP/1.1 201 Created\nContent-Type: application/json\nConnection: keep-alive, x-private\nx-private: secret\nKeep-Alive: timeout=5\nContent-Length: 2\n\n{}".to_vec()
    });
    let (_h, proxy) = start(&url, &[]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[], b"{}");
    let head = c.read_until(b"\r\n\r\n");
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 201 Created\r\n"), "{head:?}");
    assert!(!head.contains('\n') || head.split("\r\n").all(|l| !l.contains('\n')), "{head:?}");
    let lower = head.to_ascii_lowercase();
    for gone in ["x-private", "keep-alive:", "connection: keep-alive"] {
        assert!(!lower.contains(gone), "{gone} leaked: {head:?}");
    }
    assert!(lower.contains("content-length: 2\r\n"), "{head:?}");
    // The connection is still in step: the body, then the next request.
    assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 201);
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime, in ticks of 1/100 s); after the ")" they are the 12th
    // and 13th.
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    ticks as f64 / 100.0
}

/// Item 5: a 60 KB head sent a few bytes at a time used to cost the loop seconds of CPU (every
/// read rescanned and re-parsed from the start). The CPU bound is loose on purpose (4.3 s before).
#[test]
fn a_head_sent_a_few_bytes_at_a_time_costs_little_cpu() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = start(&m.url(), &["--header-timeout", "120"]);
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

/// Items 3 and 6: a model name is decoded as JSON (an escaped quote is part of it), and an
/// upstream inventing a name per reply cannot grow what the proxy keeps.
#[test]
fn model_names_are_decoded_and_capped() {
    let (url, _) = raw_upstream(false, |n| {
        let model = if n == 0 { r#"m\"x"#.to_string() } else { format!("invented-{n}-{}", "z".repeat(200)) };
        json_reply(&format!(r#"{{"model":"{model}","content":[],"usage":{{"input_tokens":1,"output_tokens":2}}}}"#))
    });
    let (_h, proxy) = start(&url, &[]);
    let mut c = Conn::connect(proxy.addr);
    for _ in 0..100 {
        assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 200);
    }
    let s = proxy.status();
    let models = s["usage"]["today"]["a0000001"].as_object().expect("usage today").clone();
    assert!(models.contains_key("m\"x"), "{:?}", models.keys().collect::<Vec<_>>());
    assert!(models.len() <= 33, "{} models kept", models.len());
    assert!(models.keys().all(|k| k.len() <= 64), "long names are cut");
    let total: u64 = models.values().map(|c| c["requests"].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 100, "every reply counted");
    assert!(models["other"]["requests"].as_u64().unwrap_or(0) > 0);
    let metrics = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    assert!(metrics.len() < 64 * 1024, "/metrics is {} bytes", metrics.len());
}

/// Item 10: an upstream that closes right after each keep-alive response: every request of a
/// one-endpoint cluster answered, each reaching the endpoint once.
#[test]
fn an_upstream_closing_after_each_keep_alive_response_loses_no_request() {
    let (url, hits) = raw_upstream(true, |_| json_reply(r#"{"content":[]}"#));
    let (_h, proxy) = start(&url, &[]);
    let mut failed = 0;
    let mut c = Conn::connect(proxy.addr);
    for _ in 0..60 {
        if c.request("POST", "/v1/messages", &[], b"{}").status != 200 {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "of 60 sequential requests");
    assert_eq!(hits.load(Ordering::SeqCst), 60, "each request reached the endpoint once");
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 0);
}

/// The same race with the upstream slower to close: it answers, keeps the connection a moment
/// (the proxy pools it and writes the next request to it), then closes with that request unread,
/// which the kernel answers with a reset. The request never reached the upstream's application:
/// it is sent once more on a fresh connection, and the user sees only a 200.
#[test]
fn a_reset_on_a_pooled_connection_before_any_answer_is_retried_on_a_fresh_one() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for sock in l.incoming().take(10) {
            let Ok(mut sock) = sock else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(read_half) = sock.try_clone() else { return };
                if read_request(&mut BufReader::new(read_half)).is_none() {
                    return;
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = sock.write_all(&json_reply(r#"{"content":[]}"#));
                std::thread::sleep(Duration::from_millis(400));
                // Dropped with whatever arrived meanwhile unread: a reset.
            });
        }
    });
    let (_h, proxy) = start(&url, &[]);
    let mut c = Conn::connect(proxy.addr);
    for i in 0..3 {
        assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 200, "request {i}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3, "each request read by the upstream once");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
}

/// Items 11 and 12: the dashboard cannot be framed; an upstream's answer is sandboxed; a browser
/// request from another site is refused and never forwarded.
#[test]
fn the_dashboard_is_unframeable_answers_are_sandboxed_and_cross_site_requests_refused() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = start(&m.url(), &[]);
    for path in ["/_qcc/", "/_qcc/status", "/metrics"] {
        let r = request(proxy.addr, "GET", path, &[], b"");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(r.header("content-security-policy").is_some_and(|v| v.contains("frame-ancestors 'none'")), "{path}");
    }
    let r = post_messages(proxy.addr);
    assert_eq!(r.header("content-security-policy"), Some("sandbox"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let before = m.hits();
    for site in ["cross-site", "same-site"] {
        let r =
            request(proxy.addr, "GET", "/v1/models", &[("sec-fetch-site", site), ("sec-fetch-mode", "navigate")], b"");
        assert_eq!(r.status, 403, "{site}");
    }
    assert_eq!(m.hits(), before, "never forwarded");
    let r = request(proxy.addr, "GET", "/_qcc/", &[("sec-fetch-site", "none")], b"");
    assert_eq!(r.status, 200, "the user typing the address still gets the page");
}

/// Item 13: `qcc usage` shows an upstream's model name with its control characters escaped.
#[test]
fn usage_escapes_control_characters() {
    let home = TempHome::new();
    let evil = "m\u{1b}]0;pwned\u{7}\r\n2026-01-01 fake-row";
    let usage = serde_json::json!({"days": {"2026-12-02": {"a0000001": {evil: {"requests": 1}}}}});
    std::fs::create_dir_all(home.home()).expect("home");
    std::fs::write(home.home().join("usage.json"), usage.to_string()).expect("usage");
    let out = home.run(&["usage"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\r'), "{text:?}");
    assert!(text.contains("m\\x1b]0;pwned\\x07\\x0d\\x0a2026-01-01 fake-row"), "{text}");
    assert_eq!(text.lines().count(), 3, "header, the row, the total: no faked row\n{text}");
}

/// Item 14: a public listener needs a real key; wrong keys are limited per address.
#[test]
fn a_public_listener_needs_a_real_key_and_wrong_keys_are_limited_per_address() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let out = home.run(&["proxy", "start", "--cluster", "c", "--host", "0.0.0.0", "--port", "0", "--access-key", "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at least 16 characters"), "{}", stderr(&out));

    let key = "k-0123456789abcdef";
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-key", key]);
    let mut refused = 0;
    for i in 0..30 {
        let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &format!("guess-{i}"))], b"{}");
        assert!(r.status == 401 || r.status == 429, "{}", r.status);
        refused += usize::from(r.status == 429);
    }
    assert!(refused >= 20, "only {refused} of 30 guesses were cut off");
    assert_eq!(m.hits(), 0);
    // The right key is never refused (issue 38): keys are too long to guess, and a scraper on
    // the same address must not lock its owner out.
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", key)], b"{}");
    assert_eq!(r.status, 200);
}

#[test]
fn a_bad_endpoint_id_is_one_line_and_a_refused_reload_says_what_the_proxy_said() {
    let m = MockUpstream::start(ok());
    let (home, _proxy) = start(&m.url(), &[]);
    // A hand-edited id the dashboard and /metrics cannot carry: the reload is refused, and the
    // CLI says so (not "cannot reach").
    home.write_cluster("c", &[Ep::new("bad\"id", &m.url(), "sk-a-0000000000", 1)]);
    let out = home.run(&["proxy", "reload"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(!err.contains("cannot reach"), "{err}");
    assert!(err.contains("endpoint id") && err.contains("409"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = home.run(&["endpoint", "list", "c"]);
    assert!(!out.status.success() && stderr(&out).contains("endpoint id"), "{}", stderr(&out));
}

/// Item 8: a FIFO where the config should be does not freeze the proxy on SIGHUP.
#[test]
fn a_fifo_in_place_of_the_config_does_not_freeze_the_proxy() {
    let m = MockUpstream::start(ok());
    let (home, proxy) = start(&m.url(), &[]);
    std::fs::remove_file(home.config()).expect("rm config");
    let c = std::ffi::CString::new(home.config().as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo on the test's own path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    proxy.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post_messages(proxy.addr).status, 200, "still serving on the old cluster");
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("not a regular file")), "{}", proxy.log());
}

/// Item 9: logrotate moves proxy.log and sends SIGHUP: the proxy writes the new file. A client
/// in a refused loop does not write a line per request.
#[test]
fn the_log_is_reopened_on_hup_and_refusal_lines_are_rate_limited() {
    let m = MockUpstream::start(ok());
    let (home, proxy) = start(&m.url(), &[]);
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
    let (_h, proxy) = start(&m.url(), &["--stream-hold", "0"]);
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

/// Item 2: clients that ask for a large local reply (`/_qcc/status` of a big cluster) and never
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

/// A loopback connection whose receive buffer is made small before it connects.
fn small_window_connect(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(v4) = addr else { panic!("IPv4 loopback expected") };
    // SAFETY: a fresh socket, a correctly sized sockaddr_in, and a descriptor handed to
    // TcpStream only once connected.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = v4.port().to_be();
        sa.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) };
        let r = libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect");
        std::net::TcpStream::from_raw_fd(fd)
    }
}
