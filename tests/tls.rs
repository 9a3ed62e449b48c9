//! HTTPS upstreams: rustls with webpki-roots plus an extra CA; certificate checks always on.

use crate::support::mock::OK_BODY;
use std::time::Duration;

use crate::support::tls::{After, Leaf, Reply, TestCa, TlsMock};
use crate::support::{post_messages, wait_until, Conn, Ep, Proxy, TempHome};

#[test]
fn https_upstream_trusted_through_ca_file_flag_and_endpoint_field() {
    let ca = TestCa::new();
    let mock = TlsMock::start(ca.server_config(Leaf::Good), OK_BODY);
    let home = TempHome::new();
    let pem = ca.write_pem(&home.root);
    home.write_cluster("c", &[Ep::new("t1000001", &mock.url(), "sk-tls-00000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--ca-file", pem.to_str().expect("utf8")]);
    for _ in 0..3 {
        let r = post_messages(proxy.addr);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, OK_BODY.as_bytes());
    }
    assert_eq!(mock.hits(), 3);
    drop(proxy);
    // The per-endpoint field works the same.
    let home2 = TempHome::new();
    let pem2 = ca.write_pem(&home2.root);
    home2.write_cluster(
        "c",
        &[Ep::new("t1000002", &mock.url(), "sk-tls-00000000", 1).with(serde_json::json!({"ca_file": pem2}))],
    );
    let proxy = Proxy::start(&home2, &["--cluster", "c"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
}

#[test]
fn untrusted_wrong_host_and_expired_certificates_are_refused_with_the_reason() {
    let ca = TestCa::new();
    let cases = [
        (Leaf::Good, false, "UnknownIssuer"),
        (Leaf::WrongHost, true, "not valid for name"),
        (Leaf::Expired, true, "xpired"),
    ];
    for (leaf, trust, reason) in cases {
        let mock = TlsMock::start(ca.server_config(leaf), OK_BODY);
        let home = TempHome::new();
        let pem = ca.write_pem(&home.root);
        home.write_cluster("c", &[Ep::new("t2000001", &mock.url(), "sk-tls-00000000", 1)]);
        let mut args = vec!["--cluster", "c"];
        let pem_arg = pem.to_string_lossy().into_owned();
        if trust {
            args.extend(["--ca-file", pem_arg.as_str()]);
        }
        let proxy = Proxy::start(&home, &args);
        let r = post_messages(proxy.addr);
        assert_eq!(r.status, 502, "{reason}: {}", r.text());
        assert_eq!(mock.hits(), 0, "{reason}: no request may pass a failed handshake");
        assert!(
            wait_until(std::time::Duration::from_secs(2), || proxy.log().contains(reason)),
            "{reason} not logged:\n{}",
            proxy.log()
        );
        assert_eq!(proxy.status()["failure_queue"]["failed_endpoints_count"], 1);
    }
}

/// `qcc health test` speaks TLS itself (no proxy): a trusted upstream answers, an untrusted
/// one fails with the reason.
#[test]
fn health_test_probes_https_endpoints() {
    let ca = TestCa::new();
    let mock = TlsMock::start(ca.server_config(Leaf::Good), OK_BODY);
    let home = TempHome::new();
    let pem = ca.write_pem(&home.root);
    home.write_cluster(
        "c",
        &[
            Ep::new("t3000001", &mock.url(), "sk-tls-00000000", 1).with(serde_json::json!({"ca_file": pem})),
            Ep::new("t3000002", &mock.url(), "sk-tls-00000000", 2),
        ],
    );
    let o = home.run(&["health", "test", "c", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["ok"], true, "{v}");
    assert_eq!(v[1]["ok"], false);
    assert!(v[1]["reason"].as_str().unwrap_or("").contains("UnknownIssuer"), "{v}");
    assert_eq!(mock.hits(), 1);
}

fn tls_proxy(ca: &TestCa, mock: &TlsMock, args: &[&str]) -> (TempHome, Proxy) {
    let home = TempHome::new();
    let pem = ca.write_pem(&home.root);
    home.write_cluster(
        "c",
        &[Ep::new("t4000001", &mock.url(), "sk-tls-00000000", 1).with(serde_json::json!({"ca_file": pem}))],
    );
    let mut all = vec!["--cluster", "c", "--verify-interval", "3600"];
    all.extend_from_slice(args);
    let proxy = Proxy::start(&home, &all);
    (home, proxy)
}

fn head(status: &str, extra: &str, len: Option<usize>) -> Vec<u8> {
    let len = len.map(|n| format!("content-length: {n}\r\n")).unwrap_or_default();
    format!("HTTP/1.1 {status}\r\n{extra}{len}\r\n").into_bytes()
}

/// Large bodies both ways over TLS, read slowly by the client at first (rustls and the client's
/// queue under backpressure), arrive byte-exact; the connection is then reused from the pool.
#[test]
fn large_bodies_both_ways_over_tls_with_backpressure_and_pool_reuse() {
    let ca = TestCa::new();
    let mock = TlsMock::serve(ca.server_config(Leaf::Good), |_, body| {
        let mut reply = head("200 OK", "content-type: application/octet-stream\r\n", Some(body.len()));
        reply.extend_from_slice(body);
        Reply { pieces: vec![reply], gap: Duration::ZERO, after: After::KeepAlive }
    });
    let (_h, proxy) = tls_proxy(&ca, &mock, &[]);
    let body: Vec<u8> = (0..6000000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/files", &[], &body);
    std::thread::sleep(Duration::from_millis(500)); // the reply piles up behind a client not reading
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}\n{}", r.text(), proxy.log());
    assert!(r.body == body, "echoed body differs ({} bytes back)", r.body.len());
    for _ in 0..4 {
        let r = c.request("POST", "/v1/files", &[], b"small");
        assert_eq!(r.body, b"small");
    }
    assert_eq!(mock.connections(), 1, "one TLS connection, reused from the pool");
}

/// A Messages event stream over TLS: relayed in order, its usage counted.
#[test]
fn sse_over_tls_is_relayed_and_counted() {
    let ca = TestCa::new();
    let mock = TlsMock::serve(ca.server_config(Leaf::Good), |_, _| {
        let mut pieces =
            vec![head("200 OK", "content-type: text/event-stream\r\ntransfer-encoding: chunked\r\n", None)];
        for e in crate::streams::full_stream("claude-tls") {
            pieces.push(format!("{:x}\r\n{e}\r\n", e.len()).into_bytes());
        }
        pieces.push(b"0\r\n\r\n".to_vec());
        Reply { pieces, gap: Duration::from_millis(5), after: After::KeepAlive }
    });
    let (_h, proxy) = tls_proxy(&ca, &mock, &[]);
    let mut c = Conn::connect(proxy.addr);
    let r = c.request("POST", "/v1/messages", &[("content-type", "application/json")], br#"{"stream":true}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), crate::streams::full_stream("claude-tls").concat());
    let s = proxy.status();
    assert_eq!(s["usage"]["today"]["t4000001"]["claude-tls"]["output_tokens"], 15, "{s}");
}

/// An upstream that cuts the TCP connection without a TLS close_notify, mid-body: the client
/// never gets a response that looks complete.
#[test]
fn truncation_without_close_notify_never_looks_complete() {
    let ca = TestCa::new();
    let mock = TlsMock::serve(ca.server_config(Leaf::Good), |n, _| {
        let len = if n == 0 { Some(1000) } else { None }; // framed, then until-close
        let mut reply = head("200 OK", "content-type: application/octet-stream\r\n", len);
        reply.extend_from_slice(&[b'x'; 500]);
        Reply { pieces: vec![reply], gap: Duration::ZERO, after: After::Cut }
    });
    let (_h, proxy) = tls_proxy(&ca, &mock, &[]);
    for what in ["framed", "until close"] {
        let mut c = Conn::connect(proxy.addr);
        c.send_request("GET", "/v1/files/x", &[], b"");
        let (got, closed) = c.try_read_to_close();
        let text = String::from_utf8_lossy(&got);
        assert!(closed, "{what}");
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(body.len() <= 500, "{what}: {text}");
        if what == "framed" {
            assert!(text.contains("content-length: 1000"), "{what}: the client can tell it is short: {text}");
        }
    }
    assert_eq!(mock.hits(), 2);
}
