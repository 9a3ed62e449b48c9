//! The upstream side of an exchange: attempts. Pick an endpoint, connect (or reuse a pooled
//! connection), then the exchange pumps it (`pump.rs`: send the request, relay the response or
//! hold a failed one), and deadlines, stale connections and lookups move it on.
//!
//! A request can be sent again to another endpoint until the first byte of a response has
//! been queued for the client (`Exchange::responded()`); after that a failure ends the
//! client's response visibly (the connection is closed).

use std::time::Instant;

use crate::proxy::client::conn::{attempt_mut, Conn};
use crate::proxy::clusters::eligibility;
use crate::proxy::eligibility::Reason;
use crate::proxy::forward::response::release_hold;
use crate::proxy::scan::translation::Translation;
use crate::proxy::state::*;
use crate::proxy::upstream::net::Net;
use crate::proxy::wire;
use crate::translate;

/// Endpoints passed over that one request's history names, at most.
const MAX_SKIPPED_SHOWN: usize = 8;

impl Conn<'_> {
    /// Move bytes between this connection's exchange and its upstream connection.
    pub(in crate::proxy) fn pump_attempt(&mut self, now: Instant) -> AttemptEvent {
        let Client { out, phase: ClientPhase::Exchange(ex), .. } = &mut *self.c else {
            return AttemptEvent::Nothing;
        };
        let Net { upstreams, scratch, .. } = &mut *self.net;
        let Some(up) = ex.attempt.as_ref().and_then(|a| a.up.as_ref()).and_then(|l| upstreams.get_mut(l.key())) else {
            return AttemptEvent::Nothing;
        };
        ex.pump_upstream(out, up, self.sh, scratch, now)
    }

    /// Pick an endpoint and start a new attempt (or answer 503 when there is none).
    pub(in crate::proxy) fn start_attempt(&mut self, now: Instant) {
        if self.load_named() {
            return; // its cluster (named by its URL) is being loaded: `named_loaded` goes on
        }
        let ClientPhase::Exchange(ex) = &mut self.c.phase else {
            return;
        };
        let first = ex.attempts == 0 && ex.body_tracker.is_done() && ex.retry_copy;
        if first {
            self.sh.read_request(ex);
        }
        let ClientPhase::Exchange(ex) = &self.c.phase else {
            return;
        };
        // A token count or the model list that no endpoint of its own format can answer now is
        // answered by the format that cannot take it (an estimate, the mapped models), never
        // sent there as a chat request.
        if ex.attempts == 0 && translate::some_dialect_answers(ex.head.path_bytes()) {
            let (usable, dialect, _) = self.chances(now);
            if let (false, Some(format)) = (usable, dialect) {
                if translate::answers_locally(&format, ex.head.path_bytes()) {
                    self.answer_locally(&format);
                    return;
                }
            }
        }
        let chosen = self.sh.pick(ex, now);
        if let Some(ep) = chosen.and_then(|i| self.sh.endpoints.get_mut(i)) {
            ep.probe_by_request = false; // (this request is its probe, if one was due)
        }
        let Some(idx) = chosen else {
            self.nowhere_to_go(now);
            return;
        };
        // Said in the request's history: at its first attempt, the endpoints of its chain passed
        // over, and why; in its log line, one ahead of the one picked (its session's, or of a
        // better priority) passed over only because its rate limit is used up.
        let cluster = self.sh.endpoints[idx].cluster;
        let ClientPhase::Exchange(ex) = &mut self.c.phase else {
            return;
        };
        let pin = ex.session.as_deref().and_then(|s| self.sh.affinity.peek(cluster, s));
        let chosen_priority = self.sh.endpoints[idx].cfg.priority;
        let (endpoints, clusters, failures) = (&self.sh.endpoints, &self.sh.clusters, &self.sh.failures);
        let mut headroom_skip = None;
        for (i, e) in endpoints.iter().enumerate().filter(|&(i, _)| i != idx) {
            let Some(why) = eligibility(ex, i, e, clusters, failures, now).reason() else { continue };
            if why == Reason::NoHeadroom
                && headroom_skip.is_none()
                && e.cluster == cluster
                && (e.cfg.priority < chosen_priority || pin == Some(i))
            {
                headroom_skip = Some(i);
            }
            if ex.attempts == 0 && !matches!(why, Reason::OtherCluster) && ex.skipped.len() < MAX_SKIPPED_SHOWN {
                ex.skipped.push((i, why));
            }
        }
        if headroom_skip.is_some() {
            ex.headroom_skip = headroom_skip;
        }
        // What its `--tpm` hold needs (made once, with the request's one read).
        let estimate = self.sh.endpoints[idx].cfg.caps.tpm.map(|_| ex.estimate(&self.sh.settings.prices).tokens);
        let ep = &mut self.sh.endpoints[idx];
        let served_by = self.sh.clusters[cluster].header.as_ref();
        let seed = self.sh.stats.total;
        let mut untranslatable = None;
        if let ClientPhase::Exchange(ex) = &mut self.c.phase {
            // This endpoint's name for the model the client asked for, or the request translated
            // for an OpenAI-format endpoint (the whole body is here: `pump_exchange` waits for it
            // when the cluster maps models or translates).
            let (mapped, translation) = if translate::rewrites(&ep.cfg.format) {
                let made = ex.take_chat(idx);
                match Translation::start(&ep.cfg, ex.json_body(), made, seed, ex.head.version_minor == 0) {
                    Ok((m, t)) => (Some(Box::new(m)), Some(Box::new(t))),
                    Err(e) => {
                        untranslatable = Some(e);
                        (None, None)
                    }
                }
            } else if ex.body_tracker.is_done() && ex.retry_copy {
                let m = crate::proxy::scan::mapping::rewrite(
                    &ep.cfg,
                    ex.head.framing,
                    &ex.body,
                    ex.facts.model(),
                    ex.facts.fields(),
                );
                (m.map(Box::new), None)
            } else {
                (None, None)
            };
            if untranslatable.is_none() {
                let len = mapped.as_ref().map_or(ex.body.len(), |m| m.len(&ex.body));
                // A complete small body rides in the same write as the head.
                let folded = if ex.body_tracker.is_done() && len <= FOLD_BODY_MAX { len } else { 0 };
                // Room for what the head gains (Host, the key twice, framing): one allocation.
                let mut head_out = Vec::with_capacity(ex.head.raw.len() + 2 * ep.cfg.api_key.len() + 160 + folded);
                let length = mapped.as_ref().map(|m| m.len(&ex.body) as u64);
                let tag = ex.facts.model().and_then(|m| crate::store::models::untagged(&m.name).1);
                let tag_beta = tag.and_then(crate::store::models::tag_beta);
                wire::upstream_request_head(&ex.head, &ep.cfg, length, tag_beta, &mut head_out);
                if self.sh.settings.log_bodies.is_some() {
                    let log = ex.body_log.get_or_insert_with(|| {
                        Box::new(crate::proxy::record::bodies::BodyLog::new(&ex.head.raw, ex.facts.json_body(&ex.body)))
                    });
                    let sent = mapped.as_ref().map_or_else(|| ex.body.clone(), |m| m.whole_body(&ex.body));
                    log.attempt(&ep.cfg.label(), &ep.cfg.api_key, &head_out, &sent);
                }
                let head_len = head_out.len();
                while head_out.len() - head_len < folded {
                    let at = head_out.len() - head_len;
                    let piece = mapped.as_ref().map_or(&ex.body[at..], |m| m.piece(&ex.body, at));
                    if piece.is_empty() {
                        break;
                    }
                    head_out.extend_from_slice(&piece[..piece.len().min(folded - at)]);
                }
                ex.tried.insert(idx);
                if ex.served_by.as_ref().map(std::rc::Rc::as_ptr) != served_by.map(std::rc::Rc::as_ptr) {
                    ex.served_by = served_by.cloned();
                }
                ep.load.start(&ep.cfg.caps, now);
                let tpm_held = estimate.and_then(|tokens| ep.load.hold(&ep.cfg.caps, tokens));
                ex.attempts += 1;
                ex.model_mapped = mapped.as_ref().filter(|m| m.from != m.to).map(|m| (m.from.clone(), m.to.clone()));
                ex.last_start = Some(now);
                ex.attempt = Some(Attempt {
                    _in_flight: InFlight::start(&ep.in_flight),
                    _tpm_held: tpm_held,
                    endpoint: idx,
                    up: None,
                    phase: AttemptPhase::Resolving,
                    started: now,
                    deadline: now + timeout_of(&ep.cfg),
                    head_out,
                    head_sent: 0,
                    body_sent: folded,
                    folded,
                    resp: None,
                    resp_body: None,
                    head_elapsed: Default::default(),
                    fresh_retry_used: false,
                    addrs_tried: 0,
                    mapped,
                    translation,
                    scan: None,
                    hold_until: None,
                });
            }
        }
        if let Some(e) = untranslatable {
            self.sh.stats.bad_requests += 1;
            self.respond_local_error(400, &e, now);
            return;
        }
        self.connect_attempt(true, now);
    }

    /// Give the current attempt a connection: a pooled one when allowed, else a new one
    /// (or wait for the resolver).
    pub(in crate::proxy) fn connect_attempt(&mut self, allow_pooled: bool, now: Instant) {
        let idx = match &self.c.phase {
            ClientPhase::Exchange(ex) => match ex.attempt.as_ref() {
                Some(a) => a.endpoint,
                None => return,
            },
            _ => return,
        };
        let owner = Owner::Client(self.key);
        let pooled = if allow_pooled { self.net.take_pooled(&mut self.sh.endpoints, idx, owner, now) } else { None };
        let Some(a) = attempt_mut(self.c) else { return };
        let ep = &mut self.sh.endpoints[idx];
        let timeout = timeout_of(&ep.cfg);
        if ep.resolved_at.is_some_and(|t| now.duration_since(t) > DNS_TTL) {
            self.net.resolver.lookup(idx, ep);
        }
        if let Some(lease) = pooled {
            a.up = Some(lease);
            a.phase = AttemptPhase::Sending;
            a.deadline = now + timeout;
            let d = a.deadline;
            self.net.arm(d);
            return;
        }
        if ep.addrs.is_empty() {
            self.net.resolver.lookup(idx, ep);
            a.phase = AttemptPhase::Resolving;
            a.deadline = now + timeout;
            let d = a.deadline;
            self.net.arm(d);
            return;
        }
        let lease = match self.net.open_upstream(&mut self.sh.endpoints, idx, owner, now) {
            Ok(lease) => lease,
            Err(crate::proxy::upstream::pool::OpenError::Endpoint(e)) => {
                self.fail_attempt(Failure::Connect(e), now);
                return;
            }
            Err(crate::proxy::upstream::pool::OpenError::Local(e)) => {
                // Out of descriptors or memory: our fault, not the endpoint's. 503, nobody blamed.
                log::warn!("cannot open an upstream connection: {e} -> 503");
                if let ClientPhase::Exchange(ex) = &mut self.c.phase {
                    ex.attempt = None;
                }
                self.sh.stats.rejected += 1;
                self.respond_local_error(503, "the proxy is out of file descriptors; try again", now);
                return;
            }
        };
        let Some(a) = attempt_mut(self.c) else {
            self.net.close_upstream(&mut self.sh.endpoints, lease);
            return;
        };
        a.up = Some(lease);
        a.addrs_tried += 1;
        a.phase = AttemptPhase::Connecting;
        a.deadline = now + timeout.min(CONNECT_TIMEOUT);
        let d = a.deadline;
        self.net.arm(d);
    }

    /// A connect failed: move on to the endpoint's next resolved address within the same attempt
    /// and deadline (a simple, sequential Happy Eyeballs), so one unreachable A or AAAA record
    /// does not pin the endpoint as failed. False when every address was tried.
    pub(in crate::proxy) fn next_address(&mut self, now: Instant) -> bool {
        let Some(a) = attempt_mut(self.c) else { return false };
        let ep = &mut self.sh.endpoints[a.endpoint];
        if a.phase != AttemptPhase::Connecting || a.addrs_tried >= ep.addrs.len() || a.deadline <= now {
            return false;
        }
        log::debug!("endpoint {}: connect failed, trying its next address", ep.cfg.label());
        ep.next_addr = ep.next_addr.wrapping_add(1);
        let (idx, old) = (a.endpoint, a.up.take());
        if let Some(lease) = old {
            self.net.close_upstream(&mut self.sh.endpoints, lease);
        }
        let Ok(lease) = self.net.open_upstream(&mut self.sh.endpoints, idx, Owner::Client(self.key), now) else {
            return false;
        };
        match attempt_mut(self.c) {
            Some(a) => {
                a.up = Some(lease);
                a.addrs_tried += 1;
            }
            None => self.net.close_upstream(&mut self.sh.endpoints, lease),
        }
        true
    }

    /// A pooled connection was dead: retry the same attempt on a fresh one, blaming no one.
    pub(in crate::proxy) fn replace_stale(&mut self, now: Instant) {
        let Some(a) = attempt_mut(self.c) else { return };
        let old = a.up.take();
        self.sh.stats.stale_retries += 1;
        a.fresh_retry_used = true;
        a.head_sent = 0;
        a.body_sent = a.folded;
        a.resp = None;
        a.resp_body = None;
        if let Some(t) = a.translation.as_mut() {
            t.restart();
        }
        if let Some(k) = old {
            self.net.close_upstream(&mut self.sh.endpoints, k);
        }
        log::debug!("pooled upstream connection was closed; retrying on a new one");
        self.connect_attempt(false, now);
    }

    /// The current attempt's deadline passed. True: the connection is to be closed (its
    /// client stopped reading).
    pub(in crate::proxy) fn on_exchange_deadline(&mut self, now: Instant) -> bool {
        let ClientPhase::Exchange(ex) = &self.c.phase else {
            return false;
        };
        let Some(a) = ex.attempt.as_ref() else {
            self.respond_local_error(408, "request not received in time", now);
            return false;
        };
        if a.deadline > now {
            return false;
        }
        // The upstream is not being read while the client's backlog is full (backpressure): its
        // silence is ours, not a fault. Only a client that takes nothing for --idle-timeout ends
        // the exchange, as the client's doing (aborted; no endpoint blamed).
        if a.phase == AttemptPhase::Relaying && self.c.out.len() >= CLIENT_OUT_HIGH {
            if now.duration_since(self.c.last_taken) >= self.sh.settings.idle_timeout {
                log::info!("client stopped reading for --idle-timeout: closing its connection");
                return true;
            }
            let next = now + self.sh.settings.stream_idle_timeout.min(self.sh.settings.idle_timeout);
            if let Some(a) = attempt_mut(self.c) {
                a.deadline = next;
            }
            self.net.arm(next);
            return false;
        }
        // A held stream whose first content is slow (long thinking sends pings): released, so the
        // client sees them, and relayed from now on.
        if a.phase == AttemptPhase::Priming && a.hold_until.is_some_and(|h| h <= now) {
            let idle = self.sh.settings.stream_idle_timeout;
            let c = &mut *self.c;
            if let ClientPhase::Exchange(ex) = &mut c.phase {
                release_hold(ex, &mut c.out, now, idle);
            }
            self.net.arm(now + idle);
            return false;
        }
        let failure = match a.phase {
            AttemptPhase::Resolving | AttemptPhase::Connecting => Failure::Timeout(a.phase),
            AttemptPhase::Sending if !a.request_sent(&ex.body, ex.body_tracker.is_done()) => {
                if !ex.responded() {
                    self.sh.stats.rejected += 1;
                    self.respond_local_error(408, "request body not received in time", now);
                }
                return false;
            }
            phase => Failure::Timeout(phase),
        };
        self.fail_attempt(failure, now);
        false
    }
}

impl Attempt {
    /// The length of the body this attempt sends: its mapped one (`mapping.rs`), or the client's.
    pub fn body_len(&self, client: &[u8]) -> usize {
        self.mapped.as_ref().map_or(client.len(), |m| m.len(client))
    }

    /// The body this attempt sends, from `offset` on (up to a seam of a mapped one).
    pub fn body_piece<'a>(&'a self, client: &'a [u8], offset: usize) -> &'a [u8] {
        match &self.mapped {
            Some(m) => m.piece(client, offset),
            None => &client[offset.min(client.len())..],
        }
    }

    /// Everything the client has sent, head and complete body, has gone upstream.
    pub fn request_sent(&self, client_body: &[u8], body_done: bool) -> bool {
        body_done && self.head_sent == self.head_out.len() && self.body_sent == self.body_len(client_body)
    }
}
