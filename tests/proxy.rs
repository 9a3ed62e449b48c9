//! The forwarding core (issue 2): byte-exact relaying, streaming, framing, keep-alive, rewrite.

use std::time::Duration;

use crate::support::mock::{ok, MockUpstream, Mode, OK_BODY};
use crate::support::raw::{one_endpoint as single, raw_upstream};
use crate::support::{post_messages, request, Conn, Ep, Proxy, TempHome};

fn one_endpoint(mock: &MockUpstream) -> (TempHome, Proxy) {
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaa0001", &mock.url(), "sk-ant-endpoint-key-0001", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    (home, proxy)
}

#[test]
fn json_request_and_response_are_byte_exact_and_key_is_replaced() {
    let mock = MockUpstream::start(ok());
    let (_home, proxy) = one_endpoint(&mock);
    let body = br#"{"model":"claude","max_tokens":16,"messages":[{"role":"user","content":"h\u00e9llo"}]}"#;
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages?beta=true",
        &[
            ("x-api-key", "client-own-key"),
            ("authorization", "Bearer client-own-key"),
            ("anthropic-version", "2024-01-01"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("x-custom", "kept"),
        ],
        body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, OK_BODY.as_bytes());
    let reqs = mock.requests();
    let seen = &reqs[0];
    assert_eq!(seen.body, body);
    assert_eq!(seen.path, "/v1/messages?beta=true");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-endpoint-key-0001"));
    assert_eq!(seen.header("authorization"), Some("Bearer sk-ant-endpoint-key-0001"));
    assert_eq!(seen.header("anthropic-version"), Some("2024-01-01"), "the client's version is kept");
    assert_eq!(seen.header("host"), Some(mock.url().trim_start_matches("http://")));
    assert_eq!(seen.header("x-custom"), Some("kept"));
    assert_eq!(seen.header("x-hop"), None, "headers named in Connection are hop-by-hop");
    assert!(seen.headers.iter().all(|(_, v)| !v.contains("client-own-key")), "client key never forwarded");
}

#[test]
fn anthropic_version_added_when_absent_and_path_prefix_applied() {
    let mock = MockUpstream::start(Mode::Json { status: 200, body: "{}".into() });
    let home = TempHome::new();
    let url = format!("{}/relay/anthropic/", mock.url());
    home.write_cluster("c", &[Ep::new("aaaa0002", &url, "sk-ant-endpoint-key-0002", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    let reqs = mock.requests();
    assert_eq!(reqs[0].path, "/relay/anthropic/v1/messages");
    assert_eq!(reqs[0].header("anthropic-version"), Some("2023-06-01"));
}

/// Each event reaches the client before the upstream has sent the next: the mock holds event
/// i+1 until the test has read event i, so a proxy that buffered would hang here.
#[test]
fn sse_events_are_relayed_one_by_one_before_the_next_exists() {
    let events: Vec<String> = (0..4).map(|i| format!("event: content_block_delta\ndata: {{\"i\":{i}}}\n\n")).collect();
    let released = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mock = MockUpstream::start(Mode::SseGated { events: events.clone(), released: released.clone() });
    let (_home, proxy) = one_endpoint(&mock);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], br#"{"stream":true}"#);
    released.store(1, std::sync::atomic::Ordering::SeqCst);
    let (status, headers) = c.read_head();
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v == "text/event-stream"));
    for i in 0..4 {
        let got = String::from_utf8_lossy(&c.read_until(b"\n\n")).into_owned();
        assert!(got.contains(&format!("\"i\":{i}")), "event {i} in order: {got}");
        released.store(i + 2, std::sync::atomic::Ordering::SeqCst); // only now may the next exist
    }
    c.read_until(b"0\r\n\r\n");
}

#[test]
fn chunked_request_body_is_forwarded() {
    let mock = MockUpstream::start(Mode::Echo);
    let (_home, proxy) = one_endpoint(&mock);
    let mut c = Conn::connect(proxy.addr);
    c.send(b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello, world");
    assert_eq!(mock.requests()[0].body, b"hello, world");
}

#[test]
fn ten_mib_body_is_byte_exact_both_ways() {
    let mock = MockUpstream::start(Mode::Echo);
    let (_home, proxy) = one_endpoint(&mock);
    let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let r = request(proxy.addr, "POST", "/v1/messages", &[("content-type", "application/octet-stream")], &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "echoed body differs");
}

#[test]
fn hundred_requests_on_one_keep_alive_connection_reuse_upstream() {
    let mock = MockUpstream::start(ok());
    let (_home, proxy) = one_endpoint(&mock);
    let mut c = Conn::connect(proxy.addr);
    for i in 0..100 {
        let r = c.request("POST", "/v1/messages", &[], format!("{{\"n\":{i}}}").as_bytes());
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.body, OK_BODY.as_bytes());
    }
    assert_eq!(mock.hits(), 100);
    assert!(mock.connections() <= 2, "upstream connections are pooled: {}", mock.connections());
    let s = proxy.status();
    assert_eq!(s["requests"]["total"], 100);
    assert_eq!(s["requests"]["successful"], 100);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mock = MockUpstream::start(Mode::Echo);
    let (_home, proxy) = one_endpoint(&mock);
    let mut c = Conn::connect(proxy.addr);
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend_from_slice(
            format!("POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-length: 3\r\n\r\nr{i}!").as_bytes(),
        );
    }
    c.send(&all);
    for i in 0..5 {
        let r = c.read_response();
        assert_eq!(r.text(), format!("r{i}!"));
    }
}

#[test]
fn expect_100_continue_works() {
    let mock = MockUpstream::start(Mode::Echo);
    let (_home, proxy) = one_endpoint(&mock);
    let mut c = Conn::connect(proxy.addr);
    c.send(b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n");
    let interim = c.read_until(b"\r\n\r\n");
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&interim));
    c.send(b"ping");
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "ping"));
    assert_eq!(mock.requests()[0].header("expect"), None);
}

#[test]
fn responses_are_relayed_as_framed_chunked_and_until_close() {
    let chunked = MockUpstream::start(Mode::Sse { events: vec!["a".into(), "bc".into()], delay: Duration::ZERO });
    let (_h1, p1) = one_endpoint(&chunked);
    let mut c = Conn::connect(p1.addr);
    c.send_request("POST", "/v1/messages", &[], b"{}");
    let (status, headers) = c.read_head();
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked"));
    assert_eq!(c.read_until(b"0\r\n\r\n"), b"1\r\na\r\n2\r\nbc\r\n0\r\n\r\n", "chunks relayed verbatim");

    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let until_close = MockUpstream::start(Mode::UntilClose { body: body.clone() });
    let (_h2, p2) = one_endpoint(&until_close);
    let mut c = Conn::connect(p2.addr);
    c.send_request("POST", "/v1/messages", &[], b"{}");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"), "an until-close body ends the client connection too");
    assert!(r.body == body, "until-close body relayed whole ({} bytes)", r.body.len());
    assert_eq!(p2.status()["requests"]["successful"], 1);
}

#[test]
fn a_slow_client_slows_the_upstream_instead_of_growing_memory() {
    const SIZE: usize = 64 * 1024 * 1024;
    let mock = MockUpstream::start(Mode::Big { size: SIZE });
    let (_home, proxy) = one_endpoint(&mock);
    let pid = proxy.child.id();
    let before = crate::support::rss_kib(pid);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("GET", "/v1/files/big", &[], b"");
    // Do not read for a while: the proxy must stop reading the upstream, not buffer 64 MiB.
    std::thread::sleep(Duration::from_millis(800));
    let during = crate::support::rss_kib(pid);
    assert!(during < before + 8 * 1024, "RSS grew from {before} KiB to {during} KiB while the client was not reading");
    let r = c.read_response();
    assert_eq!(r.body.len(), SIZE);
    assert!(r.body.chunks(65536).all(|ch| ch.iter().enumerate().all(|(i, b)| *b == i as u8)), "bytes intact");
}

#[test]
fn bad_requests_get_4xx_and_the_proxy_keeps_serving() {
    let mock = MockUpstream::start(Mode::Json { status: 200, body: "{}".into() });
    let (_home, proxy) = one_endpoint(&mock);
    let cases: [(&[u8], u16); 6] = [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", 400),
    ];
    for (raw, want) in cases {
        let mut c = Conn::connect(proxy.addr);
        c.send(raw);
        let (got, _) = c.try_read_to_close();
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with(&format!("HTTP/1.1 {want}")), "{:?} -> {text}", String::from_utf8_lossy(raw));
    }
    let mut big = b"GET / HTTP/1.1\r\nx: ".to_vec();
    big.resize(70 * 1024, b'a');
    let mut c = Conn::connect(proxy.addr);
    c.send(&big);
    let (got, _) = c.try_read_to_close();
    assert!(got.starts_with(b"HTTP/1.1 431"), "{}", String::from_utf8_lossy(&got));
    let r = request(proxy.addr, "POST", "/v1/messages", &[("content-length", "999999999999")], b"");
    assert_eq!(r.status, 413);
    assert_eq!(mock.hits(), 0, "nothing bad was forwarded");
    assert_eq!(post_messages(proxy.addr).status, 200);
}

/// A client's last request (`Connection: close`): the whole response, then qcc lets go of the
/// connection at once — it does not hold it waiting for the client to close first.
#[test]
fn a_last_request_is_answered_whole_and_its_connection_freed_at_once() {
    let mock = MockUpstream::start(ok());
    let (_home, proxy) = one_endpoint(&mock);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("connection", "close")], b"{}");
    let all = String::from_utf8(c.read_to_close()).expect("utf-8");
    assert!(all.starts_with("HTTP/1.1 200") && all.ends_with(OK_BODY), "{all}");
    // Our end is still open: only the status request's own connection is left on qcc's side.
    assert!(
        crate::support::wait_until(Duration::from_secs(2), || proxy.status()["connections"]["clients"] == 1),
        "{}",
        proxy.status()["connections"]
    );
    drop(c);
}

/// an upstream head with bare LF line ends reaches the client as a well-formed head, its
/// hop-by-hop headers dropped.
#[test]
fn bare_lf_response_heads_reach_the_client_well_formed() {
    let (url, _) = raw_upstream(false, |_| {
        b"HTTP/1.1 201 Created\nContent-Type: application/json\nConnection: keep-alive, x-private\nx-private: secret\nKeep-Alive: timeout=5\nContent-Length: 2\n\n{}".to_vec()
    });
    let (_h, proxy) = single(&url, &[]);
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
