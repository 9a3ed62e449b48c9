//! `with_exchange`, which lends a client's exchange to code that needs the shared state beside
//! it, and what goes through it: a request's line and record (`admin/finished.rs`) and its
//! usage charged (`answer/charge.rs`).

use std::time::Instant;

use crate::proxy::event::slab::Key;
use crate::proxy::state::{ClientPhase, Exchange};
use crate::proxy::EventLoop;

impl EventLoop {
    /// One line per request; `note` says why a request failed or what happened in its stream.
    pub(in crate::proxy) fn log_request(
        &mut self,
        ck: Key,
        endpoint: Option<usize>,
        status: Option<u16>,
        note: &str,
        now: Instant,
    ) {
        self.with_exchange(ck, |this, ex, pushed| this.sh.log_exchange(ex, pushed, endpoint, status, note, now));
    }

    /// Run `f` on client `ck`'s exchange with the whole loop at hand (and the client's bytes
    /// pushed so far): the exchange leaves its phase for the call, and comes back.
    pub(in crate::proxy) fn with_exchange(&mut self, ck: Key, f: impl FnOnce(&mut EventLoop, &Exchange, u64)) {
        let Some(c) = self.clients.get_mut(ck) else { return };
        if !matches!(c.phase, ClientPhase::Exchange(_)) {
            return;
        }
        let pushed = c.out.pushed();
        let ClientPhase::Exchange(ex) = std::mem::replace(&mut c.phase, ClientPhase::Closing) else { return };
        f(self, &ex, pushed);
        if let Some(c) = self.clients.get_mut(ck) {
            c.phase = ClientPhase::Exchange(ex);
        }
    }

    /// `record_usage` for client `ck`'s exchange: its session and key (the exchange leaves its
    /// phase for the recording, and comes back).
    pub(in crate::proxy) fn charge_exchange(
        &mut self,
        ck: crate::proxy::event::slab::Key,
        idx: usize,
        model: Option<&str>,
        c: &crate::store::usage::Counts,
        now: Instant,
    ) {
        self.with_exchange(ck, |this, ex, _| {
            this.sh.record_usage(idx, model, c, ex.session.as_deref(), ex.key.as_ref().map(|t| &t.name), now)
        });
    }
}
