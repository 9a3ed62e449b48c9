//! The memory held for request bodies, bounded across all clients.
//!
//! A request body is kept whole so that a failed attempt can be retried elsewhere. That is
//! cheap for Messages requests (tens of KiB to a few MiB), but six 30 MiB uploads to an upstream
//! that does not read would hold 180 MiB. Past `BODY_MEMORY` in total, qcc first gives up the
//! retry copies of the largest bodies that are already streaming upstream (their sent bytes are
//! freed; such a request is no longer retried), and only then stops reading further bodies until
//! memory frees (backpressure: the clients wait, nothing is refused).

use std::time::{Duration, Instant};

use crate::proxy::event::slab::{Key, Slab};
use crate::proxy::state::{AttemptPhase, Client, ClientPhase};
use crate::proxy::upstream::net::Net;

/// Bytes of request bodies held across all clients before qcc sheds retry copies and then
/// stops reading bodies.
pub const BODY_MEMORY: usize = 64 * 1024 * 1024;
/// Bodies below this never consult the budget (the common case costs nothing).
pub const SMALL_BODY: usize = 1024 * 1024;
/// How often a client waiting for body memory is looked at again.
const RECHECK: Duration = Duration::from_millis(50);

/// The clients waiting for body memory to free; the loop owns one (`EventLoop::bodies`).
#[derive(Default)]
pub struct BodyBudget {
    waiters: Vec<Key>,
}

impl BodyBudget {
    /// Whether client `ck` may read more of its request body now (counted over `clients`).
    pub fn may_grow(&mut self, clients: &mut Slab<Client>, ck: Key, net: &mut Net, now: Instant) -> bool {
        let growing = match clients.get(ck).map(|c| &c.phase) {
            Some(ClientPhase::Exchange(ex)) => !ex.body_tracker.is_done() && ex.body.len() >= SMALL_BODY,
            _ => false,
        };
        if !growing || body_memory(clients) < BODY_MEMORY {
            return true;
        }
        shed_retry_copies(clients);
        if body_memory(clients) < BODY_MEMORY {
            return true;
        }
        if !self.waiters.contains(&ck) {
            self.waiters.push(ck);
        }
        net.arm(now + RECHECK);
        false
    }

    /// Clients that waited for body memory are driven again (from the sweep): each registers
    /// itself anew if memory is still short.
    pub fn wake(&mut self, again: &mut Vec<Key>) {
        again.append(&mut self.waiters);
    }
}

fn body_memory(clients: &Slab<Client>) -> usize {
    clients
        .iter()
        .filter_map(|c| match &c.phase {
            ClientPhase::Exchange(ex) => Some(ex.body.len()),
            _ => None,
        })
        .sum()
}

/// Give up the retry copies of the largest bodies already streaming upstream, until the total
/// is under budget: their sent bytes are freed now, and from now on as they are sent.
fn shed_retry_copies(clients: &mut Slab<Client>) {
    let mut streaming: Vec<(usize, Key)> = clients
        .keys()
        .filter_map(|k| match clients.get(k).map(|c| &c.phase) {
            Some(ClientPhase::Exchange(ex))
                if ex.retry_copy
                    && ex.attempt.as_ref().is_some_and(|a| a.phase == AttemptPhase::Sending && a.body_sent > 0) =>
            {
                Some((ex.body.len(), k))
            }
            _ => None,
        })
        .collect();
    streaming.sort_unstable_by_key(|&(len, _)| std::cmp::Reverse(len));
    for (_, k) in streaming {
        if body_memory(clients) < BODY_MEMORY {
            break;
        }
        if let Some(ClientPhase::Exchange(ex)) = clients.get_mut(k).map(|c| &mut c.phase) {
            ex.retry_copy = false;
            log::info!(
                "{} {}: body memory over {} MiB; this request's retry copy is given up",
                ex.head.method(),
                ex.head.target(),
                BODY_MEMORY >> 20
            );
            ex.drop_sent_body();
        }
    }
}

impl crate::proxy::state::Exchange {
    /// Without a retry copy, body bytes already sent upstream are freed.
    pub fn drop_sent_body(&mut self) {
        if self.retry_copy {
            return;
        }
        let Some(a) = self.attempt.as_mut() else { return };
        // (A mapped body is the attempt's own; the client's is never sent from.)
        if a.head_sent < a.head_out.len() || a.body_sent == 0 || a.mapped.is_some() {
            return;
        }
        let sent = a.body_sent;
        // Freed once the sent part is worth it (64 KiB, or the larger part): moving the unsent
        // rest forward on every pump would copy it over and over.
        if sent < 64 * 1024 && sent * 2 < self.body.len() {
            return;
        }
        self.body.drain(..sent);
        self.body_dropped += sent as u64;
        a.body_sent = 0;
        a.folded = 0;
    }
}
