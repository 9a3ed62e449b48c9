//! Restarts and reloads that lose nothing: socket activation (the listening socket outlives the
//! process, as with a systemd `.socket` unit), drain, and SIGHUP with a broken config.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::*;

/// `qcc proxy start` as systemd starts it for a `.socket` unit: the listening socket as fd 3,
/// `LISTEN_FDS=1`, `LISTEN_PID` = the qcc process (the shell `exec`s qcc, keeping its pid).
fn activated(home: &TempHome, listener: &TcpListener, args: &[&str]) -> Command {
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_qcc"))
        .args(["proxy", "start"])
        .args(args)
        .env("QCC_HOME", home.home())
        .env("QCC_CONFIG", home.config())
        .env("HOME", &home.root)
        .env_remove("QCC_ACCESS_KEY")
        .stderr(Stdio::null());
    // SAFETY: dup2 and fcntl are async-signal-safe; only they run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Requests on new connections, one after another, until told to stop (bounded by count and
/// time); counts what did not get a 200.
fn client_loop(addr: SocketAddr, stop: Arc<AtomicBool>, ok: Arc<AtomicUsize>, bad: Arc<AtomicUsize>) {
    let started = Instant::now();
    for _ in 0..20_000 {
        if stop.load(Ordering::SeqCst) || started.elapsed() > Duration::from_secs(60) {
            return;
        }
        let served = Conn::try_connect(addr).ok().and_then(|mut c| {
            c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], b"{}");
            c.try_response()
        });
        match served {
            Some(r) if r.status == 200 => ok.fetch_add(1, Ordering::SeqCst),
            _ => bad.fetch_add(1, Ordering::SeqCst),
        };
    }
}

/// A client loop runs while a socket-activated qcc is stopped and started again: no connection
/// is refused and no request fails; an SSE stream in flight completes across SIGHUP and across
/// the stop (drain).
#[test]
fn a_restart_with_socket_activation_loses_no_request() {
    let events: Vec<String> = (0..8).map(|i| format!("event: ping\ndata: {{\"n\":{i}}}\n\n")).collect();
    let mock = MockUpstream::start(Mode::ByPath {
        routes: vec![("/v1/stream".into(), Mode::Sse { events: events.clone(), delay: Duration::from_millis(150) })],
        other: Box::new(ok()),
    });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut first = Proxy::spawn(&home, activated(&home, &listener, &["--cluster", "c"]));
    assert_eq!(first.addr, addr, "qcc listens on the socket it was given");

    let (stop, ok, bad) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let looper = {
        let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
        std::thread::spawn(move || client_loop(addr, stop, ok, bad))
    };
    let stream = std::thread::spawn(move || {
        let mut c = Conn::connect(addr);
        c.request("POST", "/v1/stream", &[("content-type", "application/json")], b"{}")
    });
    assert!(wait_until(Duration::from_secs(5), || mock.requests().iter().any(|r| r.path == "/v1/stream")));
    first.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || first.log().contains("reloaded cluster")));
    // Stop: the stream drains; meanwhile new connections wait in the kernel's queue.
    let served_before = ok.load(Ordering::SeqCst);
    assert_eq!(first.terminate().and_then(|s| s.code()), Some(0));
    let second = Proxy::spawn(&home, activated(&home, &listener, &["--cluster", "c"]));
    assert_eq!(second.addr, addr);
    let resumed = wait_until(Duration::from_secs(10), || ok.load(Ordering::SeqCst) > served_before + 50);
    stop.store(true, Ordering::SeqCst);
    looper.join().expect("client loop");
    assert!(resumed, "requests flow through the new process");
    assert_eq!(
        bad.load(Ordering::SeqCst),
        0,
        "no refused connection, no failed request ({} ok)",
        ok.load(Ordering::SeqCst)
    );
    let r = stream.join().expect("stream");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), events.concat(), "the stream completed across SIGHUP and the drain");
    drop(second);
}

/// SIGHUP while the config is half-written or corrupt: the old cluster keeps serving, one log
/// line names the file and the problem, and the next good version applies on the next reload.
#[test]
fn a_reload_of_a_broken_config_keeps_the_running_one() {
    let a = MockUpstream::start(ok());
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let good = std::fs::read(home.config()).expect("config");
    std::fs::write(home.config(), &good[..good.len() / 2]).expect("half-written config");
    proxy.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("reload failed")));
    let line = proxy.log().lines().find(|l| l.contains("reload failed")).map(str::to_string).unwrap_or_default();
    assert!(line.contains("cache.json") && line.contains("invalid JSON"), "{line}");
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(a.hits(), 1, "the old cluster serves");
    home.write_cluster("c", &[Ep::new("b0000001", &b.url(), "sk-b-0000000000", 1)]);
    proxy.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("reloaded cluster")));
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!((a.hits(), b.hits()), (1, 1), "the next good version applies");
    assert_eq!(proxy.log().matches("reload failed").count(), 1);
}

/// A stop that comes between a client's connect and its request still serves that request (the
/// connection has left the listening socket, so no other process could), while an idle
/// keep-alive connection is closed at once.
#[test]
fn a_stop_between_connect_and_request_still_serves_it() {
    let mock = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let mut proxy = Proxy::start(&home, &["--cluster", "c"]);
    let mut idle = Conn::connect(proxy.addr);
    assert_eq!(idle.request("POST", "/v1/messages", &[("content-type", "application/json")], b"{}").status, 200);
    let mut fresh = Conn::connect(proxy.addr);
    // Both connections accepted (the status request is the third client), then the stop.
    assert!(wait_until(Duration::from_secs(5), || proxy.status()["connections"]["clients"] == 3));
    proxy.signal(libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("stopping")));
    let (rest, closed) = idle.try_read_to_close();
    assert!(closed && rest.is_empty(), "the idle keep-alive connection closes at once");
    fresh.send_request("POST", "/v1/messages", &[("content-type", "application/json")], b"{}");
    let r = fresh.try_response().expect("the request sent after the stop is answered");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(proxy.terminate().and_then(|s| s.code()), Some(0));
    assert_eq!(mock.hits(), 2);
}
