//! Session affinity keyed on Claude Code's `x-claude-code-session-id`.

use std::time::Duration;

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::*;

/// A request of session `s` (as Claude Code sends it).
fn ask(proxy: &Proxy, s: &str) -> u16 {
    request(
        proxy.addr,
        "POST",
        "/v1/messages?beta=true",
        &[("content-type", "application/json"), ("x-claude-code-session-id", s)],
        br#"{"model":"m","max_tokens":8,"messages":[]}"#,
    )
    .status
}

/// Which mock served each of the last `n` requests, by session header.
fn served_by(mocks: &[&MockUpstream], s: &str) -> Vec<usize> {
    mocks
        .iter()
        .enumerate()
        .flat_map(|(i, m)| {
            m.requests()
                .iter()
                .filter(|r| r.header("x-claude-code-session-id") == Some(s))
                .map(|_| i)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn two(home: &TempHome, a: &MockUpstream, b: &MockUpstream) {
    home.write_pair(&a.url(), &b.url());
}

/// With round robin, requests without a session alternate; two interleaved sessions each stay
/// on the endpoint that first served them. Status counts the bound sessions; the log carries
/// the session id's first 8 characters.
#[test]
fn interleaved_sessions_keep_their_endpoints() {
    let (a, b) = (MockUpstream::start(ok()), MockUpstream::start(ok()));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--strategy", "round_robin"]);
    for _ in 0..5 {
        assert_eq!(ask(&proxy, "11111111-aaaa"), 200);
        assert_eq!(ask(&proxy, "22222222-bbbb"), 200);
        assert_eq!(post_messages(proxy.addr).status, 200); // no session: the strategy as usual
    }
    let (s1, s2) = (served_by(&[&a, &b], "11111111-aaaa"), served_by(&[&a, &b], "22222222-bbbb"));
    assert_eq!(s1.len(), 5);
    assert!(s1.iter().all(|&m| m == s1[0]), "session 1 stayed: {s1:?}");
    assert!(s2.iter().all(|&m| m == s2[0]), "session 2 stayed: {s2:?}");
    assert!(a.hits() > 5 && b.hits() > 5, "sessionless requests still spread: {} {}", a.hits(), b.hits());
    let s = proxy.status();
    assert_eq!(s["affinity"]["sessions"], 2);
    let bound: u64 = s["endpoints"].as_array().unwrap().iter().map(|e| e["sessions"].as_u64().unwrap()).sum();
    assert_eq!(bound, 2);
    assert!(
        crate::support::wait_until(std::time::Duration::from_secs(5), || proxy.log().contains("session=11111111")),
        "{}",
        proxy.log()
    );
}

/// A failure moves the session to the endpoint that served it; when the primary recovers, new
/// sessions go to it while the moved session stays where its cache now is.
#[test]
fn failure_moves_a_session_and_recovery_sends_only_new_sessions_back() {
    let (a, b) = (MockUpstream::start(ok()), MockUpstream::start(ok()));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "1"]);
    assert_eq!(ask(&proxy, "old-session"), 200);
    assert_eq!(served_by(&[&a, &b], "old-session"), vec![0]);
    a.set_mode(Mode::Status { status: 529, retry_after: None });
    assert_eq!(ask(&proxy, "old-session"), 200, "failed over within the request");
    a.set_mode(ok());
    assert!(wait_until(Duration::from_secs(10), || proxy.status()["failure_queue"]["failed_endpoints_count"] == 0));
    assert_eq!(ask(&proxy, "old-session"), 200);
    assert_eq!(ask(&proxy, "new-session"), 200);
    let old = served_by(&[&a, &b], "old-session");
    assert_eq!(old[old.len() - 1], 1, "the moved session stays on B: {old:?}");
    assert_eq!(served_by(&[&a, &b], "new-session"), vec![0], "a new session goes to the recovered primary");
}

/// The table is bounded (least recently used forgotten) and forgets idle sessions.
#[test]
fn eviction_at_the_bound_and_expiry() {
    let (a, b) = (MockUpstream::start(ok()), MockUpstream::start(ok()));
    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--strategy", "round_robin", "--affinity-max", "2"]);
    for s in ["s1", "s2", "s3"] {
        assert_eq!(ask(&proxy, s), 200);
    }
    assert_eq!(proxy.status()["affinity"]["sessions"], 2, "s1 was evicted");
    drop(proxy);

    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--strategy", "round_robin", "--affinity-ttl", "1"]);
    assert_eq!(ask(&proxy, "idle"), 200);
    let first = served_by(&[&a, &b], "idle")[0];
    for _ in 0..2 {
        assert_eq!(post_messages(proxy.addr).status, 200); // moves the round robin on, to B next
    }
    assert_eq!(ask(&proxy, "idle"), 200);
    assert_eq!(served_by(&[&a, &b], "idle")[1], first, "still bound");
    std::thread::sleep(Duration::from_millis(2100)); // idle past --affinity-ttl
                                                     // Round robin now points at B; an expired session follows the strategy.
    let next_rr = served_by(&[&a, &b], "idle").len();
    assert_eq!(ask(&proxy, "idle"), 200);
    let all = served_by(&[&a, &b], "idle");
    assert_eq!(all.len(), next_rr + 1);
    assert_ne!(*all.last().unwrap(), first, "expired: not pinned any more: {all:?}");

    let home = TempHome::new();
    two(&home, &a, &b);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--strategy", "round_robin", "--no-affinity"]);
    for _ in 0..4 {
        assert_eq!(ask(&proxy, "free"), 200);
    }
    let free = served_by(&[&a, &b], "free");
    assert!(free.contains(&0) && free.contains(&1), "--no-affinity: {free:?}");
    assert_eq!(proxy.status()["affinity"]["enabled"], false);
}
