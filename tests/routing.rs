//! After an endpoint fails, the client's retry must land elsewhere; it comes back after a probe.

use std::time::Duration;

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::*;

/// A dies mid-body (nothing qcc can retry: bytes reached the client). The client's own retry
/// goes to B at once, although A has failed only once (`max_failures` 3); A is first again after
/// a successful recovery probe. The request log says "failed", as the counters do.
#[test]
fn a_failure_the_client_saw_moves_its_retry_to_the_next_endpoint() {
    let a = MockUpstream::start(Mode::ResetMidBody { total: 1000, send: 100 });
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "1"]);

    // The first try dies mid-body: the client sees a broken response.
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], b"{}");
    let (_, closed_early) = c.try_read_to_close_or_response();
    assert!(closed_early, "a response cut short never looks complete");
    assert_eq!((a.hits(), b.hits()), (1, 0));
    let s = proxy.status();
    assert_eq!(s["requests"]["failed"], 1);
    assert_eq!(s["endpoints"][0]["health"]["consecutive_failures"], 1);
    assert_eq!(s["endpoints"][0]["usable"], false, "queued: not picked while B is usable");

    // The client retries: B serves it, and the next ones too, until A is verified again.
    for _ in 0..3 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    assert_eq!((a.hits(), b.hits()), (1, 3));
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy
            .log()
            .contains("(a0000001) failed (connection closed: mid-body) attempts=1")),
        "log word matches the counter:\n{}",
        proxy.log()
    );
    assert!(!proxy.log().contains("aborted"), "{}", proxy.log());

    // A answers its probe: first place again.
    a.set_mode(ok());
    assert!(wait_until(Duration::from_secs(10), || proxy.status()["failure_queue"]["failed_endpoints_count"] == 0));
    let before = a.hits();
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(a.hits(), before + 1, "the recovered primary takes traffic again");
    assert_eq!(b.hits(), 3);
}

/// One failed attempt that was retried elsewhere moves traffic too: the next request does not
/// go back to A before it is verified.
#[test]
fn a_retried_failure_also_keeps_the_next_request_away() {
    let a = MockUpstream::start(Mode::Status { status: 503, retry_after: None });
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!((a.hits(), b.hits()), (1, 1));
    a.set_mode(ok());
    for _ in 0..3 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    assert_eq!((a.hits(), b.hits()), (1, 4), "A waits for its probe");
}

/// `qcc proxy use --host H --port P` prints the start command with that host and port; run as
/// printed, it serves where settings.json points. Once it runs, `proxy use` says so instead.
#[test]
fn proxy_use_prints_a_command_that_matches_the_settings() {
    let mock = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = home.run(&["proxy", "use", "c", "--host", "127.0.0.1", "--port", &port.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let cmd = text.lines().find_map(|l| l.strip_prefix("start the proxy with: qcc ")).expect("a start command");
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path(".claude/settings.json")).expect("settings")).expect("json");
    let base = settings["env"]["ANTHROPIC_BASE_URL"].as_str().expect("base url").to_string();

    let mut child = home
        .qcc()
        .args(cmd.split_whitespace())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the printed command");
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
    assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(addr).is_ok()));
    assert_eq!(post_messages(addr).status, 200, "the proxy listens where settings.json points");

    let again = home.run(&["proxy", "use", "c", "--host", "127.0.0.1", "--port", &port.to_string()]);
    let text = stdout(&again);
    assert!(text.contains("already runs there") && !text.contains("start the proxy with"), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}
