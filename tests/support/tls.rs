//! A CA made at test time (rcgen) and a TLS mock upstream (rustls server, blocking).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    key: KeyPair,
    cert: rcgen::Certificate,
}

/// Which leaf certificate the server presents.
pub enum Leaf {
    /// Valid for localhost and 127.0.0.1.
    Good,
    /// Valid only for another name.
    WrongHost,
    /// Valid names, expired last year.
    Expired,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "qcc test CA");
        let cert = params.self_signed(&key).expect("CA cert");
        TestCa { key, cert }
    }

    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, self.cert.pem()).expect("write CA");
        path
    }

    fn leaf(&self, which: &Leaf) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("leaf key");
        let names = match which {
            Leaf::WrongHost => vec!["wrong.example".to_string()],
            _ => vec!["localhost".to_string(), "127.0.0.1".to_string()],
        };
        let mut params = CertificateParams::new(names).expect("leaf params");
        if let Leaf::Expired = which {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("leaf cert");
        (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
    }

    pub fn server_config(&self, which: Leaf) -> Arc<rustls::ServerConfig> {
        let (cert, key) = self.leaf(&which);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server cert");
        Arc::new(config)
    }
}

/// What a TLS mock does after writing a reply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep the connection for the next request.
    KeepAlive,
    /// Close the TCP connection without a TLS close_notify (a truncation).
    Cut,
}

/// A reply: pieces written (and flushed) one after another, `gap` between them.
pub struct Reply {
    pub pieces: Vec<Vec<u8>>,
    pub gap: Duration,
    pub after: After,
}

type Handler = dyn Fn(usize, &[u8]) -> Reply + Send + Sync;

/// HTTPS upstream; `handler(n, body)` answers the n-th request (0-based, all connections).
pub struct TlsMock {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TlsMock {
    /// Every request answered with `body` (200, Content-Length), keep-alive.
    pub fn start(config: Arc<rustls::ServerConfig>, body: &'static str) -> TlsMock {
        TlsMock::serve(config, move |_, _| Reply {
            pieces: vec![format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()],
            gap: Duration::ZERO,
            after: After::KeepAlive,
        })
    }

    pub fn serve(
        config: Arc<rustls::ServerConfig>,
        handler: impl Fn(usize, &[u8]) -> Reply + Send + Sync + 'static,
    ) -> TlsMock {
        let handler: Arc<Handler> = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let hits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, conns, s) = (hits.clone(), connections.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((sock, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let _ = sock.set_nonblocking(false);
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                let (config, h, handler) = (config.clone(), h.clone(), handler.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, sock));
                    loop {
                        let mut len = 0usize;
                        let mut line = String::new();
                        // Request line and headers.
                        loop {
                            line.clear();
                            match tls.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body_in = vec![0; len];
                        if tls.read_exact(&mut body_in).is_err() {
                            return;
                        }
                        let n = h.fetch_add(1, Ordering::SeqCst);
                        let reply = handler(n, &body_in);
                        for (i, piece) in reply.pieces.iter().enumerate() {
                            if i > 0 && !reply.gap.is_zero() {
                                std::thread::sleep(reply.gap);
                            }
                            if tls.get_mut().write_all(piece).and_then(|_| tls.get_mut().flush()).is_err() {
                                return;
                            }
                        }
                        if reply.after == After::Cut {
                            // Drop the TCP socket under rustls: no close_notify is sent.
                            let _ = tls.get_mut().sock.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                    }
                });
            }
        });
        TlsMock { addr, hits, connections, stop }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TlsMock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
