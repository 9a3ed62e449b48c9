//! Accepting client connections: the connection limit (the longest-idle connection gives way
//! to a new one; only when every connection is busy does a new one get a readable 503), and
//! retrying after EMFILE from the timer.

use std::time::{Duration, Instant};

use mio::Interest;

use crate::proxy::state::{Client, ClientPhase, FIRST_BYTE_TIMEOUT};
use crate::proxy::{event::io, token, wire, EventLoop, KIND_CLIENT};

impl EventLoop {
    pub(in crate::proxy) fn accept(&mut self, now: Instant) {
        loop {
            let Some(listener) = self.listener.as_ref() else { return };
            let (mut sock, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the pending connection stays queued and, the listener
                    // being edge-triggered, gives no new event. Stop instead of spinning on it,
                    // and try again from the timer in 100 ms.
                    log::warn!("accept failed: {e}; retrying in 100 ms");
                    let at = now + Duration::from_millis(100);
                    self.accept_retry = Some(at);
                    self.arm(at);
                    return;
                }
            };
            if self.clients.len() >= self.sh.settings.max_connections && !self.evict_idle_client(now) {
                // Every slot is busy with a request: a readable 503. Read what the client sent
                // first, so closing does not reset the connection under our answer.
                let mut out = Vec::new();
                wire::error_response(503, "too many connections", true, &mut out);
                let _ = std::io::Read::read(&mut sock, &mut self.net.scratch);
                let _ = std::io::Write::write(&mut sock, &out);
                let _ = sock.shutdown(std::net::Shutdown::Write);
                log::warn!(
                    "refused connection from {peer}: --max-connections {} reached, none idle",
                    self.sh.settings.max_connections
                );
                continue;
            }
            let _ = sock.set_nodelay(true);
            let key = self.clients.next_key();
            if let Err(e) = self.poll.registry().register(
                &mut sock,
                token(KIND_CLIENT, key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("cannot register connection from {peer}: {e}");
                continue;
            }
            self.clients.insert(Client {
                sock,
                peer,
                can_read: true,
                can_write: true,
                inbuf: Vec::new(),
                head_scan: Default::default(),
                out: io::OutBuf::default(),
                phase: ClientPhase::ReadingHead,
                since: now,
                write_shut: false,
                peer_done: false,
                hup: false,
                heads: 0,
                last_taken: now,
                reset: false,
                answering_head: false,
            });
            self.arm(now + self.sh.settings.idle_timeout.min(self.sh.settings.header_timeout).min(FIRST_BYTE_TIMEOUT));
            self.drive(key, now);
        }
    }

    /// At the connection limit: close the longest-idle keep-alive (or silent) connection to
    /// admit a new one. Returns whether a slot was freed.
    fn evict_idle_client(&mut self, now: Instant) -> bool {
        let oldest = self
            .clients
            .keys()
            .filter_map(|k| self.clients.get(k).filter(|c| c.is_idle()).map(|c| (c.since, k)))
            .min_by_key(|&(since, _)| since);
        match oldest {
            Some((_, k)) => {
                log::debug!("connection limit: closing the longest-idle connection to admit a new one");
                self.close_client(k, now);
                true
            }
            None => false,
        }
    }
}
