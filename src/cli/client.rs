//! The CLI's one blocking HTTP/1.1 client: for the control calls to the running proxy
//! (`control.rs`) and for `health test`'s probes (`probe.rs`). One request per connection
//! (`Connection: close`), plain or TLS (rustls, the proxy's trust settings), every step bounded
//! by a timeout; the response head is read by `http::HeadReader` (interim responses bounded) and the body read as
//! its framing says (`http::BodyTracker`), up to a limit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use crate::http::BodyTracker;

/// Whether something accepts a TCP connection at `url`'s host and port (within a second).
pub fn answers(url: &str) -> bool {
    let Ok(u) = crate::store::url::BaseUrl::parse(url.trim_end_matches('/')) else { return false };
    let Ok(mut addrs) = (u.host.as_str(), u.port).to_socket_addrs() else { return false };
    addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// A response as the CLI reads it.
pub struct Reply {
    pub status: u16,
    /// The body, de-chunked, at most the limit given.
    pub body: Vec<u8>,
}

impl Reply {
    /// The message of an Anthropic-shaped error body (`{"error": {"message": ...}}`).
    pub fn error_message(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.pointer("/error/message").and_then(serde_json::Value::as_str).map(str::to_string)
    }
}

/// Where to send a request.
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    /// TLS with this configuration (the name checked is `host`); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
}

/// Send `request` (a complete HTTP/1.1 request, `Connection: close`) and read the reply, its
/// body cut at `max_body` bytes. The error says which step failed.
pub fn send(target: &Target, request: &[u8], max_body: usize) -> Result<Reply, String> {
    let addr = resolve(target.host, target.port)?;
    let sock = TcpStream::connect_timeout(&addr, target.timeout).map_err(|e| format!("connect: {e}"))?;
    sock.set_read_timeout(Some(target.timeout)).map_err(|e| format!("connect: {e}"))?;
    sock.set_write_timeout(Some(target.timeout)).map_err(|e| format!("connect: {e}"))?;
    match &target.tls {
        None => exchange(sock, request, max_body),
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(target.host.to_string())
                .map_err(|e| format!("TLS name: {e}"))?;
            let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| format!("TLS: {e}"))?;
            exchange(rustls::StreamOwned::new(conn, sock), request, max_body)
        }
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    match (host, port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(format!("no address for {host}")),
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

fn exchange(mut s: impl Read + Write, request: &[u8], max_body: usize) -> Result<Reply, String> {
    s.write_all(request).and_then(|()| s.flush()).map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut reader = crate::http::HeadReader::default();
    let head = loop {
        match reader.take(&mut buf, false) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => return Err(format!("bad response: {e}")),
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("closed before a response".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("no response: {e}")),
        }
    };
    let mut rest = buf;
    let mut tracker = BodyTracker::new(head.framing);
    let mut body = Vec::new();
    loop {
        let used = tracker.advance_into(&rest, &mut body).map_err(|e| format!("bad response body: {e:?}"))?;
        rest.drain(..used);
        if tracker.is_done() || body.len() >= max_body {
            body.truncate(max_body);
            return Ok(Reply { status: head.status, body });
        }
        match s.read(&mut chunk) {
            Ok(0) if matches!(tracker, BodyTracker::UntilClose) => return Ok(Reply { status: head.status, body }),
            // A TLS peer that closes without close_notify ends an until-close body too.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && matches!(tracker, BodyTracker::UntilClose) => {
                return Ok(Reply { status: head.status, body })
            }
            Ok(0) => return Err("closed in the middle of the response".into()),
            Ok(n) => rest.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading the response: {e}")),
        }
    }
}
