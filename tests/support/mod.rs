//! Shared test helpers: temp state dirs, running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop. Holds `home/` ($QCC_HOME)
/// and `cache.json` ($QCC_CONFIG) for one test.
pub struct TempHome {
    pub root: PathBuf,
}

impl TempHome {
    pub fn new() -> TempHome {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root =
            std::env::temp_dir().join(format!("qcc-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create temp dir");
        TempHome { root }
    }
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("cache.json")
    }
    /// A `qcc` command with QCC_HOME and QCC_CONFIG pointing into this dir.
    pub fn qcc(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qcc"));
        cmd.env("QCC_HOME", self.home())
            .env("QCC_CONFIG", self.config())
            .env("HOME", &self.root)
            .env_remove("QCC_ACCESS_KEY")
            .env_remove("CLAUDE_CONFIG_DIR");
        cmd
    }
    /// Run `qcc args...` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.qcc().args(args).output().expect("run qcc")
    }
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        // A proxy a test started in the background ends with the test.
        if self.home().join("proxy.pid").exists() {
            let _ = self.qcc().args(["proxy", "stop", "--timeout", "10"]).output();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub mod mock;
pub mod raw;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Poll `cond` until it holds or `within` passes; returns whether it held.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// One endpoint of a cluster written into the test's config file.
pub struct Ep<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub key: &'a str,
    pub priority: u32,
    /// Extra fields merged into the endpoint object (max_failures, timeout, ca_file...).
    pub extra: serde_json::Value,
}

impl<'a> Ep<'a> {
    pub fn new(id: &'a str, url: &'a str, key: &'a str, priority: u32) -> Ep<'a> {
        Ep { id, url, key, priority, extra: serde_json::json!({}) }
    }
    pub fn with(mut self, extra: serde_json::Value) -> Ep<'a> {
        self.extra = extra;
        self
    }
}

impl TempHome {
    /// Write a Python-shaped config with one cluster profile.
    pub fn write_cluster(&self, name: &str, eps: &[Ep]) {
        let endpoints: Vec<serde_json::Value> = eps
            .iter()
            .map(|e| {
                let mut v = serde_json::json!({"id": e.id, "base_url": e.url, "api_key": e.key, "weight": 100,
                    "priority": e.priority, "enabled": true, "max_failures": 3, "timeout": 30});
                if let (Some(o), Some(x)) = (v.as_object_mut(), e.extra.as_object()) {
                    for (k, val) in x {
                        o.insert(k.clone(), val.clone());
                    }
                }
                v
            })
            .collect();
        let cfg = serde_json::json!({"profiles": {name: {"name": name, "endpoints": endpoints}}});
        std::fs::write(self.config(), serde_json::to_vec_pretty(&cfg).expect("json")).expect("write config");
    }

    /// Cluster "c": endpoint a0000001 at `a` (priority 1) and b0000001 at `b` (priority 2).
    pub fn write_pair(&self, a: &str, b: &str) {
        self.write_cluster(
            "c",
            &[Ep::new("a0000001", a, "sk-a-0000000000", 1), Ep::new("b0000001", b, "sk-b-0000000000", 2)],
        );
    }

    /// Cluster "c" made as a user makes it, with `qcc endpoint add`: endpoint "a" at `a`
    /// (priority 1) and "b" at `b` (priority 2).
    pub fn add_named_pair(&self, a: &str, b: &str) {
        for (name, url, key, priority) in [("a", a, "sk-a-0000000000", "1"), ("b", b, "sk-b-0000000000", "2")] {
            let out =
                self.run(&["endpoint", "add", "c", "--url", url, "--key", key, "--name", name, "--priority", priority]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
}

/// A running `qcc proxy start`, killed on drop.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub home: PathBuf,
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proxy {
    /// Start on 127.0.0.1 with a free port; waits (bounded) for the ANTHROPIC_BASE_URL line.
    pub fn start(home: &TempHome, args: &[&str]) -> Proxy {
        let mut cmd = home.qcc();
        cmd.args(["proxy", "start", "--host", "127.0.0.1", "--port", "0"]).args(args).stderr(Stdio::null());
        Proxy::spawn(home, cmd)
    }

    /// Start a prepared `qcc proxy start` command (stdout is taken for the address line).
    pub fn spawn(home: &TempHome, mut cmd: Command) -> Proxy {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn qcc proxy start");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("ANTHROPIC_BASE_URL=http://") {
                    let _ = tx.send(url.to_string());
                }
                keep.lock().expect("lines").push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(a) => a.parse().expect("proxy address"),
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(home.home().join("proxy.log")).unwrap_or_default();
                panic!("proxy did not start; stdout {:?}; log:\n{log}", lines.lock().expect("lines"));
            }
        };
        Proxy { child, addr, home: home.home(), stdout: lines }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn status(&self) -> serde_json::Value {
        let r = request(self.addr, "GET", "/_qcc/status", &[], b"");
        assert_eq!(r.status, 200, "status endpoint: {}", r.text());
        serde_json::from_slice(&r.body).expect("status JSON")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("proxy.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response as the test client saw it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A blocking HTTP/1.1 client connection with read timeouts (a broken proxy fails the test,
/// it does not hang it).
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connect, or the error (a refused connection is what some tests count).
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::new() })
    }

    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to proxy");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn { stream, buf: Vec::new() }
    }

    /// Drop the bytes read past the last parsed head (body bytes read with it); their count.
    pub fn take_buffered(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        n
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    pub fn send_request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let host = self.stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n");
        let mut has_len = false;
        for (n, v) in headers {
            has_len |= n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding");
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if !has_len && (!body.is_empty() || method == "POST") {
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
    }

    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.send_request(method, path, headers, body);
        self.read_response()
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) => panic!("read from proxy: {e}"),
        }
    }

    /// Read until `pat` is in the buffer; returns everything up to and including it.
    pub fn read_until(&mut self, pat: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(pat.len()).position(|w| w == pat) {
                return self.buf.drain(..i + pat.len()).collect();
            }
            if self.fill() == 0 {
                panic!("connection closed before {:?}", String::from_utf8_lossy(pat));
            }
        }
    }

    /// Read bytes until the peer closes (or the read times out: a panic).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill() > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Try to read; Ok(bytes) or the error kind (used to see a close or reset).
    pub fn try_read_to_close(&mut self) -> (Vec<u8>, bool) {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return (std::mem::take(&mut self.buf), true),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return (std::mem::take(&mut self.buf), true)
                }
                Err(_) => return (std::mem::take(&mut self.buf), false),
            }
        }
    }

    pub fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        loop {
            let head = self.read_until(b"\r\n\r\n");
            let text = String::from_utf8_lossy(&head).into_owned();
            let mut lines = text.split("\r\n");
            let status: u16 =
                lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
            if status == 100 {
                continue;
            }
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            return (status, headers);
        }
    }

    pub fn read_response(&mut self) -> Response {
        let (status, headers) = self.read_head();
        let get = |n: &str| {
            headers.iter().find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone())
        };
        let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line = self.read_until(b"\r\n");
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&line).trim().split(';').next().unwrap_or(""), 16)
                        .expect("chunk size");
                if size == 0 {
                    self.read_until(b"\r\n");
                    break;
                }
                while self.buf.len() < size + 2 {
                    assert!(self.fill() > 0, "closed mid-chunk");
                }
                body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
            }
            body
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while self.buf.len() < n {
                assert!(self.fill() > 0, "closed with {} of {n} body bytes", self.buf.len());
            }
            self.buf.drain(..n).collect()
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            self.read_to_close()
        };
        Response { status, headers, body }
    }
}

impl Conn {
    /// Like `read_response`, but `None` when the connection closes before the response is
    /// complete (an upstream failure mid-body), instead of a panic.
    pub fn try_response(&mut self) -> Option<Response> {
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let chunked = head.contains("transfer-encoding: chunked");
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
                let complete = if chunked {
                    self.buf[end + 4..].windows(5).any(|w| w == b"0\r\n\r\n")
                } else {
                    self.buf.len() >= end + 4 + len.unwrap_or(0)
                };
                if complete {
                    return Some(self.read_response());
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    Conn::connect(addr).request(method, path, headers, body)
}

/// A Messages API POST with a small JSON body.
pub fn post_messages(addr: SocketAddr) -> Response {
    request(
        addr,
        "POST",
        "/v1/messages",
        &[("content-type", "application/json"), ("x-api-key", "client-key")],
        br#"{"model":"m","max_tokens":8,"messages":[]}"#,
    )
}

impl Conn {
    /// Read until the peer closes or a complete head with its Content-Length body is there.
    pub fn try_read_to_close_or_response(&mut self) -> (Vec<u8>, bool) {
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()))
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    return (std::mem::take(&mut self.buf), false);
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return (std::mem::take(&mut self.buf), true),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return (std::mem::take(&mut self.buf), true),
            }
        }
    }
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Resident memory of a process, KiB (`VmRSS`; `VmHWM` with `peak`).
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}
