//! Who is blamed for what: only the endpoint's faults count against it, and requests outside
//! the API never do.

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::*;

fn two(home: &TempHome, a: &MockUpstream, b_url: &str) {
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1), Ep::new("b0000001", b_url, "sk-b-0000000000", 2)],
    );
}

/// Claude Code's start-up `HEAD /` against a relay that does not implement HEAD (501): relayed
/// once, not retried, the endpoint neither blamed nor queued.
#[test]
fn head_answered_501_takes_nothing_down() {
    let a = MockUpstream::start(Mode::Status { status: 501, retry_after: None });
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    two(&home, &a, &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    c.send(format!("HEAD / HTTP/1.1\r\nhost: {}\r\nuser-agent: claude-cli/2.1.3\r\n\r\n", proxy.addr).as_bytes());
    assert_eq!(c.read_head().0, 501);
    assert_eq!((a.hits(), b.hits()), (1, 0), "not retried");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["failed_endpoints_count"], 0);
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0);
    assert_eq!(s["endpoints"][0]["health"]["status"], "unknown");
    assert_eq!(s["endpoints"][0]["health"]["failed_requests"], 0);
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy
            .log()
            .contains("HEAD / -> 127.0.0.1 (a0000001) 501 attempts=1")),
        "{}",
        proxy.log()
    );
    assert!(!proxy.log().contains("failure queue"), "{}", proxy.log());
}

/// Outside `/v1/`, even a transport failure is not the endpoint's verdict: one try, a 502,
/// health and queue untouched.
#[test]
fn requests_outside_the_api_are_tried_once_and_never_blamed() {
    let refused = MockUpstream::refused_url();
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", &refused, "sk-a-0000000000", 1), Ep::new("b0000001", &b.url(), "sk-b-0000000000", 2)],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(proxy.addr, "GET", "/", &[], b"");
    assert_eq!(r.status, 502);
    assert_eq!(b.hits(), 0, "not retried elsewhere");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0);
    assert_eq!(s["endpoints"][0]["health"]["consecutive_failures"], 0);
    // The same failure on an API request is the endpoint's: retried on B, A queued.
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(b.hits(), 1);
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 1);
}

/// 501, 505, other 5xx and every 4xx but 401/403/429 are the upstream's answer: relayed as is,
/// not retried, not blamed. 500, 502, 503, 504, 529, 429, 401, 403 are blamed and retried.
#[test]
fn only_the_endpoints_faults_are_blamed_and_retried() {
    for (status, blamed) in [
        (501, false),
        (505, false),
        (507, false),
        (400, false),
        (404, false),
        (413, false),
        (422, false),
        (500, true),
        (502, true),
        (503, true),
        (504, true),
        (529, true),
        (429, true),
        (401, true),
        (403, true),
    ] {
        let a = MockUpstream::start(Mode::Status { status, retry_after: None });
        let b = MockUpstream::start(ok());
        let home = TempHome::new();
        two(&home, &a, &b.url());
        let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
        let r = post_messages(proxy.addr);
        let s = proxy.status();
        if blamed {
            assert_eq!((r.status, b.hits()), (200, 1), "{status}: retried on B");
            assert_eq!(s["failure_queue"]["stats"]["total_failed"], 1, "{status}");
        } else {
            assert_eq!((r.status, b.hits()), (status, 0), "{status}: relayed, not retried");
            assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{status}");
            assert_eq!(s["endpoints"][0]["health"]["failed_requests"], 0, "{status}");
        }
    }
}

/// A client error says nothing about recovery: a queued endpoint that answers 400 stays queued
/// and keeps its health.
#[test]
fn a_client_error_does_not_restore_a_queued_endpoint() {
    let a = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 500);
    let before = proxy.status();
    assert_eq!(before["failure_queue"]["failed_endpoints_count"], 1);
    a.set_mode(Mode::Status { status: 400, retry_after: None });
    assert_eq!(post_messages(proxy.addr).status, 400);
    let after = proxy.status();
    assert_eq!(after["failure_queue"]["failed_endpoints_count"], 1, "still queued");
    assert_eq!(after["endpoints"][0]["health"]["status"], before["endpoints"][0]["health"]["status"]);
    assert_eq!(
        after["endpoints"][0]["health"]["consecutive_failures"],
        before["endpoints"][0]["health"]["consecutive_failures"]
    );
    assert_eq!(after["failure_queue"]["stats"]["total_recovered"], 0);
}
