//! The security review's findings, each reproduced against the built binary on loopback.

use std::time::Duration;

use crate::support::mock::ok;
use crate::support::mock::{MockUpstream, Mode};
use crate::support::raw::one_endpoint;
use crate::support::*;

const KEY: &str = "sk-ant-api03-endpointSECRETkey0000000000000000000000000000-wxyz";

/// `Connection` naming the framing and credential headers must change nothing qcc owns: the
/// upstream gets qcc's own framing, the body once, and the next request on the pooled connection
/// arrives clean and whole.
#[test]
fn connection_naming_framing_and_credentials_cannot_desync_the_pool() {
    let mock = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &mock.url(), KEY, 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);

    // The body is itself a request: if Content-Length were dropped upstream, it would be parsed
    // as the pooled connection's next request.
    let smuggled = "POST /v1/smuggled HTTP/1.1\r\nhost: x\r\ncontent-length: 300\r\n\r\n";
    let names = "keep-alive, content-length, transfer-encoding, host, x-api-key, authorization, \
                 anthropic-version, x-drop-me";
    let mut c = Conn::connect(proxy.addr);
    let r = c.request(
        "POST",
        "/v1/messages",
        &[
            ("connection", names),
            ("x-api-key", "client-key"),
            ("anthropic-version", "2023-06-01"),
            ("x-drop-me", "1"),
            ("x-keep-me", "2"),
        ],
        smuggled.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, smuggled.as_bytes(), "the body went up once, whole");
    // A second client's request takes the pooled connection.
    let next = request(proxy.addr, "POST", "/v1/next", &[], b"{}");
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.body, b"{}");

    let seen = mock.requests();
    assert_eq!(
        seen.len(),
        2,
        "the upstream saw exactly two requests: {:?}",
        seen.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert_eq!(mock.connections(), 1, "both on the one pooled connection");
    let host = mock.url().trim_start_matches("http://").to_string();
    assert_eq!(
        seen[0].raw_head,
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nx-keep-me: 2\r\nAccept-Encoding: identity\r\nContent-Length: {}\r\n\
             x-api-key: {KEY}\r\nAuthorization: Bearer {KEY}\r\nanthropic-version: 2023-06-01\r\n\r\n",
            smuggled.len()
        ),
        "byte for byte: qcc's framing, the endpoint's key, nothing the client's Connection named"
    );
    assert_eq!(seen[1].path, "/v1/next");
    assert_eq!(seen[1].header("x-api-key"), Some(KEY));
    drop(seen);

    // Chunked: the same, with Transfer-Encoding named in Connection.
    let mut c = Conn::connect(proxy.addr);
    c.send(
        b"POST /v1/chunked HTTP/1.1\r\nhost: localhost\r\nconnection: transfer-encoding\r\n\
          transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    let seen = mock.requests();
    assert_eq!(seen.len(), 3);
    assert!(seen[2].raw_head.contains("\r\nTransfer-Encoding: chunked\r\n"), "{}", seen[2].raw_head);
}

/// Framing headers in a response are never dropped because its `Connection` names them.
#[test]
fn response_framing_survives_connection_tokens() {
    let up = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", up.local_addr().expect("addr"));
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for sock in up.incoming().take(1) {
            let Ok(mut sock) = sock else { return };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf);
            let _ = sock.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: content-length, x-hop\r\nx-hop: 1\r\ncontent-length: 5\r\n\r\nhello",
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &url, KEY, 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    let r = c.request("GET", "/v1/models", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(r.header("content-length"), Some("5"));
    assert_eq!(r.header("x-hop"), None, "a header the upstream's Connection named is dropped");
    // The client connection is still in step: another request gets its own answer.
    let r2 = c.request("GET", "/_qcc/status", &[], b"");
    assert_eq!(r2.status, 200);
}

/// A page in the user's browser cannot use the proxy: a foreign Host (DNS rebinding) or a
/// foreign Origin (CSRF) gets 403 without reaching any endpoint; a preflight is answered
/// locally; Claude Code's own requests pass.
#[test]
fn web_pages_cannot_spend_the_keys() {
    let mock = MockUpstream::start(Mode::Json { status: 200, body: mock::OK_BODY.into() });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &mock.url(), KEY, 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--allow-origin", "https://app.example"]);
    let port = proxy.addr.port();
    let raw = |text: String| {
        let mut c = Conn::connect(proxy.addr);
        c.send(text.as_bytes());
        c.read_response()
    };
    let body = r#"{"model":"m","max_tokens":1,"messages":[]}"#;
    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    let r = raw(format!(
        "POST /v1/messages HTTP/1.1\r\nHost: attacker.example:{port}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["type"], "permission_error");
    // CSRF: right Host, foreign Origin.
    let r = raw(format!(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://attacker.example\r\n\
         content-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 403);
    // A foreign preflight is refused, an allowed one answered here; neither is forwarded.
    let preflight = |origin: &str| {
        raw(format!(
            "OPTIONS /v1/messages HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-api-key\r\n\r\n"
        ))
    };
    assert_eq!(preflight("http://attacker.example").status, 403);
    let ok = preflight("https://app.example");
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(ok.header("access-control-allow-headers"), Some("x-api-key"));
    // Missing or repeated Host on HTTP/1.1: 400.
    assert_eq!(raw("GET /v1/models HTTP/1.1\r\n\r\n".into()).status, 400);
    assert_eq!(
        raw(format!("GET /v1/models HTTP/1.1\r\nHost: localhost\r\nHost: 127.0.0.1:{port}\r\n\r\n")).status,
        400
    );
    assert_eq!(mock.hits(), 0, "nothing reached the endpoint");

    // Claude Code's real requests (captured from claude 2.1.197: tests/fixtures/claude-code) pass.
    let fixture = |name: &str| {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code").join(name))
            .expect("fixture")
    };
    let real = |head: &str| {
        String::from_utf8(fixture(head)).expect("utf8").replace("127.0.0.1:19703", &format!("127.0.0.1:{port}"))
    };
    let mut request = real("head-POST.txt").into_bytes();
    request.extend_from_slice(&fixture("body-POST.json"));
    let mut c = Conn::connect(proxy.addr);
    c.send(&request);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.text());
    // An allowed origin is served, and the response names it.
    let r = raw(format!(
        "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://app.example\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(mock.hits(), 2);
    let st = proxy.status();
    assert_eq!(st["requests"]["forbidden"], 5, "{st}"); // rebinding, CSRF, foreign preflight, two bad Hosts
                                                        // Claude Code's start-up check, as it sends it.
    let mut c = Conn::connect(proxy.addr);
    c.send(real("head-HEAD.txt").as_bytes());
    assert_eq!(c.read_head().0, 200);
    assert_eq!(mock.hits(), 3);
}

/// SIGHUP gives an endpoint id a new URL and key: a connection to the old host that was in
/// flight must not go back to the pool, or the next request carries the new key to the old host.
#[test]
fn after_a_reload_the_new_key_never_goes_to_the_old_host() {
    let old = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(800) });
    let new = MockUpstream::start(Mode::Json { status: 200, body: mock::OK_BODY.into() });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &old.url(), "sk-old-key-000000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let addr = proxy.addr;
    let inflight = std::thread::spawn(move || post_messages(addr));
    assert!(wait_until(Duration::from_secs(5), || old.hits() == 1));
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &new.url(), "sk-new-key-111111111111", 1)]);
    proxy.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("reloaded cluster")));
    assert_eq!(inflight.join().expect("in-flight request").status, 200);
    for _ in 0..3 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    assert_eq!(old.hits(), 1, "nothing more reached the old host");
    assert!(old.requests().iter().all(|r| r.header("x-api-key") == Some("sk-old-key-000000000000")));
    assert_eq!(new.hits(), 3);
    assert!(new.requests().iter().all(|r| r.header("x-api-key") == Some("sk-new-key-111111111111")));
}

/// `qcc proxy stop` with a pid file left by a crash never signals whoever has that pid now.
#[test]
fn proxy_stop_never_signals_a_stranger_with_a_stale_pid() {
    let home = TempHome::new();
    let mut stranger = std::process::Command::new("sleep").arg("30").spawn().expect("spawn sleep");
    std::fs::create_dir_all(home.home()).expect("home");
    let pid = format!(
        r#"{{"pid": {}, "host": "127.0.0.1", "port": 7860, "start_time": "2025-10-17T10:00:00"}}"#,
        stranger.id()
    );
    std::fs::write(home.home().join("proxy.pid"), pid).expect("pid file");
    let out = home.run(&["proxy", "stop"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(stranger.try_wait(), Ok(None)), "the stranger is still alive");
    let _ = stranger.kill();
    let _ = stranger.wait();
}

/// Durations that would overflow a deadline are refused with one line naming the field.
#[test]
fn huge_durations_are_refused_not_a_panic() {
    let mock = MockUpstream::start(Mode::Json { status: 200, body: mock::OK_BODY.into() });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &mock.url(), KEY, 1).with(serde_json::json!({"timeout": 1e19}))]);
    let out = home.run(&["proxy", "start", "--cluster", "c", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("cache.json") && err.contains("'c'") && err.contains("\"timeout\""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &mock.url(), KEY, 1)]);
    for flag in ["--stream-idle-timeout", "--header-timeout", "--idle-timeout", "--drain-timeout", "--verify-interval"]
    {
        let out = home.run(&["proxy", "start", "--cluster", "c", "--port", "0", flag, "18446744073709551615"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(stderr(&out).contains(flag), "{flag}: {}", stderr(&out));
    }
    let out = home.run(&["endpoint", "add", "c", "--url", &mock.url(), "--key", KEY, "--timeout", "99999999999"]);
    assert_eq!(out.status.code(), Some(2));
    let out = home.run(&["proxy", "stop", "--timeout", "18446744073709551615"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Keys never show more than their last 4 characters nor more than a third of themselves;
/// `--key -` and `--key-file` keep them out of `ps`; URL credentials are masked in errors.
#[test]
fn keys_stay_out_of_output_and_ps() {
    let home = TempHome::new();
    let short = "sk-abcdefghi";
    assert_eq!(
        home.run(&["endpoint", "add", "c", "--url", "https://a.example", "--key", short]).status.code(),
        Some(0)
    );
    let list = stdout(&home.run(&["endpoint", "list", "c", "--json"]));
    let shown: serde_json::Value = serde_json::from_str(&list).expect("json");
    let masked = shown[0]["api_key"].as_str().expect("masked key");
    assert_eq!(masked, "…fghi");
    assert!(!list.contains("sk-abc"), "{list}");

    // From stdin.
    let mut child = home
        .qcc()
        .args(["endpoint", "add", "c", "--url", "https://b.example", "--key", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"sk-ant-from-stdin-0000000000000000000000000001\n").expect("write key");
    }
    assert!(child.wait().expect("wait").success());
    // From a file.
    let key_file = home.path("key.txt");
    std::fs::write(&key_file, "sk-ant-from-file-00000000000000000000000000002\n").expect("key file");
    let out =
        home.run(&["endpoint", "add", "c", "--url", "https://c.example", "--key-file", key_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("config json");
    let keys: Vec<&str> =
        cfg["profiles"]["c"]["endpoints"].as_array().unwrap().iter().map(|e| e["api_key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [short, "sk-ant-from-stdin-0000000000000000000000000001", "sk-ant-from-file-00000000000000000000000000002"]
    );
    let both = home.run(&["endpoint", "add", "c", "--url", "https://d.example", "--key", "x", "--key-file", "y"]);
    assert_eq!(both.status.code(), Some(2));

    let out = home.run(&["endpoint", "add", "c", "--url", "https://bob:hunter2@relay.example", "--key", "k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("hunter2") && stderr(&out).contains("***@relay.example"), "{}", stderr(&out));
}

/// `qcc proxy use` writes an apiKeyHelper that is one shell word whatever the key holds.
#[test]
fn api_key_helper_is_shell_quoted() {
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", "https://a.example", KEY, 1)]);
    let evil = "x'; touch pwned; echo '";
    let out =
        home.qcc().env("QCC_ACCESS_KEY", evil).args(["proxy", "use", "c", "--host", "10.0.0.5"]).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path(".claude/settings.json")).expect("settings")).expect("json");
    let helper = settings["apiKeyHelper"].as_str().expect("helper");
    let ran = std::process::Command::new("sh").arg("-c").arg(helper).current_dir(&home.root).output().expect("sh");
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim_end(), evil);
    assert!(!home.path("pwned").exists(), "the key was run as a command");
}

/// Two endpoints with one id in a cluster: the queue and reload key by id, so it is refused.
#[test]
fn duplicate_endpoint_ids_are_refused() {
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("aaaaaaaa", "https://a.example", KEY, 1), Ep::new("aaaaaaaa", "https://b.example", KEY, 2)],
    );
    let out = home.run(&["proxy", "start", "--cluster", "c", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("aaaaaaaa appears twice"), "{}", stderr(&out));
}

/// A locally answered request's body is never read as the connection's next request: `POST
/// /metrics`, `GET /metrics` and a `/_qcc/` path with a body whose bytes are a request of their
/// own are answered once and closed; nothing reaches the upstream.
#[test]
fn a_local_routes_body_is_never_a_second_request() {
    let mock = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &mock.url(), KEY, 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--idle-timeout", "60"]);
    let inner = "POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}";
    let mut held = Vec::new();
    for (method, path) in
        [("POST", "/metrics"), ("GET", "/metrics"), ("PUT", "/_qcc/nothing"), ("GET", "/_qcc/nothing")]
    {
        let mut c = Conn::connect(proxy.addr);
        c.send(
            format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n{inner}", inner.len())
                .as_bytes(),
        );
        let (got, closed) = c.try_read_to_close();
        let text = String::from_utf8_lossy(&got);
        assert!(closed, "{method} {path}: the connection is closed after the reply");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{method} {path}: one reply only:\n{text}");
        held.push(c); // never closed from this side
    }
    // Each half-closed connection waits LINGER (5 s) for the client's EOF, not --idle-timeout.
    // (Not polled: a poll's own connection would wake the loop's sweep early.)
    std::thread::sleep(Duration::from_secs(7));
    let s = proxy.status();
    assert_eq!(s["connections"]["clients"], 1, "closing connections outlived the linger: {}", s["connections"]);
    assert_eq!(mock.hits(), 0, "the smuggled request never went upstream");
}

/// A reply qcc makes itself to a `HEAD` carries no body: the next response on the connection is
/// read where it starts.
#[test]
fn local_replies_to_head_carry_no_body() {
    let mock = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("aaaaaaaa", &mock.url(), KEY, 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    c.send(b"HEAD /metrics HTTP/1.1\r\nhost: localhost\r\n\r\nGET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n");
    let head = c.read_until(b"\r\n\r\n");
    assert!(head.starts_with(b"HTTP/1.1 405"), "{}", String::from_utf8_lossy(&head));
    let next = c.read_response();
    assert_eq!(next.status, 200, "the second reply starts right after the first head");
    assert!(next.text().contains("qcc_"), "{}", next.text());
    // A refusal (a foreign Host) to HEAD: a head alone, then the close.
    let mut c = Conn::connect(proxy.addr);
    c.send(b"HEAD /v1/messages HTTP/1.1\r\nhost: evil.example\r\n\r\n");
    let (got, closed) = c.try_read_to_close();
    let text = String::from_utf8_lossy(&got);
    assert!(closed && text.starts_with("HTTP/1.1 4") && text.ends_with("\r\n\r\n"), "{text}");
}

/// the dashboard cannot be framed; an upstream's answer is sandboxed; a browser
/// request from another site is refused and never forwarded.
#[test]
fn the_dashboard_is_unframeable_answers_are_sandboxed_and_cross_site_requests_refused() {
    let m = MockUpstream::start(ok());
    let (_h, proxy) = one_endpoint(&m.url(), &[]);
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

/// a public listener needs a real key; wrong keys are limited per address.
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
