//! Driving one client connection: its heads and bodies read (`body.rs`, the client's own
//! methods), an exchange started per request (the gate, who asks, its limits), the exchange
//! pumped, and ended (response complete, local error, or the client gone). The upstream side of
//! an exchange, its attempts, lives in `upstream/attempt.rs` and `pump.rs`.

use std::time::Instant;

use crate::http::{BodyFraming, BodyTracker};
use crate::proxy::admin::requests::Ended;
use crate::proxy::client::body::{BodyStep, HeadStep};
use crate::proxy::client::guard::Verdict;
use crate::proxy::client::keys::Caller;
use crate::proxy::event::io::IoOutcome;
use crate::proxy::event::slab::Key;
use crate::proxy::state::AttemptEvent;
use crate::proxy::state::*;
use crate::proxy::{wire, EventLoop};

/// What one pump of a client connection achieved.
enum Pump {
    Progress,
    Blocked,
    Close,
}

impl EventLoop {
    /// Pump a client connection and its upstream until nothing moves. Bounded: a connection
    /// that still has work after 32 rounds is driven again next turn, so one busy stream
    /// cannot starve the others.
    pub(in crate::proxy) fn drive(&mut self, ck: Key, now: Instant) {
        for _ in 0..32 {
            match self.pump(ck, now) {
                Pump::Progress => continue,
                Pump::Blocked => return,
                Pump::Close => {
                    self.close_client(ck, now);
                    return;
                }
            }
        }
        self.again.push(ck);
    }

    fn pump(&mut self, ck: Key, now: Instant) -> Pump {
        let EventLoop { clients, net, .. } = self;
        let scratch = &mut net.scratch;
        let Some(c) = clients.get_mut(ck) else {
            return Pump::Blocked;
        };
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
                        match crate::proxy::event::io::read_into(&mut c.sock, &mut c.inbuf, scratch) {
                            IoOutcome::Progress(_) => {}
                            IoOutcome::WouldBlock => c.can_read = false,
                            IoOutcome::Closed | IoOutcome::Error(_) => return Pump::Close,
                        }
                    }
                }
                Some(false)
            }
            ClientPhase::ReadingHead => self.pump_head(ck, now),
            ClientPhase::Waiting { .. } => Some(false),
            ClientPhase::Exchange(_) => self.pump_exchange(ck, now),
        };
        match step {
            None => Pump::Close,
            Some(p) if p || progress => Pump::Progress,
            Some(_) => Pump::Blocked,
        }
    }

    /// Read and parse a request head. `None`: close the connection.
    fn pump_head(&mut self, ck: Key, now: Instant) -> Option<bool> {
        let c = self.clients.get_mut(ck)?;
        let peer = c.peer;
        match c.read_head(&mut self.net.scratch, now) {
            HeadStep::Moved(progress) => Some(progress),
            HeadStep::Gone => None,
            HeadStep::Bad(e) => {
                self.sh.stats.bad_requests += 1;
                if let Some(n) = self.sh.refusals.may_log(now) {
                    log::info!("bad request from {peer}: {e}{}", crate::proxy::client::refusals::suppressed_note(n));
                }
                self.respond_local_error(ck, e.status(), &e.to_string(), now);
                Some(true)
            }
            HeadStep::Head(head) => {
                self.start_exchange(ck, head, now);
                Some(true)
            }
        }
    }

    fn start_exchange(&mut self, ck: Key, mut head: crate::http::RequestHead, now: Instant) {
        let cors = match self.sh.gate.check(&head) {
            Verdict::Pass { cors } => cors,
            Verdict::Preflight(bytes) => {
                if let Some(c) = self.clients.get_mut(ck) {
                    c.out.push_local(&bytes);
                    c.since = now;
                }
                // A preflight has no body; if one is announced, close rather than parse it as a head.
                if !head.keep_alive || head.framing != BodyFraming::None {
                    self.end_exchange(ck, true, now);
                }
                return;
            }
            Verdict::Refuse(status, msg) => {
                if let Some(peer) = self.clients.get(ck).map(|c| c.peer) {
                    self.sh.log_refused(&head, peer, &format!("{msg} -> {status}"), now);
                }
                self.sh.stats.forbidden += 1;
                self.respond_local_error(ck, status, &msg, now);
                return;
            }
        };
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
            (admin || metrics) && crate::proxy::client::keys::has_control_token(&head, &self.sh.control_token);
        let Some(peer) = self.clients.get(ck).map(|c| c.peer) else { return };
        let caller = match control {
            true => Ok(Caller::AccessKey),
            false => self.sh.authenticate(&mut head, peer, page, now),
        };
        let caller = match caller {
            Ok(caller) => caller,
            Err((status, msg)) => return self.respond_local_error(ck, status, &msg, now),
        };
        if (admin || metrics) && !page {
            if let Caller::Key(k) = caller {
                let e = self.sh.keys.iter().nth(k).map(|k| &k.entry);
                if let Some(e) = e.filter(|e| !e.admin) {
                    let msg =
                        format!("key '{}' may not use the admin pages (`qcc key set {} --admin`)", e.name, e.name);
                    self.sh.log_refused(&head, peer, &format!("{msg} -> 403"), now);
                    self.sh.stats.forbidden += 1;
                    self.respond_local_error(ck, 403, &msg, now);
                    return;
                }
            }
        }
        if admin {
            self.serve_admin(ck, &head, caller, now);
            return;
        }
        if metrics {
            if self.refuse_local_reply(ck, 0, now) {
                return;
            }
            let text = self.sh.metrics_text(&self.conns(), now);
            let status = if get { 200 } else { 405 };
            self.respond_admin(ck, &head, status, "text/plain; version=0.0.4; charset=utf-8", text.as_bytes(), now);
            return;
        }
        self.sh.stats.total += 1;
        if let BodyFraming::Length(n) = head.framing {
            if n > self.sh.settings.max_body {
                self.sh.stats.rejected += 1;
                log::info!("{} {} -> 413 (body of {n} bytes)", head.method(), head.target());
                let msg = format!("request body of {n} bytes is over the limit of {} bytes", self.sh.settings.max_body);
                self.respond_local_error(ck, 413, &msg, now);
                return;
            }
        }
        let Some(c) = self.clients.get_mut(ck) else {
            return;
        };
        if head.expect_continue && !matches!(head.framing, BodyFraming::None | BodyFraming::Length(0)) {
            c.out.push(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        c.since = now;
        let out_start = c.out.pushed();
        let session = crate::proxy::upstream::affinity::session_of(head.headers());
        c.phase = ClientPhase::Exchange(Box::new(Exchange {
            body_tracker: BodyTracker::for_request(head.framing, self.sh.settings.max_body),
            keep_alive: head.keep_alive && self.draining.is_none(),
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
            route: None,
            served_by: None,
            model: None,
        }));
        // Within its key's limits, the first attempt starts in pump_exchange, once the body bytes
        // already read are in the exchange: a small request then goes upstream in one write.
        let refused = match self.clients.get_mut(ck).map(|c| &mut c.phase) {
            Some(ClientPhase::Exchange(ex)) => self.sh.admit(ex, caller, now).err(),
            _ => None,
        };
        if let Some(r) = refused {
            self.respond_refusal(ck, 429, &r.message, r.retry_after_secs, now);
        }
    }

    /// One pump of a request in progress. `None`: close the client connection.
    fn pump_exchange(&mut self, ck: Key, now: Instant) -> Option<bool> {
        let mut progress = false;
        // Request body: client -> exchange.body (kept whole for retries).
        let may_grow = self.body_may_grow(ck, now);
        let (max_body, idle) = (self.sh.settings.max_body, self.sh.settings.idle_timeout);
        let step = match self.clients.get_mut(ck) {
            Some(c) => c.read_body(may_grow, max_body, idle, &mut self.net.scratch, now),
            None => BodyStep::Gone,
        };
        match step {
            BodyStep::Moved(p) => progress |= p,
            BodyStep::Reject(status, msg) => return self.reject_in_exchange(ck, status, &msg, now),
            BodyStep::Gone => return None,
        }
        // The first attempt waits for the whole body when an endpoint may rewrite it or the key's
        // budgets need its estimate (`reserve.rs`).
        let first = match self.clients.get(ck).map(|c| &c.phase) {
            Some(ClientPhase::Exchange(ex)) if ex.attempts == 0 => {
                let budgeted = ex.key.as_ref().is_some_and(|t| t.budgeted);
                ex.body_tracker.is_done() || !(budgeted || self.rewrites_bodies())
            }
            _ => false,
        };
        if first {
            let refused = match self.clients.get_mut(ck).map(|c| &mut c.phase) {
                Some(ClientPhase::Exchange(ex)) => self.sh.reserve(ex).err(),
                _ => None,
            };
            if let Some(r) = refused {
                self.respond_refusal(ck, 429, &r.message, r.retry_after_secs, now);
                return Some(true);
            }
            self.start_attempt(ck, now);
            progress = true;
        }
        match self.pump_attempt(ck, now) {
            AttemptEvent::Nothing => {}
            AttemptEvent::Progress => progress = true,
            AttemptEvent::Failed(Failure::Connect(_)) if self.next_address(ck, now) => progress = true,
            AttemptEvent::Failed(f) => {
                self.fail_attempt(ck, f, now);
                progress = true;
            }
            AttemptEvent::Complete { reuse } => {
                self.finish_exchange(ck, reuse, now);
                progress = true;
            }
            AttemptEvent::Stale => {
                self.replace_stale(ck, now);
                progress = true;
            }
        }
        // The attempt's deadline moves with its phase (head sent, bytes relayed): keep the
        // sweep due no later than it.
        if let Some(ClientPhase::Exchange(ex)) = self.clients.get(ck).map(|c| &c.phase) {
            if let Some(d) = ex.attempt.as_ref().map(|a| a.deadline) {
                self.arm(d);
            }
        }
        Some(progress)
    }

    /// Whether some endpoint renames models or translates, or routes read requests: a request
    /// then waits for its whole body before its first attempt, since the body may have to be
    /// rewritten for the endpoint picked, or decides the cluster.
    fn rewrites_bodies(&self) -> bool {
        !self.sh.clusters[0].routes.is_empty()
            || self.sh.endpoints.iter().any(|e| !e.retired && (!e.cfg.model_map.is_empty() || e.cfg.format.is_openai()))
    }

    /// Send a local error for the request in progress (never after a response has started),
    /// then close the connection. Returns the pump verdict.
    pub(in crate::proxy) fn reject_in_exchange(
        &mut self,
        ck: Key,
        status: u16,
        msg: &str,
        now: Instant,
    ) -> Option<bool> {
        let responded = match self.clients.get(ck).map(|c| &c.phase) {
            Some(ClientPhase::Exchange(ex)) => ex.responded(),
            _ => false,
        };
        if responded {
            return None;
        }
        self.sh.stats.rejected += 1;
        log::info!("request rejected -> {status}: {msg}");
        self.respond_local_error(ck, status, msg, now);
        Some(true)
    }

    /// Answer with a local error and close after writing it; abandons any exchange.
    pub(in crate::proxy) fn respond_local_error(&mut self, ck: Key, status: u16, msg: &str, now: Instant) {
        self.respond_refusal(ck, status, msg, None, now);
    }

    /// `respond_local_error` with a `retry-after` (a client key's limit).
    pub(in crate::proxy) fn respond_refusal(
        &mut self,
        ck: Key,
        status: u16,
        msg: &str,
        retry_after: impl Into<Option<u64>>,
        now: Instant,
    ) {
        let Some(c) = self.clients.get_mut(ck) else {
            return;
        };
        let old = std::mem::replace(&mut c.phase, ClientPhase::Closing);
        c.since = now;
        let mut bytes = Vec::new();
        wire::error_response_after(status, msg, retry_after.into(), true, &mut bytes);
        if c.answering_head {
            wire::head_only(&mut bytes);
        }
        c.out.push_local(&bytes);
        let pushed = c.out.pushed();
        self.arm(now + LINGER); // (the connection closes once this is out, or then)
        if let ClientPhase::Exchange(ex) = old {
            // A request qcc answered itself (408, 413, 503 ...) is a request of the access log too.
            self.sh.record_request(&ex, None, Ended::Status(status), pushed - ex.out_start, now);
            self.release_attempt(*ex);
        }
    }

    /// The exchange is over; the client connection reads its next request or closes.
    pub(in crate::proxy) fn end_exchange(&mut self, ck: Key, close: bool, now: Instant) {
        let Some(c) = self.clients.get_mut(ck) else {
            return;
        };
        c.since = now;
        c.answering_head = false;
        // The client said this request was its last and it was read to its end: nothing more
        // will come, so the connection closes at once once the response is out.
        let last = matches!(&c.phase, ClientPhase::Exchange(ex) if !ex.head.keep_alive && ex.body_tracker.is_done());
        c.peer_done = close && last;
        c.phase = if close { ClientPhase::Closing } else { ClientPhase::ReadingHead };
        if close {
            self.arm(now + LINGER);
        } else {
            self.arm(now + self.sh.settings.idle_timeout.min(self.sh.settings.header_timeout));
        }
    }

    /// The client went away (or the exchange was cut short): close its upstream, blame no one.
    pub(in crate::proxy) fn abandon_exchange(&mut self, mut ex: Exchange, out: u64, now: Instant) {
        self.sh.stats.aborted += 1;
        log::info!("{} {} aborted by the client", ex.head.method(), ex.head.target());
        let endpoint = ex.attempt.as_ref().map(|a| a.endpoint);
        self.sh.record_request(&ex, endpoint, Ended::Aborted, out, now);
        self.net.drain_for_usage(&mut self.sh, &mut ex, now); // charged all the same (`answer/drain.rs`)
        self.release_attempt(ex);
    }

    pub(in crate::proxy) fn release_attempt(&mut self, mut ex: Exchange) {
        if let Some(a) = ex.attempt.take() {
            if let Some(k) = a.up {
                self.net.close_upstream(&mut self.sh, k);
            }
        }
    }
}
