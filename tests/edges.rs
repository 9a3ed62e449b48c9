//! Edges found by probing: file-size limits and full disks.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode, OK_BODY};
use crate::support::*;

/// Under a file-size limit (`LimitFSIZE=`, `ulimit -f`) a write past it is an error, not a
/// SIGXFSZ that kills the proxy and every client connection. A state file that cannot be written
/// is said once (and once when writing works again), and counted in `/_qcc/status`.
#[test]
fn a_file_size_limit_neither_kills_the_proxy_nor_floods_the_log() {
    let a = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let b = MockUpstream::start(Mode::Json { status: 200, body: OK_BODY.into() });
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1), Ep::new("b0000001", &b.url(), "sk-b-0000000000", 2)],
    );
    let mut cmd = home.qcc();
    cmd.args(["proxy", "start", "--host", "127.0.0.1", "--port", "0", "--cluster", "c", "--verify-interval", "1"])
        .stderr(Stdio::piped()); // a pipe: a file would be under the same limit
                                 // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 100, rlim_max: libc::RLIM_INFINITY };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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
    let mock = MockUpstream::start(Mode::Json { status: 200, body: OK_BODY.into() });
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
