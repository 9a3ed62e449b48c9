//! Edges found by probing: file-size limits and full disks.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::mock::{ok, MockUpstream};
use crate::support::raw::one_endpoint;
use crate::support::*;

/// What `setrlimit` takes as its resource: glibc has its own type, the BSDs (macOS) an int.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// `cmd` runs with `resource` limited to (soft, hard).
fn limit(cmd: &mut std::process::Command, resource: Resource, soft: u64, hard: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
            if libc::setrlimit(resource, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Under a file-size limit (`LimitFSIZE=`, `ulimit -f`) a write past it is an error, not a
/// SIGXFSZ that kills the proxy and every client connection. A state file that cannot be written
/// is said once (and once when writing works again), and counted in `/_qcc/status`.
/// (Linux: the limit is lifted from outside with prlimit(2), which macOS does not have.)
#[cfg(target_os = "linux")]
#[test]
fn a_file_size_limit_neither_kills_the_proxy_nor_floods_the_log() {
    let a = MockUpstream::start(crate::support::mock::Mode::Status { status: 500, retry_after: None });
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    let mut cmd = home.qcc();
    cmd.args(["proxy", "start", "--host", "127.0.0.1", "--port", "0", "--cluster", "c", "--verify-interval", "1"])
        .stderr(Stdio::piped()); // a pipe: a file would be under the same limit
    limit(&mut cmd, libc::RLIMIT_FSIZE, 200, libc::RLIM_INFINITY); // the pid file fits, the queue file does not
    let mut proxy = Proxy::spawn(&home, cmd);
    let mut pipe = proxy.child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    // Every request logs a line: the log passes the limit at once; every probe round and
    // failure burst tries to write the queue file, which is larger than the limit.
    for _ in 0..50 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    let ok = wait_until(Duration::from_secs(10), || proxy.status()["state_files"]["failed_writes"].as_u64() >= Some(3));
    assert!(ok, "{}", proxy.status());
    let s = proxy.status();
    assert_eq!(s["state_files"]["failing"], true);
    assert_eq!(s["requests"]["successful"], 50);
    // Space comes back (the limit is lifted): the next write works and says so.
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: prlimit on our own child with a valid rlimit.
    let r = unsafe { libc::prlimit(proxy.child.id() as i32, libc::RLIMIT_FSIZE, &unlimited, std::ptr::null_mut()) };
    assert_eq!(r, 0, "prlimit");
    assert!(wait_until(Duration::from_secs(10), || proxy.status()["state_files"]["failing"] == false));
    assert_eq!(proxy.terminate().and_then(|s| s.code()), Some(0), "alive to the end, drains cleanly");
    let err = reader.join().expect("stderr reader");
    let warned = err.lines().filter(|l| l.contains("cannot write") && l.contains("failure_endpoints.json")).count();
    assert_eq!(warned, 1, "said once:\n{err}");
    assert_eq!(err.lines().filter(|l| l.contains("works again")).count(), 1, "{err}");
}

/// Start `qcc proxy start` with the given descriptor limits.
fn with_nofile(home: &TempHome, soft: u64, hard: u64, extra: &[&str]) -> Proxy {
    let mut cmd = home.qcc();
    cmd.args(["proxy", "start", "--host", "127.0.0.1", "--port", "0", "--cluster", "c"])
        .args(extra)
        .stderr(Stdio::null());
    limit(&mut cmd, libc::RLIMIT_NOFILE, soft, hard);
    Proxy::spawn(home, cmd)
}

fn soft_nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("nofile line");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).expect("soft limit")
}

/// qcc raises its soft descriptor limit to the hard one, and keeps `--max-connections` within
/// what the limit allows (saying so), so a full house never runs it out of descriptors.
#[test]
fn the_descriptor_limit_is_raised_and_respected() {
    let mock = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    let mut hard = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: reading our own limit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) };
    let hard = hard.rlim_max.min(1 << 20);
    if hard > 256 {
        let proxy = with_nofile(&home, 256, hard, &[]);
        assert_eq!(soft_nofile(proxy.child.id()), hard, "soft limit raised to the hard one");
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    let mut proxy = with_nofile(&home, 200, 200, &["--max-connections", "1024"]);
    assert!(
        wait_until(Duration::from_secs(5), || proxy.log().contains("serving at most 68 client connections")),
        "{}",
        proxy.log()
    );
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(proxy.terminate().and_then(|s| s.code()), Some(0));
}

/// Out of descriptors when connecting upstream (`EMFILE`) is qcc's own shortage: the client gets a
/// 503 saying so, and the endpoint is neither blamed nor queued. The limit is found by starting
/// qcc with fewer and fewer descriptors: the smallest limit it starts with leaves none for the
/// upstream connection once the client's is accepted.
#[test]
fn out_of_descriptors_is_a_503_and_blames_no_endpoint() {
    let mock = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &mock.url(), "sk-a-0000000000", 1)]);
    for n in 8..40u64 {
        let mut cmd = home.qcc();
        cmd.args(["proxy", "start", "--host", "127.0.0.1", "--port", "0", "--cluster", "c"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        limit(&mut cmd, libc::RLIMIT_NOFILE, n, n);
        let mut child = cmd.spawn().expect("spawn");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut addr = None;
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) > 0 {
            if let Some(a) = line.trim().strip_prefix("ANTHROPIC_BASE_URL=http://") {
                addr = a.parse::<std::net::SocketAddr>().ok();
                break;
            }
            line.clear();
        }
        let Some(addr) = addr else {
            let _ = child.wait();
            continue; // too few descriptors to start at all
        };
        let answer = Conn::try_connect(addr).ok().and_then(|mut c| {
            let _ = c.stream.set_read_timeout(Some(Duration::from_secs(2)));
            c.send_request("POST", "/v1/messages", &[("content-type", "application/json")], b"{}");
            c.try_response()
        });
        let Some(r) = answer else {
            let _ = child.kill();
            let _ = child.wait();
            continue; // not even the client's connection fitted
        };
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.text().contains("out of file descriptors"), "{}", r.text());
        assert_eq!(mock.hits(), 0);
        // The 503 closed that connection, so the status request fits.
        let mut status = None;
        wait_until(Duration::from_secs(5), || {
            status = Conn::try_connect(addr).ok().and_then(|mut c| {
                let _ = c.stream.set_read_timeout(Some(Duration::from_secs(2)));
                c.send_request("GET", "/_qcc/status", &[], b"");
                c.try_response()
            });
            status.is_some()
        });
        let _ = child.kill();
        let _ = child.wait();
        let s = status.expect("status").json();
        assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{s}");
        assert_eq!(s["endpoints"][0]["health"]["failed_requests"], 0, "{s}");
        return;
    }
    panic!("no descriptor limit between 8 and 40 gave the upstream connect an EMFILE");
}

/// A connect that fails moves on to the endpoint's next resolved address within the same
/// attempt: one unreachable A record does not pin the endpoint as failed. The name is given two
/// loopback addresses in a private mount namespace (`unshare -m`, a bind-mounted /etc/hosts);
/// the upstream listens on the one the resolver returns second.
#[test]
fn a_failed_connect_tries_the_next_address() {
    let probe = std::process::Command::new("unshare").args(["-m", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: this machine cannot make a mount namespace (unshare -m)");
        return;
    }
    let home = TempHome::new();
    let hosts = home.path("hosts");
    let system = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    // (127.0.0.2 and .3: no other test listens there, so the refusing address refuses.)
    std::fs::write(&hosts, format!("127.0.0.2 twoaddr.qcc.test\n127.0.0.3 twoaddr.qcc.test\n{system}")).expect("hosts");
    let port = (0..50)
        .find_map(|_| {
            let a = std::net::TcpListener::bind("127.0.0.2:0").ok()?;
            let port = a.local_addr().ok()?.port();
            std::net::TcpListener::bind(("127.0.0.3", port)).ok().map(|_| port)
        })
        .expect("a port free on 127.0.0.2 and 127.0.0.3");
    home.write_cluster("c", &[Ep::new("a0000001", &format!("http://twoaddr.qcc.test:{port}"), "sk-a-0000000000", 1)]);
    let script = format!(
        "mount --bind {} /etc/hosts && getent ahostsv4 twoaddr.qcc.test | awk '$2==\"STREAM\"{{print \"ADDR \" $1}}' && exec \"$0\" \"$@\"",
        hosts.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script, env!("CARGO_BIN_EXE_qcc"), "proxy", "start", "--port", "0", "--cluster", "c"])
        .env("QCC_HOME", home.home())
        .env("QCC_CONFIG", home.config())
        .env("HOME", &home.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let (mut order, mut addr) = (Vec::new(), None);
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) > 0 {
        if let Some(a) = line.trim().strip_prefix("ADDR ") {
            order.push(a.to_string());
        } else if let Some(a) = line.trim().strip_prefix("ANTHROPIC_BASE_URL=http://") {
            addr = a.parse::<std::net::SocketAddr>().ok();
            break;
        }
        line.clear();
    }
    let addr = addr.expect("proxy started");
    assert_eq!(order.len(), 2, "{order:?}");
    // The upstream answers on the second address only; the first refuses.
    let live = std::net::TcpListener::bind((order[1].as_str(), port)).expect("bind the second address");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Ok((mut sock, _)) = live.accept() else { return };
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf);
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    let r = post_messages(addr);
    let s = request(addr, "GET", "/_qcc/status", &[], b"").json();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(s["failure_queue"]["stats"]["total_failed"], 0, "{s}");
    assert_eq!(s["requests"]["retries"], 0, "within one attempt: {s}");
    let _ = server.join();
}

/// a FIFO where the config should be does not freeze the proxy on SIGHUP.
#[test]
fn a_fifo_in_place_of_the_config_does_not_freeze_the_proxy() {
    let m = MockUpstream::start(ok());
    let (home, proxy) = one_endpoint(&m.url(), &[]);
    std::fs::remove_file(home.config()).expect("rm config");
    let c = std::ffi::CString::new(home.config().as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo on the test's own path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    proxy.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post_messages(proxy.addr).status, 200, "still serving on the old cluster");
    assert!(wait_until(Duration::from_secs(5), || proxy.log().contains("not a regular file")), "{}", proxy.log());
}
