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

pub struct Lookup {
    /// The endpoint index this lookup was for.
    pub endpoint: usize,
    /// The endpoint's generation when asked: an answer for a replaced target is dropped.
    pub generation: u32,
    pub result: Result<Vec<SocketAddr>, String>,
}

pub struct Resolver {
    requests: Sender<(usize, u32, String, u16)>,
    results: Receiver<Lookup>,
}

impl Resolver {
    pub fn start(waker: Arc<Waker>) -> std::io::Result<Resolver> {
        let (req_tx, req_rx) = channel::<(usize, u32, String, u16)>();
        let (res_tx, res_rx) = channel::<Lookup>();
        thread::Builder::new().name("qcc-resolver".into()).spawn(move || {
            // Ends when the loop drops its sender.
            for (endpoint, generation, host, port) in req_rx {
                let result = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|it| it.collect::<Vec<_>>())
                    .map_err(|e| format!("cannot resolve {host}: {e}"))
                    .and_then(|v| if v.is_empty() { Err(format!("no address for {host}")) } else { Ok(v) });
                if res_tx.send(Lookup { endpoint, generation, result }).is_err() {
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
        let _ = self.requests.send((idx, ep.generation, ep.cfg.url.host.clone(), ep.cfg.url.port));
    }

    pub fn try_next(&self) -> Option<Lookup> {
        match self.results.try_recv() {
            Ok(l) => Some(l),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }
}
