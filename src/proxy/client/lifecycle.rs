//! A client connection's life as the loop sees it: accepted (the connection limit: the
//! longest-idle connection gives way to a new one; only when every connection is busy does a new
//! one get a readable 503; after EMFILE, accepting is tried again from the timer), stepped through
//! a `Conn` (`with_conn`), driven until nothing moves (bounded, for fairness), its waiting
//! attempts moved on when a lookup answers, what its steps leave to the loop (`Ask`) answered,
//! and closed.

use std::time::{Duration, Instant};

use mio::Interest;

use crate::proxy::client::conn::{Ask, Conn, Pump};
use crate::proxy::event::slab::Key;
use crate::proxy::event::slab::{token, KIND_CLIENT};
use crate::proxy::state::{AttemptPhase, Client, ClientPhase, Failure, FIRST_BYTE_TIMEOUT};
use crate::proxy::{event::io, wire, EventLoop};

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
                    self.net.arm(at);
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
            self.net
                .arm(now + self.sh.settings.idle_timeout.min(self.sh.settings.header_timeout).min(FIRST_BYTE_TIMEOUT));
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

    /// Run `f` on client `ck`'s connection (`None` when it is gone), then answer what it left
    /// to the loop.
    pub(in crate::proxy) fn with_conn<R>(
        &mut self,
        ck: Key,
        now: Instant,
        f: impl FnOnce(&mut Conn) -> R,
    ) -> Option<R> {
        let c = self.clients.get_mut(ck)?;
        let draining = self.draining.is_some();
        let mut conn = Conn { key: ck, c, net: &mut self.net, sh: &mut self.sh, draining, ask: None };
        let r = f(&mut conn);
        if let Some(ask) = conn.ask.take() {
            self.answer(ck, ask, now);
        }
        Some(r)
    }

    /// Pump a client connection and its upstream until nothing moves. Bounded: a connection
    /// that still has work after 32 rounds is driven again next turn, so one busy stream
    /// cannot starve the others.
    pub(in crate::proxy) fn drive(&mut self, ck: Key, now: Instant) {
        for _ in 0..32 {
            // (decided here: the body budget looks at every connection)
            let may_grow = self.bodies.may_grow(&mut self.clients, ck, &mut self.net, now);
            match self.with_conn(ck, now, |conn| conn.pump(may_grow, now)) {
                Some(Pump::Progress) => continue,
                Some(Pump::Blocked) | None => return,
                Some(Pump::Close) => {
                    self.close_client(ck, now);
                    return;
                }
            }
        }
        self.again.push(ck);
    }

    /// Close a client connection; an exchange in progress is abandoned (`Orphans::abandon`).
    pub(in crate::proxy) fn close_client(&mut self, key: Key, now: Instant) {
        if let Some(mut c) = self.clients.remove(key) {
            let _ = self.poll.registry().deregister(&mut c.sock);
            if let ClientPhase::Exchange(ex) = c.phase {
                let out = c.out.pushed() - ex.out_start;
                self.orphans.abandon(&mut self.net, &mut self.sh, *ex, out, now);
            }
        }
    }

    /// Endpoint lookups finished: attempts waiting on `idx` connect now, or fail over.
    pub(in crate::proxy) fn resume_resolving(&mut self, idx: usize, now: Instant) {
        let waiting: Vec<Key> = self
            .clients
            .keys()
            .filter(|k| match self.clients.get(*k).map(|c| &c.phase) {
                Some(ClientPhase::Exchange(ex)) => {
                    ex.attempt.as_ref().is_some_and(|a| a.endpoint == idx && a.phase == AttemptPhase::Resolving)
                }
                _ => false,
            })
            .collect();
        let failed = self.sh.endpoints[idx].addrs.is_empty();
        for ck in waiting {
            self.with_conn(ck, now, |conn| match failed {
                true => {
                    let host = conn.sh.endpoints[idx].cfg.url.host.clone();
                    conn.fail_attempt(Failure::Resolve(format!("cannot resolve {host}")), now);
                }
                false => conn.connect_attempt(true, now),
            });
            self.drive(ck, now);
        }
        self.probes.resume(&mut self.net, &mut self.sh, idx, now);
    }

    /// What a connection's step left to the loop.
    fn answer(&mut self, ck: Key, ask: Ask, now: Instant) {
        match ask {
            Ask::Admin(head, caller) => self.serve_admin(ck, &head, caller, now),
            Ask::Reply { keep_alive, status, body } => self.respond_json(ck, keep_alive, status, &body, now),
        }
    }
}
