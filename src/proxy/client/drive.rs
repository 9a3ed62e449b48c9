//! The loop's side of client connections: a `Conn` made for each step (`with_conn`), a
//! connection driven until nothing moves (bounded, for fairness), closed, its attempts moved on
//! when a lookup answers, and what its steps leave to the loop (`Ask`) answered.

use std::time::Instant;

use crate::proxy::client::conn::{Ask, Conn, Pump};
use crate::proxy::event::slab::Key;
use crate::proxy::state::{AttemptPhase, ClientPhase, Failure};
use crate::proxy::EventLoop;

impl EventLoop {
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

    /// Close a client connection; an exchange in progress is abandoned (`Net::abandon`).
    pub(in crate::proxy) fn close_client(&mut self, key: Key, now: Instant) {
        if let Some(mut c) = self.clients.remove(key) {
            let _ = self.poll.registry().deregister(&mut c.sock);
            if let ClientPhase::Exchange(ex) = c.phase {
                let out = c.out.pushed() - ex.out_start;
                self.net.abandon(&mut self.sh, *ex, out, now);
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
        self.net.resume_probes(&mut self.sh, idx, now);
    }

    /// What a connection's step left to the loop.
    fn answer(&mut self, ck: Key, ask: Ask, now: Instant) {
        match ask {
            Ask::Admin(head, caller) => self.serve_admin(ck, &head, caller, now),
            Ask::Reply { keep_alive, status, body } => self.respond_json(ck, keep_alive, status, &body, now),
        }
    }
}
