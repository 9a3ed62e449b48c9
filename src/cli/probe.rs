//! `qcc health test`: one real probe request per endpoint (the request the recovery probe
//! sends), concurrently, each bounded by its endpoint's timeout; no proxy needed.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::config::{ConfigFile, EndpointConfig};
use crate::store::url::Scheme;

/// The verdict on one endpoint.
struct Verdict {
    status: Option<u16>,
    latency_ms: u128,
    reason: String,
}

pub fn health_test(cluster: Option<&str>, id: Option<&str>, json_out: bool, model: Option<&str>) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let name = match cluster.or(config.default_profile()) {
        Some(n) => n.to_string(),
        None => return Err(Error::Usage("`qcc health test` needs a CLUSTER (there is no default profile)".into())),
    };
    let cluster = config.cluster(&name)?;
    let eps: Vec<EndpointConfig> = cluster.endpoints.into_iter().filter(|e| id.is_none_or(|i| e.id == i)).collect();
    if eps.is_empty() {
        return Err(Error::Invalid(format!("no endpoint '{}' in '{name}'", id.unwrap_or(""))));
    }
    // The proxy's own default probe model, unless given.
    let model = model.unwrap_or("claude-3-5-haiku-20241022").to_string();
    let mut tls = crate::proxy::TlsConfigs::default();
    let handles: Vec<_> = eps
        .iter()
        .map(|ep| {
            let (ep, model) = (ep.clone(), model.clone());
            let config = match ep.url.scheme {
                Scheme::Http => Ok(None),
                Scheme::Https => {
                    let extra: Vec<&std::path::Path> = ep.ca_file.as_deref().into_iter().collect();
                    tls.get(&extra).map(Some)
                }
            };
            std::thread::spawn(move || match config {
                Ok(config) => probe(&ep, config, &model),
                Err(e) => Verdict { status: None, latency_ms: 0, reason: e },
            })
        })
        .collect();
    let verdicts: Vec<Verdict> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(Verdict { status: None, latency_ms: 0, reason: "probe thread failed".into() }))
        .collect();
    let ok = |v: &Verdict| v.status == Some(200);
    if json_out {
        let list: Vec<Value> = eps
            .iter()
            .zip(&verdicts)
            .map(|(ep, v)| {
                json!({"id": ep.id, "base_url": ep.url.to_string(), "ok": ok(v), "status": v.status,
                       "latency_ms": v.latency_ms, "reason": v.reason})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(list)).unwrap_or_default());
    } else {
        println!("{:<10} {:<7} {:>6} {:>10}  {:<40} URL", "ENDPOINT", "VERDICT", "HTTP", "LATENCY_MS", "REASON");
        for (ep, v) in eps.iter().zip(&verdicts) {
            println!(
                "{:<10} {:<7} {:>6} {:>10}  {:<40} {}",
                ep.id,
                if ok(v) { "ok" } else { "FAILED" },
                v.status.map_or("-".to_string(), |s| s.to_string()),
                v.latency_ms,
                v.reason,
                ep.url
            );
        }
    }
    if verdicts.iter().all(ok) {
        Ok(())
    } else {
        Err(Error::Silent(1))
    }
}

fn probe(ep: &EndpointConfig, tls: Option<Arc<rustls::ClientConfig>>, model: &str) -> Verdict {
    let started = Instant::now();
    let timeout = Duration::from_secs(ep.timeout_secs.max(1));
    let verdict =
        |status: Option<u16>, reason: String| Verdict { status, latency_ms: started.elapsed().as_millis(), reason };
    let addr = match (ep.url.host.as_str(), ep.url.port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => return verdict(None, format!("no address for {}", ep.url.host)),
        Err(e) => return verdict(None, format!("cannot resolve {}: {e}", ep.url.host)),
    };
    let sock = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => return verdict(None, format!("connect: {e}")),
    };
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let request = crate::proxy::probe_request(ep, model);
    let head = match tls {
        None => exchange(sock, &request),
        Some(config) => {
            let name = match rustls::pki_types::ServerName::try_from(ep.url.host.clone()) {
                Ok(n) => n,
                Err(e) => return verdict(None, format!("TLS name: {e}")),
            };
            match rustls::ClientConnection::new(config, name) {
                Ok(conn) => exchange(rustls::StreamOwned::new(conn, sock), &request),
                Err(e) => Err(format!("TLS: {e}")),
            }
        }
    };
    match head {
        Ok((200, _)) => verdict(Some(200), "answered".into()),
        Ok((status, why)) => verdict(Some(status), why),
        Err(e) => verdict(None, e),
    }
}

/// Send the request, read the response head: the status and, for an error, its message.
fn exchange(mut s: impl Read + Write, request: &[u8]) -> std::result::Result<(u16, String), String> {
    s.write_all(request).and_then(|()| s.flush()).map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let parsed = crate::http::parse_response_head(&buf, false);
        // An error's message is in its body: wait for a short length-framed body to arrive.
        let body_due = match &parsed {
            Ok(Some(h)) => match h.framing {
                crate::http::BodyFraming::Length(n) if n <= 64 * 1024 => h.raw.len() + n as usize,
                _ => 0,
            },
            _ => usize::MAX,
        };
        if let (Ok(Some(head)), true) = (parsed, buf.len() >= body_due) {
            let body = String::from_utf8_lossy(&buf[head.raw.len()..]).into_owned();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| format!("HTTP {}", head.status));
            return Ok((head.status, message));
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("closed before a response".into()),
            Ok(n) if buf.len() < 256 * 1024 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => return Err("response head too large".into()),
            Err(e) => return Err(format!("no response: {e}")),
        }
    }
}
