//! Deterministic mock upstreams: std-thread HTTP/1.1 servers on 127.0.0.1 with explicit modes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The usual healthy upstream: 200 with the fixed Messages reply.
pub fn ok() -> Mode {
    Mode::Json { status: 200, body: OK_BODY.into() }
}

#[derive(Clone, Debug)]
pub enum Mode {
    /// Fixed reply with Content-Length.
    Json { status: u16, body: String },
    /// A 200 JSON reply with extra header lines.
    JsonWith { headers: Vec<String>, body: String },
    /// 200, the request body echoed back byte-exact.
    Echo,
    /// 200 text/event-stream, chunked, one event per chunk, `delay` between events.
    Sse { events: Vec<String>, delay: Duration },
    /// Status with an Anthropic-shaped error body, optional Retry-After.
    Status { status: u16, retry_after: Option<u64> },
    /// Read the request, then close without answering.
    CloseBeforeHead,
    /// A head promising `total` bytes, `send` of them, then close.
    ResetMidBody { total: usize, send: usize },
    /// A chunked SSE reply that stops after the first event and closes (no last chunk).
    TruncatedChunked,
    /// Not HTTP at all.
    Garbage,
    /// Accept and read, never answer (until the mock is dropped).
    Hang,
    /// The usual 200 to the first request on each connection; the second is read whole and the
    /// connection closed cleanly without an answer (a keep-alive timer firing as it arrived).
    OneAnswerPerConnection,
    /// 200 JSON `body`, gzip-encoded when the request's `accept-encoding` allows gzip (as a
    /// compressing relay or CDN answers), plain otherwise.
    GzipIfAsked { body: String },
    /// Answer with `HTTP/1.1 100 Continue` without end (as fast as the socket takes it, until
    /// the peer goes, the mock is dropped, or 30 s).
    Continues,
    /// A 200 head promising 100 bytes, then silence (socket kept open).
    HeadNoBody,
    /// Wait, then a 200 JSON reply.
    Slow { delay: Duration },
    /// 200 with no length: the body runs until the mock closes.
    UntilClose { body: Vec<u8> },
    /// 200 with a Content-Length body of `size` bytes (a counter pattern), written as fast as
    /// the socket takes it.
    Big { size: usize },
    /// 200 text/event-stream, chunked; event `i` is sent only once `released` > i (the test
    /// releases them), so ordering can be asserted without timing.
    SseGated { events: Vec<String>, released: Arc<AtomicUsize> },
    /// A chunked SSE reply with `events` (one chunk each), then the connection dies (no last chunk).
    SseThenDie { events: Vec<String> },
    /// The whole `stream` as one chunked SSE reply cut in two chunks at a byte offset that moves
    /// one byte on per request (`next`), each chunk its own write, so every event is split at every
    /// offset across reads and chunk boundaries over as many requests.
    SseSplit { stream: String, next: Arc<AtomicUsize> },
    /// The mode of the first path prefix that matches, else `other`.
    ByPath { routes: Vec<(String, Mode)>, other: Box<Mode> },
    /// A strict "Anthropic-compatible" vendor: a top-level field not in `fields`, an
    /// `anthropic-beta` value not in `betas` or a `thinking.type` not in `thinking` is refused
    /// with a 400 that names it, worded as such vendors word it (`refusal`); count_tokens is a
    /// 404; anything else the usual 200.
    Strict { fields: Vec<String>, betas: Vec<String>, thinking: Vec<String> },
}

/// What a strict vendor (`Mode::Strict`) refuses in a request, in its own words.
pub fn refusal(
    body: &[u8],
    beta_header: Option<&str>,
    fields: &[String],
    betas: &[String],
    thinking: &[String],
) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    if let Some(extra) = obj.keys().find(|k| !fields.contains(k)) {
        return Some(format!("{extra}: Extra inputs are not permitted"));
    }
    let sent: Vec<&str> = beta_header.unwrap_or("").split(',').map(str::trim).filter(|b| !b.is_empty()).collect();
    let unknown: Vec<&str> = sent.into_iter().filter(|b| !betas.iter().any(|a| a == b)).collect();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|b| format!("`{b}`")).collect();
        return Some(format!("Unexpected value(s) {} for the `anthropic-beta` header", list.join(", ")));
    }
    match obj.get("thinking").and_then(|t| t["type"].as_str()) {
        Some(t) if !thinking.iter().any(|a| a == t) => {
            Some(format!("`thinking.type` must be {}", thinking.join(" or ")))
        }
        _ => None,
    }
}

/// Requests a mock remembers, at most (the oldest half goes when full).
const MAX_RECORDED: usize = 20_000;

pub struct Recorded {
    /// The head exactly as received: request line, header lines, blank line.
    pub raw_head: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct Shared {
    mode: Mutex<Mode>,
    hits: AtomicUsize,
    connections: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
    stop: AtomicBool,
}

pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

pub const OK_BODY: &str =
    r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}]}"#;

impl MockUpstream {
    pub fn start(mode: Mode) -> MockUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let addr = listener.local_addr().expect("mock addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            hits: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        s.connections.fetch_add(1, Ordering::SeqCst);
                        let s = s.clone();
                        thread::spawn(move || serve(sock, s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        MockUpstream { addr, shared }
    }

    /// A port that refuses connections (bound once, then released).
    pub fn refused_url() -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        format!("http://127.0.0.1:{port}")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode lock") = mode;
    }
    pub fn requests(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        self.shared.requests.lock().expect("requests lock")
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// One request from `r` (head, then its Content-Length or chunked body); `None` at EOF or on
/// anything malformed. Raw upstreams in the tests answer with what they like after it.
pub fn read_request(r: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut raw_head = line.clone();
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        raw_head.push_str(&h);
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Recorded { raw_head, method, path, headers, body })
}

fn serve(sock: TcpStream, s: Arc<Shared>) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = sock.set_nodelay(true);
    let Ok(mut w) = sock.try_clone() else { return };
    let mut r = BufReader::new(sock);
    let mut on_connection = 0;
    while let Some(req) = read_request(&mut r) {
        on_connection += 1;
        s.hits.fetch_add(1, Ordering::SeqCst);
        let body = req.body.clone();
        let req_path = req.path.clone();
        let gzip_ok = req.header("accept-encoding").is_some_and(|v| v.contains("gzip"));
        let beta_header = req.header("anthropic-beta").map(str::to_string);
        {
            // The newest requests only: a soak sends millions, and its own process must not grow.
            let mut seen = s.requests.lock().expect("requests lock");
            if seen.len() >= MAX_RECORDED {
                seen.drain(..MAX_RECORDED / 2);
            }
            seen.push(req);
        }
        let mut mode = s.mode.lock().expect("mode lock").clone();
        while let Mode::ByPath { routes, other } = mode {
            mode = routes.into_iter().find(|(p, _)| req_path.starts_with(p.as_str())).map_or(*other, |(_, m)| m);
        }
        let keep = match mode {
            Mode::Json { status, body } => reply(&mut w, status, "application/json", body.as_bytes(), &[]),
            Mode::Echo => reply(&mut w, 200, "application/octet-stream", &body, &[]),
            Mode::Strict { .. } if req_path.starts_with("/v1/messages/count_tokens") => {
                reply(&mut w, 404, "application/json", br#"{"error":{"message":"Not Found"}}"#, &[])
            }
            Mode::Strict { fields, betas, thinking } => {
                match refusal(&body, beta_header.as_deref(), &fields, &betas, &thinking) {
                    Some(msg) => {
                        let e = serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}});
                        reply(&mut w, 400, "application/json", e.to_string().as_bytes(), &[])
                    }
                    None => reply(&mut w, 200, "application/json", OK_BODY.as_bytes(), &[]),
                }
            }
            Mode::JsonWith { headers, body } => reply(&mut w, 200, "application/json", body.as_bytes(), &headers),
            Mode::Status { status, retry_after } => {
                let msg = format!(r#"{{"type":"error","error":{{"type":"api_error","message":"mock {status}"}}}}"#);
                let extra: Vec<String> = retry_after.map(|s| format!("retry-after: {s}")).into_iter().collect();
                reply(&mut w, status, "application/json", msg.as_bytes(), &extra)
            }
            Mode::Slow { delay } => {
                thread::sleep(delay);
                reply(&mut w, 200, "application/json", OK_BODY.as_bytes(), &[])
            }
            Mode::Sse { events, delay } => {
                let _ = w.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                for (i, e) in events.iter().enumerate() {
                    if i > 0 {
                        thread::sleep(delay);
                    }
                    if w.write_all(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes()).is_err() {
                        return;
                    }
                }
                w.write_all(b"0\r\n\r\n").is_ok()
            }
            Mode::SseGated { events, released } => {
                let _ = w.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                for (i, e) in events.iter().enumerate() {
                    let deadline = std::time::Instant::now() + Duration::from_secs(20);
                    while released.load(Ordering::SeqCst) <= i && std::time::Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(1));
                    }
                    if w.write_all(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes()).is_err() {
                        return;
                    }
                }
                w.write_all(b"0\r\n\r\n").is_ok()
            }
            Mode::SseThenDie { events } => {
                let _ = w.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                for e in &events {
                    let _ = w.write_all(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
                }
                thread::sleep(Duration::from_millis(50));
                false
            }
            Mode::SseSplit { stream, next } => {
                let at = next.fetch_add(1, Ordering::SeqCst) % (stream.len() + 1);
                let _ = w.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                for part in [&stream.as_bytes()[..at], &stream.as_bytes()[at..]] {
                    if !part.is_empty() {
                        let mut chunk = format!("{:x}\r\n", part.len()).into_bytes();
                        chunk.extend_from_slice(part);
                        chunk.extend_from_slice(b"\r\n");
                        // The chunk itself in two writes as well: a read may end anywhere.
                        let mid = chunk.len() / 2;
                        let _ = w.write_all(&chunk[..mid]);
                        let _ = w.flush();
                        thread::sleep(Duration::from_micros(300));
                        let _ = w.write_all(&chunk[mid..]);
                        let _ = w.flush();
                        thread::sleep(Duration::from_micros(300));
                    }
                }
                w.write_all(b"0\r\n\r\n").is_ok()
            }
            Mode::TruncatedChunked => {
                let e = "event: message_start\ndata: {}\n\n";
                let _ = w.write_all(
                    format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{e}\r\n", e.len())
                        .as_bytes(),
                );
                thread::sleep(Duration::from_millis(50));
                false
            }
            Mode::ResetMidBody { total, send } => {
                let _ = w.write_all(
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {total}\r\n\r\n")
                        .as_bytes(),
                );
                let _ = w.write_all(&vec![b'x'; send]);
                thread::sleep(Duration::from_millis(50));
                false
            }
            Mode::UntilClose { body } => {
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n");
                let _ = w.write_all(&body);
                false
            }
            Mode::Big { size } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {size}\r\n\r\n"
                );
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if w.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
                true
            }
            Mode::CloseBeforeHead | Mode::ByPath { .. } => false, // ByPath was resolved above
            Mode::Garbage => {
                let _ = w.write_all(b"NOT HTTP AT ALL\r\n\r\n");
                false
            }
            Mode::HeadNoBody => {
                let _ =
                    w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n");
                while !s.stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                false
            }
            Mode::GzipIfAsked { body } if gzip_ok => {
                reply(&mut w, 200, "application/json", &gzip(body.as_bytes()), &["content-encoding: gzip".into()])
            }
            Mode::GzipIfAsked { body } => reply(&mut w, 200, "application/json", body.as_bytes(), &[]),
            Mode::OneAnswerPerConnection if on_connection == 1 => {
                reply(&mut w, 200, "application/json", OK_BODY.as_bytes(), &[])
            }
            Mode::OneAnswerPerConnection => false,
            Mode::Continues => {
                let flood = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(2048);
                let until = std::time::Instant::now() + Duration::from_secs(30);
                while !s.stop.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                    if w.write_all(&flood).is_err() {
                        break;
                    }
                }
                false
            }
            Mode::Hang => {
                while !s.stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                false
            }
        };
        if !keep {
            return;
        }
    }
}

fn reply(w: &mut TcpStream, status: u16, ctype: &str, body: &[u8], extra: &[String]) -> bool {
    let mut head = format!("HTTP/1.1 {status} Mock\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n", body.len());
    for e in extra {
        head.push_str(e);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).is_ok() && w.write_all(body).is_ok()
}

/// `data` as a gzip member of stored (uncompressed) deflate blocks: what `gzip -d` and every
/// HTTP client decode, made without a compression crate.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let len = block.len() as u16;
        out.push(u8::from(blocks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let crc = data.iter().fold(!0u32, |mut c, &b| {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
        }
        c
    });
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}
