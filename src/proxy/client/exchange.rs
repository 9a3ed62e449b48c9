//! A connection's pump (`Conn::pump`): what is queued for the client written, its heads and
//! bodies read (`body.rs`, the client's own methods), an exchange started per request (the gate,
//! who asks, its limits; the admin pages left to the loop), the exchange pumped, and a closing
//! connection half-closed. The upstream side of an exchange, its attempts, lives in
//! `forward/attempt.rs` and `pump.rs`; how it ends in `forward/outcome.rs` and `reply.rs`.

use std::time::Instant;

use crate::http::{BodyFraming, BodyTracker};
use crate::proxy::client::body::{BodyStep, HeadStep};
use crate::proxy::client::conn::{Ask, Conn, Pump};
use crate::proxy::event::io::IoOutcome;
use crate::proxy::shared::guard::Verdict;
use crate::proxy::shared::keys::Caller;
use crate::proxy::shared::Shared;
use crate::proxy::state::AttemptEvent;
use crate::proxy::state::*;

impl Conn<'_> {
    /// Move this connection on as far as it goes now: what is queued for the client written,
    /// then its phase's work. `may_grow`: whether its request body may take more memory
    /// (`budget.rs`, decided by the loop).
    pub fn pump(&mut self, may_grow: bool, now: Instant) -> Pump {
        let c = &mut *self.c;
        let mut progress = false;
        // 1. Whatever is queued for the client goes first: it frees room for the upstream.
        while c.can_write && !c.out.is_empty() {
            match crate::proxy::event::io::write_from(&mut c.sock, c.out.pending()) {
                IoOutcome::Progress(n) => {
                    c.out.consume(n);
                    c.last_taken = now;
                    progress = true;
                }
                IoOutcome::WouldBlock => c.can_write = false,
                IoOutcome::Closed | IoOutcome::Error(_) => return Pump::Close,
            }
        }
        if c.out.is_empty() {
            c.out.shrink_if_idle();
        }
        let step = match c.phase {
            ClientPhase::Closing => {
                if c.out.is_empty() && c.reset {
                    crate::proxy::event::io::set_linger_zero(&c.sock); // the close below sends a reset
                    return Pump::Close;
                }
                if c.out.is_empty() && c.peer_done && c.inbuf.is_empty() {
                    return Pump::Close; // (nothing unread: the close sends a FIN, not a reset)
                }
                if c.out.is_empty() {
                    // Half-close and wait for the client's EOF (bounded by LINGER): closing with
                    // unread input would send a reset that can destroy our last response.
                    if !c.write_shut {
                        c.write_shut = true;
                        if c.sock.shutdown(std::net::Shutdown::Write).is_err() {
                            return Pump::Close;
                        }
                    }
                    while c.can_read {
                        c.inbuf.clear();
                        match crate::proxy::event::io::read_into(&mut c.sock, &mut c.inbuf, &mut self.net.scratch) {
                            IoOutcome::Progress(_) => {}
                            IoOutcome::WouldBlock => c.can_read = false,
                            IoOutcome::Closed | IoOutcome::Error(_) => return Pump::Close,
                        }
                    }
                }
                Some(false)
            }
            ClientPhase::ReadingHead => self.pump_head(now),
            ClientPhase::Waiting { .. } => Some(false),
            ClientPhase::Exchange(_) => self.pump_exchange(may_grow, now),
        };
        match step {
            None => Pump::Close,
            Some(p) if p || progress => Pump::Progress,
            Some(_) => Pump::Blocked,
        }
    }

    /// Read and parse a request head. `None`: close the connection.
    fn pump_head(&mut self, now: Instant) -> Option<bool> {
        let c = &mut *self.c;
        let peer = c.peer;
        match c.read_head(&mut self.net.scratch, now) {
            HeadStep::Moved(progress) => Some(progress),
            HeadStep::Gone => None,
            HeadStep::Bad(e) => {
                self.sh.stats.bad_requests += 1;
                if let Some(n) = self.sh.refusals.may_log(now) {
                    log::info!("bad request from {peer}: {e}{}", crate::proxy::shared::refusals::suppressed_note(n));
                }
                self.respond_local_error(e.status(), &e.to_string(), now);
                Some(true)
            }
            HeadStep::Head(head) => {
                self.start_exchange(head, now);
                Some(true)
            }
        }
    }

    fn start_exchange(&mut self, mut head: crate::http::RequestHead, now: Instant) {
        let cors = match self.sh.gate.check(&head) {
            Verdict::Pass { cors } => cors,
            Verdict::Preflight(bytes) => {
                self.c.out.push_local(&bytes);
                self.c.since = now;
                // A preflight has no body; if one is announced, close rather than parse it as a head.
                if !head.keep_alive || head.framing != BodyFraming::None {
                    self.end_exchange(true, now);
                }
                return;
            }
            Verdict::Refuse(status, msg) => {
                self.sh.log_refused(&head, self.c.peer, &format!("{msg} -> {status}"), now);
                self.sh.stats.forbidden += 1;
                self.respond_local_error(status, &msg, now);
                return;
            }
        };
        // A cluster its URL names (`/c/NAME`): the prefix comes off the target first.
        let named = crate::proxy::client::named::take_cluster(&mut head);
        // Where the request goes, decided once from its method and target (the access check
        // below only takes the key header out of the head).
        let (method, target) = (head.method_bytes(), head.target_bytes());
        let get = method == b"GET";
        let admin = target.starts_with(b"/_qcc/") || target == b"/_qcc";
        let metrics = target == b"/metrics";
        let api = target.starts_with(b"/v1/");
        // The dashboard page itself holds no data (it asks for the key, then fetches with it).
        let page = get && matches!(target, b"/_qcc/" | b"/_qcc");
        let control =
            (admin || metrics) && crate::proxy::shared::keys::has_control_token(&head, &self.sh.control_token);
        let peer = self.c.peer;
        let caller = match control {
            true => Ok(Caller::AccessKey),
            false => self.sh.authenticate(&mut head, peer, page, named.as_deref(), now),
        };
        let caller = match caller {
            Ok(caller) => caller,
            Err((status, msg)) => return self.respond_local_error(status, &msg, now),
        };
        if (admin || metrics) && !page {
            if let Caller::Key(k) = caller {
                let e = self.sh.keys.iter().nth(k).map(|k| &k.entry);
                if let Some(e) = e.filter(|e| !e.admin) {
                    let msg =
                        format!("key '{}' may not use the admin pages (`qcc key set {} --admin`)", e.name, e.name);
                    self.sh.log_refused(&head, peer, &format!("{msg} -> 403"), now);
                    self.sh.stats.forbidden += 1;
                    self.respond_local_error(403, &msg, now);
                    return;
                }
            }
        }
        if admin || metrics {
            // Answered by the loop: these pages see every connection.
            self.ask = Some(Ask::Admin(Box::new(head), caller));
            return;
        }
        self.sh.stats.total += 1;
        if let BodyFraming::Length(n) = head.framing {
            if n > self.sh.settings.max_body {
                self.sh.stats.rejected += 1;
                log::info!("{} {} -> 413 (body of {n} bytes)", head.method(), head.target());
                let msg = format!("request body of {n} bytes is over the limit of {} bytes", self.sh.settings.max_body);
                self.respond_local_error(413, &msg, now);
                return;
            }
        }
        let c = &mut *self.c;
        if head.expect_continue && !matches!(head.framing, BodyFraming::None | BodyFraming::Length(0)) {
            c.out.push(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        c.since = now;
        let out_start = c.out.pushed();
        let session = crate::proxy::upstream::affinity::session_of(head.headers());
        c.phase = ClientPhase::Exchange(Box::new(Exchange {
            body_tracker: BodyTracker::for_request(head.framing, self.sh.settings.max_body),
            keep_alive: head.keep_alive && !self.draining,
            head,
            started: now,
            body: Vec::new(),
            attempts: 0,
            tried: EndpointSet::default(),
            reached: EndpointSet::default(),
            session,
            usage_unread: false,
            first_byte: None,
            model_mapped: None,
            priced_as: None,
            headroom_skip: None,
            out_start,
            tokens: None,
            retry_copy: true,
            body_dropped: 0,
            attempt: None,
            stash: None,
            last_failure: None,
            cors,
            api,
            key: None,
            failed: Vec::new(),
            last_start: None,
            cluster: 0,
            reach: self.sh.clusters[0].reach,
            served_by: None,
            facts: Default::default(),
            since: self.sh.cluster_generation,
            skipped: Vec::new(),
            learned: 0,
            again: None,
            by_name: false,
            load: Load::No,
            body_log: None,
        }));
        if let (Some(name), ClientPhase::Exchange(ex)) = (named, &mut self.c.phase) {
            crate::proxy::client::named::place(self.sh, ex, name);
        }
        // Within its key's limits, the first attempt starts in pump_exchange, once the body bytes
        // already read are in the exchange: a small request then goes upstream in one write.
        let refused = match &mut self.c.phase {
            ClientPhase::Exchange(ex) => self.sh.admit(ex, caller, now).err(),
            _ => None,
        };
        if let Some(r) = refused {
            self.respond_refusal(429, &r.message, r.retry_after_secs, now);
        }
    }

    /// One pump of a request in progress. `None`: close the client connection.
    fn pump_exchange(&mut self, may_grow: bool, now: Instant) -> Option<bool> {
        let mut progress = false;
        // Request body: client -> exchange.body (kept whole for retries).
        let (max_body, idle) = (self.sh.settings.max_body, self.sh.settings.idle_timeout);
        let step = self.c.read_body(may_grow, max_body, idle, &mut self.net.scratch, now);
        match step {
            BodyStep::Moved(p) => progress |= p,
            BodyStep::Reject(status, msg) => return self.reject_in_exchange(status, &msg, now),
            BodyStep::Gone => return None,
        }
        // The first attempt waits for the whole body when an endpoint may rewrite it, the key's
        // budgets need its estimate (`reserve.rs`), or it names a model (a tag on it, `[1m]`,
        // never goes upstream: `scan/mapping.rs`).
        let first = match &self.c.phase {
            ClientPhase::Exchange(ex) if ex.attempts == 0 && !matches!(ex.load, Load::Asked(_)) => {
                let budgeted = ex.key.as_ref().is_some_and(|t| t.budgeted);
                let model = ex.api && ex.head.method_bytes() == b"POST";
                ex.body_tracker.is_done() || !(budgeted || model || rewrites_bodies(self.sh))
            }
            _ => false,
        };
        if first {
            let refused = match &mut self.c.phase {
                ClientPhase::Exchange(ex) => self.sh.reserve(ex).err(),
                _ => None,
            };
            if let Some(r) = refused {
                self.respond_refusal(429, &r.message, r.retry_after_secs, now);
                return Some(true);
            }
            self.start_attempt(now);
            progress = true;
        }
        match self.pump_attempt(now) {
            AttemptEvent::Nothing => {}
            AttemptEvent::Progress => progress = true,
            AttemptEvent::Failed(Failure::Connect(_)) if self.next_address(now) => progress = true,
            AttemptEvent::Failed(f) => {
                self.fail_attempt(f, now);
                progress = true;
            }
            AttemptEvent::Complete { reuse } => {
                self.finish_exchange(reuse, now);
                progress = true;
            }
            AttemptEvent::Stale => {
                self.replace_stale(now);
                progress = true;
            }
        }
        // The attempt's deadline moves with its phase (head sent, bytes relayed): keep the
        // sweep due no later than it.
        if let ClientPhase::Exchange(ex) = &self.c.phase {
            if let Some(d) = ex.attempt.as_ref().map(|a| a.deadline) {
                self.net.arm(d);
            }
        }
        Some(progress)
    }
}

/// Whether some endpoint renames models, has request rules or translates, or routes read
/// requests: a request then waits for its whole body before its first attempt, since the body
/// may have to be rewritten for the endpoint picked, or decides the cluster.
fn rewrites_bodies(sh: &Shared) -> bool {
    !sh.clusters[0].routes.is_empty()
        || sh.endpoints.iter().any(|e| {
            !e.retired
                && (!e.cfg.model_map.is_empty() || e.cfg.has_rules() || crate::translate::rewrites(&e.cfg.format))
        })
}
