//! Test upstreams and clients made by hand, for the cases the mock's modes do not cover: a
//! raw upstream that answers each request with given bytes, a one-endpoint proxy, a client
//! with a small receive window, a process's CPU time.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::mock::read_request;
use super::{Ep, Proxy, TempHome};

/// A raw upstream on 127.0.0.1: reads each request (head + Content-Length body) and answers with
/// `reply(n)` for the n-th request overall; `close_after` closes the connection after each reply.
pub fn raw_upstream(
    close_after: bool,
    reply: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for sock in l.incoming().take(500) {
            let Ok(mut sock) = sock else { return };
            let (seen, reply) = (seen.clone(), reply.clone());
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(20)));
                let Ok(read_half) = sock.try_clone() else { return };
                let mut r = BufReader::new(read_half);
                while read_request(&mut r).is_some() {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    if sock.write_all(&reply(n)).is_err() || close_after {
                        return;
                    }
                }
            });
        }
    });
    (url, hits)
}

pub fn json_reply(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

pub fn one_endpoint(url: &str, args: &[&str]) -> (TempHome, Proxy) {
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", url, "sk-a-0000000000", 1)]);
    let mut all = vec!["--cluster", "c", "--verify-interval", "3600"];
    all.extend_from_slice(args);
    let proxy = Proxy::start(&home, &all);
    (home, proxy)
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime, in ticks of 1/100 s); after the ")" they are the 12th
    // and 13th.
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    ticks as f64 / 100.0
}

/// A loopback connection whose receive buffer is made small before it connects.
pub fn small_window_connect(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(v4) = addr else { panic!("IPv4 loopback expected") };
    // SAFETY: a fresh socket, a correctly sized sockaddr_in, and a descriptor handed to
    // TcpStream only once connected.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = v4.port().to_be();
        sa.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) };
        let r = libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect");
        std::net::TcpStream::from_raw_fd(fd)
    }
}
