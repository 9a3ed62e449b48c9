//! One small transport type for upstream sockets: plain TCP or rustls over TCP.
//! The HTTP code above it does not know which.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::proxy::event::io::{classify, read_into, write_from, IoOutcome};

/// Most plaintext rustls may hold for sending; beyond it `write` reports WouldBlock,
/// which is what keeps a slow upstream from growing memory (backpressure).
const TLS_SEND_LIMIT: usize = 64 * 1024;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

pub struct TlsStream {
    sock: TcpStream,
    conn: ClientConnection,
    /// The socket's last write said WouldBlock: a writable edge will come.
    sock_blocked: bool,
}

impl Transport {
    pub fn plain(sock: TcpStream) -> Transport {
        Transport::Plain(sock)
    }

    pub fn tls(sock: TcpStream, config: Arc<ClientConfig>, host: &str) -> io::Result<Transport> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad TLS server name {host:?}: {e}")))?;
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(TLS_SEND_LIMIT));
        Ok(Transport::Tls(Box::new(TlsStream { sock, conn, sock_blocked: false })))
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &mut t.sock,
        }
    }

    /// Read plaintext once (for TLS: as much as one socket read yields), appending to `dst`.
    pub fn read(&mut self, dst: &mut Vec<u8>, scratch: &mut [u8]) -> IoOutcome {
        match self {
            Transport::Plain(s) => read_into(s, dst, scratch),
            Transport::Tls(t) => t.read(dst, scratch),
        }
    }

    /// Write plaintext once. For TLS the bytes go into rustls and are flushed right away.
    pub fn write(&mut self, src: &[u8]) -> IoOutcome {
        match self {
            Transport::Plain(s) => write_from(s, src),
            Transport::Tls(t) => {
                // rustls takes nothing while its send buffer is full. The flush then may empty
                // it without the socket ever saying WouldBlock, and no writable edge would come:
                // so after a flush the write is tried again, and WouldBlock is only reported when
                // the buffer is still full, that is when the socket did say it.
                let mut n = 0;
                for _ in 0..2 {
                    n = match t.conn.writer().write(src) {
                        Ok(n) => n,
                        Err(e) => return IoOutcome::Error(e),
                    };
                    if let IoOutcome::Error(e) = t.flush() {
                        return IoOutcome::Error(e);
                    }
                    if n > 0 {
                        break;
                    }
                }
                if n == 0 {
                    IoOutcome::WouldBlock
                } else {
                    IoOutcome::Progress(n)
                }
            }
        }
    }

    /// Push out bytes the transport itself holds (TLS records, handshake messages).
    pub fn flush(&mut self) -> IoOutcome {
        match self {
            Transport::Plain(_) => IoOutcome::WouldBlock,
            Transport::Tls(t) => t.flush(),
        }
    }

    /// A TLS write found rustls' buffer full without the socket ever saying WouldBlock (during
    /// the handshake plaintext waits in rustls): no writable edge will come for it, so once the
    /// handshake is done the writer must look again on its own. Always false for plain TCP.
    pub fn may_write_again(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => !t.sock_blocked && !t.conn.is_handshaking(),
        }
    }

    /// Whether the transport holds bytes that still need the socket to be writable.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.conn.wants_write(),
        }
    }
}

impl TlsStream {
    /// One pass: hand out any decrypted plaintext, else read ciphertext once and decrypt it.
    /// Handshake records produce no plaintext, so keep reading until plaintext or WouldBlock.
    fn read(&mut self, dst: &mut Vec<u8>, scratch: &mut [u8]) -> IoOutcome {
        let mut eof = false;
        loop {
            match self.conn.reader().read(scratch) {
                Ok(0) => return IoOutcome::Closed, // close_notify received
                Ok(n) => {
                    dst.extend_from_slice(&scratch[..n]);
                    return IoOutcome::Progress(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => return IoOutcome::Closed,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP closed without close_notify: the stream is over; whether the body was
                // complete is the HTTP layer's to judge, as for plain TCP.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return IoOutcome::Closed,
                Err(e) => return IoOutcome::Error(e),
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return IoOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return IoOutcome::Error(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the peer why (alert), best effort, then report the TLS error.
                let _ = self.conn.write_tls(&mut self.sock);
                return IoOutcome::Error(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    fn flush(&mut self) -> IoOutcome {
        let mut total = 0;
        while self.conn.wants_write() {
            match classify(self.conn.write_tls(&mut self.sock)) {
                IoOutcome::Progress(n) => {
                    total += n;
                    self.sock_blocked = false;
                }
                IoOutcome::WouldBlock => {
                    self.sock_blocked = true;
                    break;
                }
                IoOutcome::Closed => return IoOutcome::Closed,
                IoOutcome::Error(e) => return IoOutcome::Error(e),
            }
        }
        if total > 0 {
            IoOutcome::Progress(total)
        } else {
            IoOutcome::WouldBlock
        }
    }
}

/// rustls client configurations, one per distinct set of extra CA files (usually exactly one),
/// shared by every https endpoint that uses that set.
#[derive(Default)]
pub struct TlsConfigs(Vec<(Vec<PathBuf>, Arc<ClientConfig>)>);

impl TlsConfigs {
    pub fn get(&mut self, extra_ca: &[&Path]) -> Result<Arc<ClientConfig>, String> {
        if let Some((_, config)) =
            self.0.iter().find(|(k, _)| k.iter().map(PathBuf::as_path).eq(extra_ca.iter().copied()))
        {
            return Ok(config.clone());
        }
        let config = client_config(extra_ca)?;
        self.0.push((extra_ca.iter().map(|p| p.to_path_buf()).collect(), config.clone()));
        Ok(config)
    }
}

/// A TLS client configuration: webpki-roots, plus the PEM certificates of `extra_ca`.
/// SNI and certificate verification are always on.
fn client_config(extra_ca: &[&Path]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for path in extra_ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: cannot read CA file: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate in CA file", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS configuration an endpoint needs (none for http://). Fails only on a bad CA file.
pub(crate) fn tls_for(
    cfg: &crate::store::cluster::EndpointConfig,
    global_ca: Option<&std::path::Path>,
    tls_configs: &mut TlsConfigs,
) -> std::result::Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
    match cfg.url.scheme {
        crate::store::url::Scheme::Http => Ok(None),
        crate::store::url::Scheme::Https => {
            let extra: Vec<&std::path::Path> = global_ca.into_iter().chain(cfg.ca_file.as_deref()).collect();
            Ok(Some(tls_configs.get(&extra)?))
        }
    }
}

/// The TLS configuration of https alert receivers (the global CA file added to webpki's roots).
/// Built off the loop: at start, and on the disk thread with a reload (`Fresh::alert_tls`).
pub(crate) fn alert_tls(
    global_ca: Option<&std::path::Path>,
) -> std::result::Result<std::sync::Arc<rustls::ClientConfig>, String> {
    TlsConfigs::default().get(&global_ca.into_iter().collect::<Vec<_>>())
}
