//! Name resolution off the loop: one helper thread runs the blocking `getaddrinfo` and
//! hands results back through a channel, waking the loop with a mio `Waker`.
//!
//! The thread shares no state with the loop: it only receives a host name and sends back
//! addresses, so the loop stays the single owner of everything it keeps.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;

use mio::Waker;

/// Whose name a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// An endpoint, at its generation when asked (an answer for a replaced target is dropped).
    Endpoint { idx: usize, generation: u32 },
    /// An alert receiver (`shared/notify.rs`), by index.
    Webhook(usize),
}

pub struct Lookup {
    pub asker: Asker,
    pub result: Result<Vec<SocketAddr>, String>,
}

pub struct Resolver {
    requests: Sender<(Asker, String, u16)>,
    results: Receiver<Lookup>,
}

impl Resolver {
    pub fn start(waker: Arc<Waker>) -> std::io::Result<Resolver> {
        let (req_tx, req_rx) = channel::<(Asker, String, u16)>();
        let (res_tx, res_rx) = channel::<Lookup>();
        thread::Builder::new().name("qcc-resolver".into()).spawn(move || {
            // Ends when the loop drops its sender.
            for (asker, host, port) in req_rx {
                let result = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|it| it.collect::<Vec<_>>())
                    .map_err(|e| format!("cannot resolve {host}: {e}"))
                    .and_then(|v| if v.is_empty() { Err(format!("no address for {host}")) } else { Ok(v) });
                if res_tx.send(Lookup { asker, result }).is_err() {
                    break;
                }
                let _ = waker.wake();
            }
        })?;
        Ok(Resolver { requests: req_tx, results: res_rx })
    }

    /// Look up endpoint `idx`'s host (unless a lookup is already running) and mark it resolving.
    pub fn lookup(&self, idx: usize, ep: &mut crate::proxy::state::Endpoint) {
        if ep.resolving {
            return;
        }
        ep.resolving = true;
        // The thread only stops when this sender is dropped, so a send cannot fail while we live.
        let asker = Asker::Endpoint { idx, generation: ep.generation };
        let _ = self.requests.send((asker, ep.cfg.url.host.clone(), ep.cfg.url.port));
    }

    /// Look up an alert receiver's host.
    pub fn lookup_webhook(&self, i: usize, host: &str, port: u16) {
        let _ = self.requests.send((Asker::Webhook(i), host.to_string(), port));
    }

    pub fn try_next(&self) -> Option<Lookup> {
        match self.results.try_recv() {
            Ok(l) => Some(l),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }
}
