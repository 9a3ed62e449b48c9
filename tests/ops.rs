//! Running qcc for real (issue 4): the operator script, sd_notify, drain, access control, logs.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::{post_messages, request, wait_until, Conn, Ep, Proxy, TempHome};

#[test]
fn operator_script_start_status_failover_reload_stop() {
    let good = MockUpstream::start(ok());
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ops.sh"))
        .env("QCC_BIN", env!("CARGO_BIN_EXE_qcc"))
        .env("GOOD_URL", good.url())
        .env("DEAD_URL", MockUpstream::refused_url())
        .output()
        .expect("run tests/ops.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tests/ops.sh failed:\n{text}");
    assert!(text.contains("all checks passed"), "{text}");
}

#[test]
fn sd_notify_ready_and_stopping() {
    let home = TempHome::new();
    let sock_path = home.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let m = MockUpstream::start(Mode::Json { status: 200, body: "{}".into() });
    home.write_cluster("c", &[Ep::new("n0000001", &m.url(), "sk-n-000000000", 1)]);
    let mut child = home
        .qcc()
        .env("NOTIFY_SOCKET", &sock_path)
        .args(["proxy", "start", "--cluster", "c", "--port", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 10 s");
    assert_eq!(&buf[..n], b"READY=1");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(wait_until(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_)))));
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

#[test]
fn sigterm_lets_an_in_flight_stream_finish_then_exits_zero() {
    let events: Vec<String> = (0..3).map(|i| format!("data: {i}\n\n")).collect();
    let m = MockUpstream::start(Mode::Sse { events, delay: Duration::from_millis(300) });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("t0000001", &m.url(), "sk-t-000000000", 1)]);
    let mut proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[], b"{}");
    let (status, _) = c.read_head();
    assert_eq!(status, 200);
    proxy.signal(libc::SIGTERM);
    let rest = c.read_until(b"0\r\n\r\n");
    assert!(String::from_utf8_lossy(&rest).contains("data: 2"), "the stream finished");
    assert!(
        wait_until(Duration::from_secs(2), || std::net::TcpStream::connect(proxy.addr).is_err()),
        "no new connections while draining"
    );
    let st = proxy.terminate().expect("exited");
    assert_eq!(st.code(), Some(0));
    assert!(!home.home().join("proxy.pid").exists(), "pid file removed");
}

#[test]
fn access_key_required_off_loopback_and_never_forwarded() {
    let home = TempHome::new();
    let m = MockUpstream::start(ok());
    home.write_cluster("c", &[Ep::new("z0000001", &m.url(), "sk-z-endpointkey", 1)]);
    // Non-loopback without a key: refused at start.
    let o = home.run(&["proxy", "start", "--cluster", "c", "--host", "0.0.0.0", "--port", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("access key"));
    // With a key (here on loopback, so the test stays on 127.0.0.1), it is enforced.
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-key", "qcc-access-secret-1234"]);
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = request(proxy.addr, "GET", "/_qcc/status", &[], b"");
    assert_eq!(r.status, 401, "/_qcc/ needs the key too");
    assert_eq!(m.hits(), 0, "nothing forwarded");
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", "qcc-access-secret-1234")], b"{}");
    assert_eq!(r.status, 200);
    let r = request(proxy.addr, "POST", "/v1/messages", &[("authorization", "Bearer qcc-access-secret-1234")], b"{}");
    assert_eq!(r.status, 200);
    let reqs = m.requests();
    assert!(
        reqs.iter().all(|r| r.headers.iter().all(|(_, v)| !v.contains("qcc-access-secret"))),
        "access key never forwarded"
    );
    assert_eq!(reqs[0].header("x-api-key"), Some("sk-z-endpointkey"));
    let s = request(proxy.addr, "GET", "/_qcc/status", &[("x-api-key", "qcc-access-secret-1234")], b"").json();
    assert_eq!(s["requests"]["unauthorized"], 2);
    assert_eq!(s["endpoints"][0]["health"]["total_requests"], 2, "401s count against no endpoint: {s}");
}

#[test]
fn no_key_in_the_log_after_a_run() {
    let home = TempHome::new();
    let ok = MockUpstream::start(ok());
    let bad = MockUpstream::start(Mode::Status { status: 401, retry_after: None });
    let keys = ["sk-ant-api03-LEAKCHECK-AAAA-1111", "sk-ant-api03-LEAKCHECK-BBBB-2222"];
    home.write_cluster("c", &[Ep::new("l0000001", &bad.url(), keys[0], 1), Ep::new("l0000002", &ok.url(), keys[1], 2)]);
    let proxy =
        Proxy::start(&home, &["--cluster", "c", "--log-level", "trace", "--access-key", "qcc-access-LEAK-3333"]);
    for _ in 0..3 {
        request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", "qcc-access-LEAK-3333")], b"{}");
    }
    request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", "wrong-client-key-LEAK-4444")], b"{}");
    let status =
        request(proxy.addr, "GET", "/_qcc/status", &[("authorization", "Bearer qcc-access-LEAK-3333")], b"").text();
    let log = proxy.log();
    assert!(log.contains("added to failure queue"), "the run was logged: {log}");
    for secret in keys.iter().chain(&["qcc-access-LEAK-3333", "wrong-client-key-LEAK-4444"]) {
        assert!(!log.contains(secret), "{secret} in proxy.log");
        assert!(!status.contains(secret), "{secret} in status");
    }
}

#[test]
fn a_second_proxy_on_the_same_port_fails_with_a_clear_line() {
    let m = MockUpstream::start(ok());
    let (a, b) = (TempHome::new(), TempHome::new());
    for h in [&a, &b] {
        h.write_cluster("c", &[Ep::new("s0000001", &m.url(), "sk-s-000000000", 1)]);
    }
    let first = Proxy::start(&a, &["--cluster", "c"]);
    let port = first.addr.port().to_string();
    let o = b.run(&["proxy", "start", "--cluster", "c", "--port", &port]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot listen on") && err.contains(&port), "{err}");
    assert_eq!(post_messages(first.addr).status, 200, "the running one is left alone");
}

#[test]
fn nothing_configured_runs_the_builtin_default_and_says_how_to_add_endpoints() {
    let home = TempHome::new();
    let proxy = Proxy::start(&home, &[]);
    let out = proxy.stdout.lock().expect("stdout").join("\n");
    assert!(out.contains("api.anthropic.com") && out.contains("qcc endpoint add"), "{out}");
    let s = proxy.status();
    assert_eq!(s["endpoints"][0]["base_url"], "https://api.anthropic.com");
}

#[test]
fn proxy_logs_shows_the_tail_and_follows_until_ctrl_c() {
    let home = TempHome::new();
    std::fs::create_dir_all(home.home()).expect("home");
    let log = home.home().join("proxy.log");
    let lines: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, lines).expect("log");
    let o = home.run(&["proxy", "logs", "-n", "3"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "line 28\nline 29\nline 30\n");
    let mut child = home
        .qcc()
        .args(["proxy", "logs", "-n", "1", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).expect("first line");
    assert_eq!(first, "line 30\n", "follow mode printed the tail, so it is following now");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"appended later\n"))
        .expect("append");
    let mut next = String::new();
    std::io::BufRead::read_line(&mut out, &mut next).expect("appended line");
    assert_eq!(next, "appended later\n");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
        text
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(wait_until(Duration::from_secs(5), || matches!(child.try_wait(), Ok(Some(_)))));
    assert_eq!(child.wait().expect("wait").code(), Some(0), "Ctrl-C ends follow mode cleanly");
    assert_eq!(reader.join().expect("reader"), "", "nothing more after Ctrl-C");
}
