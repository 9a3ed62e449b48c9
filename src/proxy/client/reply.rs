//! A connection's own replies: a local error (and the `retry-after` of a key's limit), a local
//! answer (JSON, the dashboard, `/metrics`), a request that waits for another thread, and the
//! end of an exchange, after which the connection reads its next request or closes. The bound
//! on unread local replies is the loop's (`admin/routes.rs`, `refuse_local_reply`): it sees
//! every connection.

use std::time::Instant;

use crate::proxy::client::conn::Conn;
use crate::proxy::record::requests::Ended;
use crate::proxy::state::{ClientPhase, DISK_WAIT, LINGER};
use crate::proxy::wire;

impl Conn<'_> {
    /// Send a local error for the request in progress (never after a response has started),
    /// then close the connection. Returns the pump verdict.
    pub fn reject_in_exchange(&mut self, status: u16, msg: &str, now: Instant) -> Option<bool> {
        if matches!(&self.c.phase, ClientPhase::Exchange(ex) if ex.responded()) {
            return None;
        }
        self.sh.stats.rejected += 1;
        log::info!("request rejected -> {status}: {msg}");
        self.respond_local_error(status, msg, now);
        Some(true)
    }

    /// Answer with a local error and close after writing it; abandons any exchange.
    pub fn respond_local_error(&mut self, status: u16, msg: &str, now: Instant) {
        self.respond_refusal(status, msg, None, now);
    }

    /// `respond_local_error` with a `retry-after` (a client key's limit).
    pub fn respond_refusal(&mut self, status: u16, msg: &str, retry_after: impl Into<Option<u64>>, now: Instant) {
        self.respond_advising(status, msg, retry_after.into(), false, now);
    }

    /// The 503 of a request no endpoint may serve (`forward/nowhere.rs`): `retry-after` when one
    /// may serve again, `x-should-retry: false` when none will without the operator.
    pub fn respond_unavailable(&mut self, msg: &str, retry_after: Option<u64>, hopeless: bool, now: Instant) {
        self.respond_advising(503, msg, retry_after, hopeless, now);
    }

    fn respond_advising(&mut self, status: u16, msg: &str, retry_after: Option<u64>, hopeless: bool, now: Instant) {
        let c = &mut *self.c;
        let old = std::mem::replace(&mut c.phase, ClientPhase::Closing);
        c.since = now;
        let mut bytes = Vec::new();
        wire::error_response_advising(status, msg, retry_after, hopeless, true, &mut bytes);
        if c.answering_head {
            wire::head_only(&mut bytes);
        }
        c.out.push_local(&bytes);
        let pushed = c.out.pushed();
        self.net.arm(now + LINGER); // (the connection closes once this is out, or then)
        if let ClientPhase::Exchange(ex) = old {
            // A request qcc answered itself (408, 413, 503 ...) is a request of the access log too.
            self.sh.record_request(&ex, None, Ended::Status(status), pushed - ex.out_start, now);
            self.net.release_attempt(&mut self.sh.endpoints, *ex);
        }
    }

    /// The exchange is over; the client connection reads its next request or closes.
    pub fn end_exchange(&mut self, close: bool, now: Instant) {
        let c = &mut *self.c;
        c.since = now;
        c.answering_head = false;
        // The client said this request was its last and it was read to its end: nothing more
        // will come, so the connection closes at once once the response is out.
        let last = matches!(&c.phase, ClientPhase::Exchange(ex) if !ex.head.keep_alive && ex.body_tracker.is_done());
        c.peer_done = close && last;
        c.phase = if close { ClientPhase::Closing } else { ClientPhase::ReadingHead };
        if close {
            self.net.arm(now + LINGER);
        } else {
            self.net.arm(now + self.sh.settings.idle_timeout.min(self.sh.settings.header_timeout));
        }
    }

    /// The request is answered once another thread has done its part (a reload or an edit on
    /// the disk thread, a search): nothing more is read meanwhile, for `DISK_WAIT` at most.
    pub fn wait(&mut self, keep_alive: bool, now: Instant) {
        self.c.phase = ClientPhase::Waiting { keep_alive };
        self.c.since = now;
        self.net.arm(now + DISK_WAIT);
    }

    /// Queue a reply qcc made itself; the connection then reads its next request (or closes).
    /// Unbounded: the loop's `respond_local` puts it under the bound on unread local replies.
    pub fn push_reply(&mut self, keep_alive: bool, status: u16, ctype: &str, body: &[u8], now: Instant) {
        let c = &mut *self.c;
        let close = !keep_alive || self.draining;
        let mut bytes = Vec::new();
        wire::local_response(status, ctype, body, close, &mut bytes);
        if c.answering_head {
            wire::head_only(&mut bytes);
        }
        c.answering_head = false; // (answered: the next reply is the next request's)
        c.out.push_local(&bytes);
        c.since = now;
        let old = std::mem::replace(&mut c.phase, if close { ClientPhase::Closing } else { ClientPhase::ReadingHead });
        let pushed = c.out.pushed();
        self.net.arm(now + if close { LINGER } else { self.sh.settings.idle_timeout });
        if let ClientPhase::Exchange(ex) = old {
            // A request qcc answered for an endpoint (a token count, the model list, a
            // reachability check) is a request of the history too.
            self.sh.record_request(&ex, None, Ended::Status(status), pushed - ex.out_start, now);
            self.net.release_attempt(&mut self.sh.endpoints, *ex);
        }
    }
}
