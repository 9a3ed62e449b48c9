//! Blame only the endpoint's faults, cancel what nobody waits for, make truncation visible.

use std::io::Read;
use std::time::Duration;

use crate::support::mock::read_request;
use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::raw::{json_reply, one_endpoint, raw_upstream};
use crate::support::*;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A client that stops reading (a closed laptop lid, Ctrl-Z) longer than --stream-idle-timeout
/// does not get a healthy endpoint blamed: qcc was not reading the upstream, so its silence is
/// not timed. The response completes when the client reads again.
#[test]
fn a_paused_client_gets_no_endpoint_blamed() {
    const SIZE: usize = 16 * 1024 * 1024;
    let mock = MockUpstream::start(Mode::Big { size: SIZE });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--stream-idle-timeout", "1"]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("GET", "/v1/files/big", &[], b"");
    let (status, _) = c.read_head();
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(3000)); // the client pauses for 3 stream-idle timeouts
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    got += c.take_buffered();
    while got < SIZE {
        match c.stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert_eq!(got, SIZE, "the whole body arrived after the pause");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{s}");
    assert_eq!(s["requests"]["successful"], 1);
}

/// A client that hangs up before the response head (Esc in Claude Code) cancels the upstream
/// attempt at once: the upstream connection is closed, the request counts as aborted, and no
/// endpoint is blamed.
#[test]
fn a_client_gone_before_the_head_cancels_the_upstream_attempt() {
    let mock = MockUpstream::start(Mode::Slow { delay: Duration::from_secs(5) });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], b"{}");
    assert!(wait_until(Duration::from_secs(3), || mock.hits() == 1));
    drop(c);
    assert!(
        wait_until(Duration::from_secs(1), || proxy.status()["connections"]["upstreams"] == 0),
        "the upstream attempt is cancelled within a second: {}",
        proxy.status()
    );
    let s = proxy.status();
    assert_eq!(s["requests"]["aborted"], 1);
    assert_eq!(s["requests"]["successful"], 0);
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0);
}

/// Clearing the failure queue makes its endpoints eligible again: an unhealthy endpoint that is
/// no longer queued would otherwise never be probed or picked.
#[test]
fn clearing_the_queue_makes_its_endpoints_eligible_again() {
    let a = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[
            Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1).with(serde_json::json!({"max_failures": 1})),
            Ep::new("b0000001", &b.url(), "sk-b-0000000000", 2),
        ],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(proxy.status()["endpoints"][0]["health"]["status"], "unhealthy");
    a.set_mode(ok());
    let out = home.run(&["queue", "clear"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = proxy.status();
    assert_eq!(s["endpoints"][0]["usable"], true, "{s}");
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(a.hits(), 2, "the primary takes traffic again");
}

/// A response framed by the connection's close that the upstream resets mid-body reaches the
/// client as a reset, never as a clean end (curl exits 56 through qcc as it does direct).
#[test]
fn a_truncated_until_close_response_ends_with_a_reset() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    std::thread::spawn(move || {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let Ok((mut sock, _)) = l.accept() else { return };
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf);
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npartial body");
        std::thread::sleep(Duration::from_millis(200));
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: SO_LINGER 0 on our own socket, so that dropping it sends a reset.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &url, "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut c = Conn::connect(proxy.addr);
    c.send_request("GET", "/v1/files/x", &[], b"");
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break "clean end",
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(end, "reset", "got {:?}", String::from_utf8_lossy(&all));
    assert!(String::from_utf8_lossy(&all).contains("partial body"));
}

/// The keep-alive race: the primary closes a pooled connection just as a request goes out on it.
/// The request is answered by the secondary, and the primary, which answered everything it
/// was asked, stays out of the failure queue and keeps its traffic.
#[test]
fn a_pooled_connection_lost_to_the_keep_alive_race_blames_nobody() {
    let a = MockUpstream::start(ok());
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    a.set_mode(Mode::CloseBeforeHead); // reads the next request on the pooled connection, closes
    assert_eq!(post_messages(proxy.addr).status, 200, "answered by the secondary");
    assert_eq!((a.hits(), b.hits()), (2, 1));
    let s = proxy.status();
    assert_eq!(s["connections"]["pool_races"], 1, "{s}");
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{s}");
    assert_eq!(s["endpoints"][0]["health"]["consecutive_failures"], 0, "{s}");
    a.set_mode(ok());
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(a.hits(), 3, "the primary keeps its traffic");
}

/// The idle-close race seen as a clean EOF: a pooled connection that sat idle a second or more
/// reads the next request and closes without answering (the upstream's keep-alive timer fired as
/// it arrived). One retry on a fresh connection to the same endpoint, nobody blamed, counted in
/// `/metrics`. A connection used a moment ago that does the same is never sent the request again.
#[test]
fn a_rested_pooled_connection_closed_before_answering_is_retried_once_on_a_fresh_one() {
    let a = MockUpstream::start(Mode::OneAnswerPerConnection);
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    std::thread::sleep(Duration::from_millis(1200)); // the pooled connection rests
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 200, "retried on a fresh connection: {}", r.text());
    assert_eq!((a.hits(), a.connections()), (3, 2));
    let metrics = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    assert!(metrics.contains("qcc_pool_stale_retries_total 1"), "{metrics}");
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 0);
    // Just used (well under a second): the request may have closed it; not sent there again.
    let r = post_messages(proxy.addr);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(a.hits(), 4, "reached the endpoint once");
    assert!(request(proxy.addr, "GET", "/metrics", &[], b"").text().contains("qcc_pool_stale_retries_total 1"));
}

/// an upstream that closes right after each keep-alive response: every request of a
/// one-endpoint cluster answered, each reaching the endpoint once.
#[test]
fn an_upstream_closing_after_each_keep_alive_response_loses_no_request() {
    let (url, hits) = raw_upstream(true, |_| json_reply(r#"{"content":[]}"#));
    let (_h, proxy) = one_endpoint(&url, &[]);
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
    let (_h, proxy) = one_endpoint(&url, &[]);
    let mut c = Conn::connect(proxy.addr);
    for i in 0..3 {
        assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 200, "request {i}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3, "each request read by the upstream once");
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
}

/// A pooled connection the upstream closed while it sat idle is dropped before use (the next
/// request goes on a fresh one, nobody blamed); but a request written to a pooled connection
/// that then closes may have reached the endpoint, and is never sent to it a second time.
#[test]
fn pooled_connections_never_carry_a_second_copy() {
    // An upstream that closes each connection a moment after answering (keep-alive advertised).
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for sock in l.incoming().take(4) {
            let Ok(mut sock) = sock else { return };
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            if sock.read(&mut buf).unwrap_or(0) > 0 {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (_h, proxy) = one_endpoint(&url, &[]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    std::thread::sleep(Duration::from_millis(300)); // the upstream has closed the pooled one
    assert_eq!(post_messages(proxy.addr).status, 200, "a fresh connection, nobody blamed");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 0);

    // A pooled connection that reads the request and closes without answering.
    let m = MockUpstream::start(ok());
    let (_h, proxy) = one_endpoint(&m.url(), &[]);
    assert_eq!(post_messages(proxy.addr).status, 200);
    m.set_mode(Mode::CloseBeforeHead);
    assert_eq!(post_messages(proxy.addr).status, 502);
    assert_eq!(m.hits(), 2, "the second request reached the endpoint once, and only once");
    // That was the keep-alive race on a reused connection: nobody blamed. A fresh connection
    // that does the same is the endpoint's fault.
    let s = proxy.status();
    assert_eq!(s["connections"]["pool_races"], 1, "{s}");
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{s}");
    assert_eq!(post_messages(proxy.addr).status, 502);
    let s = proxy.status();
    assert_eq!(s["connections"]["pool_races"], 1, "{s}");
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 1, "{s}");
}
