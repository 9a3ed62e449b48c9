//! The memory held for request bodies, bounded across all clients.
//!
//! A request body is kept whole so that a failed attempt can be retried elsewhere. That is
//! cheap for Messages requests (tens of KiB to a few MiB), but six 30 MiB uploads to an upstream
//! that does not read would hold 180 MiB. Past `BODY_MEMORY` in total, qcc first gives up the
//! retry copies of the largest bodies that are already streaming upstream (their sent bytes are
//! freed; such a request is no longer retried), and only then stops reading further bodies until
//! memory frees (backpressure: the clients wait, nothing is refused).

use std::time::{Duration, Instant};

use crate::proxy::event::slab::Key;
use crate::proxy::state::{AttemptPhase, ClientPhase};
use crate::proxy::EventLoop;

/// Bytes of request bodies held across all clients before qcc sheds retry copies and then
/// stops reading bodies.
pub const BODY_MEMORY: usize = 64 * 1024 * 1024;
/// Bodies below this never consult the budget (the common case costs nothing).
pub const SMALL_BODY: usize = 1024 * 1024;
/// How often a client waiting for body memory is looked at again.
const RECHECK: Duration = Duration::from_millis(50);

impl EventLoop {
    /// Whether client `ck` may read more of its request body now.
    pub(in crate::proxy) fn body_may_grow(&mut self, ck: Key, now: Instant) -> bool {
        let growing = match self.clients.get(ck).map(|c| &c.phase) {
            Some(ClientPhase::Exchange(ex)) => !ex.body_tracker.is_done() && ex.body.len() >= SMALL_BODY,
            _ => false,
        };
        if !growing || self.body_memory() < BODY_MEMORY {
            return true;
        }
        self.shed_retry_copies();
        if self.body_memory() < BODY_MEMORY {
            return true;
        }
        if !self.body_waiters.contains(&ck) {
            self.body_waiters.push(ck);
        }
        self.arm(now + RECHECK);
        false
    }

    /// Clients that waited for body memory are driven again (from the sweep).
    pub(in crate::proxy) fn wake_body_waiters(&mut self) {
        // Each is driven again and registers itself anew if memory is still short.
        self.again.append(&mut self.body_waiters);
    }

    fn body_memory(&self) -> usize {
        self.clients
            .keys()
            .filter_map(|k| match self.clients.get(k).map(|c| &c.phase) {
                Some(ClientPhase::Exchange(ex)) => Some(ex.body.len()),
                _ => None,
            })
            .sum()
    }

    /// Give up the retry copies of the largest bodies already streaming upstream, until the total
    /// is under budget: their sent bytes are freed now, and from now on as they are sent.
    fn shed_retry_copies(&mut self) {
        let mut streaming: Vec<(usize, Key)> = self
            .clients
            .keys()
            .filter_map(|k| match self.clients.get(k).map(|c| &c.phase) {
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
            if self.body_memory() < BODY_MEMORY {
                break;
            }
            if let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(k).map(|c| &mut c.phase) {
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
