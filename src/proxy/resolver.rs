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
    pub result: Result<Vec<SocketAddr>, String>,
}

pub struct Resolver {
    requests: Sender<(usize, String, u16)>,
    results: Receiver<Lookup>,
}

impl Resolver {
    pub fn start(waker: Arc<Waker>) -> std::io::Result<Resolver> {
        let (req_tx, req_rx) = channel::<(usize, String, u16)>();
        let (res_tx, res_rx) = channel::<Lookup>();
        thread::Builder::new().name("qcc-resolver".into()).spawn(move || {
            // Ends when the loop drops its sender.
            for (endpoint, host, port) in req_rx {
                let result = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|it| it.collect::<Vec<_>>())
                    .map_err(|e| format!("cannot resolve {host}: {e}"))
                    .and_then(|v| if v.is_empty() { Err(format!("no address for {host}")) } else { Ok(v) });
                if res_tx.send(Lookup { endpoint, result }).is_err() {
                    break;
                }
                let _ = waker.wake();
            }
        })?;
        Ok(Resolver { requests: req_tx, results: res_rx })
    }

    pub fn lookup(&self, endpoint: usize, host: &str, port: u16) {
        // The thread only stops when this sender is dropped, so a send cannot fail while we live.
        let _ = self.requests.send((endpoint, host.to_string(), port));
    }

    pub fn try_next(&self) -> Option<Lookup> {
        match self.results.try_recv() {
            Ok(l) => Some(l),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }
}
