//! The upstream side of an exchange: attempts. Pick an endpoint, connect (or reuse a pooled
//! connection), send the request, then relay the response or hold a failed one and retry.
//!
//! A request can be sent again to another endpoint until the first byte of a response has
//! been queued for the client (`Exchange::responded`); after that a failure ends the
//! client's response visibly (the connection is closed).

use std::time::Instant;

use super::io::IoOutcome;
use super::slab::Key;
use super::state::*;
use super::transport::Transport;
use super::{wire, EventLoop};
use crate::http::{parse_response_head, BodyFraming, BodyTracker, MAX_HEAD_BYTES};
use crate::policy::balancer::Candidate;

/// What happened to the current attempt during a pump.
pub(super) enum AttemptEvent {
    Nothing,
    Progress,
    Failed(Failure),
    /// The response is complete; `reuse`: the upstream connection may go back to the pool.
    Complete {
        reuse: bool,
    },
    /// A pooled connection turned out to be closed before answering.
    Stale,
}

/// 5xx, 429, 401 and 403 are the endpoint's fault; other statuses are the client's business.
pub fn is_blamed(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504 | 529 | 429 | 401 | 403)
}

/// An answer that says the endpoint works (a success or a redirect). Every other status that is
/// not blamed (400, 404, 422, 501, 505 ...) is the upstream's answer to this request: relayed,
/// and says nothing about the endpoint either way.
fn proves_healthy(status: u16) -> bool {
    (200..400).contains(&status)
}

impl EventLoop {
    /// Move bytes between the exchange and its upstream connection.
    pub(super) fn pump_attempt(&mut self, ck: Key, now: Instant) -> AttemptEvent {
        let stream_idle = self.settings.stream_idle_timeout;
        let stream_hold = self.settings.stream_hold;
        let EventLoop { clients, upstreams, endpoints, scratch, .. } = self;
        let Some(c) = clients.get_mut(ck) else {
            return AttemptEvent::Nothing;
        };
        let Client { out, phase, .. } = c;
        let ClientPhase::Exchange(ex) = phase else {
            return AttemptEvent::Nothing;
        };
        let Some(a) = ex.attempt.as_mut() else {
            return AttemptEvent::Nothing;
        };
        let Some(up) = a.up.and_then(|k| upstreams.get_mut(k)) else {
            return AttemptEvent::Nothing;
        };
        let timeout = timeout_of(&endpoints[a.endpoint].cfg);
        // A 200 stream is held before its first content only when a retry elsewhere is possible.
        let hold = (!stream_hold.is_zero()
            && ex.retry_copy
            && ex.attempts < MAX_ATTEMPTS
            && endpoints
                .iter()
                .enumerate()
                .any(|(i, ep)| i != a.endpoint && ep.cfg.enabled && !ep.retired && !ex.reached.contains(&i)))
        .then_some(stream_hold);
        let mut progress = false;

        if a.phase == AttemptPhase::Connecting {
            if !up.can_write {
                return AttemptEvent::Nothing;
            }
            let sock = up.transport.socket();
            match sock.take_error() {
                Ok(Some(e)) | Err(e) => return AttemptEvent::Failed(Failure::Connect(e.to_string())),
                Ok(None) => {}
            }
            match sock.peer_addr() {
                Ok(_) => {
                    up.connected = true;
                    a.phase = AttemptPhase::Sending;
                    a.deadline = now + timeout;
                    progress = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
                    up.can_write = false;
                    return AttemptEvent::Nothing;
                }
                Err(e) => return AttemptEvent::Failed(Failure::Connect(e.to_string())),
            }
        }

        // Request: head, then the body as far as it has arrived.
        let mut write_failed = false;
        while up.can_write && a.phase != AttemptPhase::Holding {
            let data: &[u8] = if a.head_sent < a.head_out.len() {
                &a.head_out[a.head_sent..]
            } else if a.body_sent < ex.body.len() {
                &ex.body[a.body_sent..]
            } else {
                break;
            };
            match up.transport.write(data) {
                IoOutcome::Progress(n) => {
                    if a.head_sent < a.head_out.len() {
                        a.head_sent += n;
                    } else {
                        a.body_sent += n;
                    }
                    progress = true;
                    if a.phase == AttemptPhase::Sending && a.request_sent(ex.body.len(), ex.body_tracker.is_done()) {
                        a.deadline = now + timeout; // the response-head clock starts now
                    }
                }
                IoOutcome::WouldBlock => up.can_write = false,
                IoOutcome::Closed | IoOutcome::Error(_) => {
                    // The upstream may have answered already (an early 413, say): read first.
                    write_failed = true;
                    break;
                }
            }
        }
        ex.drop_sent_body(); // only without a retry copy (the memory budget gave it up)
        if up.can_write && up.transport.wants_write() {
            match up.transport.flush() {
                IoOutcome::Progress(_) => progress = true,
                IoOutcome::WouldBlock => up.can_write = false,
                IoOutcome::Closed | IoOutcome::Error(_) => write_failed = true,
            }
        }
        let relaying_blocked = |ex: &Exchange, out: &super::io::OutBuf| {
            ex.attempt.as_ref().is_some_and(|a| a.phase == AttemptPhase::Relaying) && out.len() >= CLIENT_OUT_HIGH
        };

        // Response: read while the client can take it (backpressure: its pace sets ours).
        let mut eof = false;
        while up.can_read && !relaying_blocked(ex, out) {
            match up.transport.read(&mut up.inbuf, scratch) {
                IoOutcome::Progress(n) => {
                    progress = true;
                    let plain = matches!(up.transport, Transport::Plain(_));
                    if plain && super::io::drained(n, scratch.len(), up.hup) {
                        up.can_read = false;
                    }
                }
                IoOutcome::WouldBlock => up.can_read = false,
                IoOutcome::Closed => {
                    eof = true;
                    up.can_read = false;
                }
                IoOutcome::Error(e) => {
                    let got_head = ex.attempt.as_ref().is_some_and(|a| a.resp.is_some());
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        return AttemptEvent::Failed(Failure::Tls(e.to_string()));
                    }
                    if !got_head && up.inbuf.is_empty() && is_stale(ex, up) {
                        return AttemptEvent::Stale;
                    }
                    if ex
                        .attempt
                        .as_ref()
                        .is_some_and(|a| matches!(a.phase, AttemptPhase::Holding | AttemptPhase::Priming))
                    {
                        ex.stash = None;
                    }
                    return AttemptEvent::Failed(Failure::Closed(if got_head {
                        "reset mid-body"
                    } else {
                        "reset before response head"
                    }));
                }
            }
            if let Some(ev) = process_response(ex, up, out, now, stream_idle, hold) {
                return ev;
            }
            if up.transport.wants_write() && up.can_write {
                let _ = up.transport.flush();
            }
        }
        if let Some(ev) = process_response(ex, up, out, now, stream_idle, hold) {
            return ev;
        }
        let stale = is_stale(ex, up);
        let Some(a) = ex.attempt.as_mut() else {
            return AttemptEvent::Nothing;
        };
        if eof {
            return match (a.phase, a.resp_body.as_ref()) {
                (AttemptPhase::Relaying, Some(BodyTracker::UntilClose)) => AttemptEvent::Complete { reuse: false },
                (AttemptPhase::Holding, Some(BodyTracker::UntilClose)) => {
                    let status = a.resp.as_ref().map_or(502, |h| h.status);
                    AttemptEvent::Failed(Failure::Status(status))
                }
                (AttemptPhase::Holding, _) => {
                    ex.stash = None;
                    AttemptEvent::Failed(Failure::Closed("mid-body"))
                }
                (AttemptPhase::Priming, _) => {
                    ex.stash = None;
                    AttemptEvent::Failed(Failure::Closed("stream ended before any content"))
                }
                (AttemptPhase::Relaying, _) => AttemptEvent::Failed(Failure::Closed("mid-body")),
                _ if stale && up.inbuf.is_empty() => AttemptEvent::Stale,
                _ => AttemptEvent::Failed(Failure::Closed("before response head")),
            };
        }
        if write_failed && a.resp.is_none() {
            if stale {
                return AttemptEvent::Stale;
            }
            return AttemptEvent::Failed(Failure::Closed("while sending the request"));
        }
        if progress {
            AttemptEvent::Progress
        } else {
            AttemptEvent::Nothing
        }
    }

    /// Pick an endpoint and start a new attempt (or answer 503 when there is none).
    pub(super) fn start_attempt(&mut self, ck: Key, now: Instant) {
        let candidates: Vec<(usize, Candidate)>;
        let sticky: Option<usize>;
        {
            let Some(ClientPhase::Exchange(ex)) = self.clients.get(ck).map(|c| &c.phase) else {
                return;
            };
            // A session stays where its prompt cache is, while that endpoint is usable and this
            // request has not tried it yet.
            sticky = ex.session.as_deref().and_then(|s| self.affinity.lookup(s, now)).filter(|&i| {
                !ex.tried.contains(&i) && self.endpoints.get(i).is_some_and(|ep| ep.routable(&self.failures, now))
            });
            candidates = self
                .endpoints
                .iter()
                .enumerate()
                .filter(|(_, ep)| ep.cfg.enabled && !ep.retired)
                .map(|(i, ep)| {
                    (
                        i,
                        Candidate {
                            priority: ep.cfg.priority,
                            weight: ep.cfg.weight,
                            in_flight: ep.health.in_flight,
                            usable: ep.routable(&self.failures, now),
                            tried: ex.tried.contains(&i),
                            reached: ex.reached.contains(&i),
                        },
                    )
                })
                .collect();
        }
        let list: Vec<Candidate> = candidates.iter().map(|(_, c)| *c).collect();
        let idx = match sticky {
            Some(i) => i,
            None => match self.balancer.pick(&list) {
                Some(pick) => candidates[pick].0,
                None => {
                    self.stats.rejected += 1;
                    self.respond_local_error(ck, 503, "No available endpoints", now);
                    return;
                }
            },
        };
        let ep = &mut self.endpoints[idx];
        ep.health.begin();
        let mut head_out = Vec::new();
        if let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) {
            wire::upstream_request_head(&ex.head, &ep.cfg, &mut head_out);
            // A complete small body rides in the same write as the head.
            let folded = if ex.body_tracker.is_done() && ex.body.len() <= FOLD_BODY_MAX { ex.body.len() } else { 0 };
            head_out.extend_from_slice(&ex.body[..folded]);
            ex.tried.push(idx);
            ex.attempts += 1;
            ex.attempt = Some(Attempt {
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
                scan: None,
                hold_until: None,
            });
        }
        self.connect_attempt(ck, true, now);
    }

    /// Give the current attempt a connection: a pooled one when allowed, else a new one
    /// (or wait for the resolver).
    pub(super) fn connect_attempt(&mut self, ck: Key, allow_pooled: bool, now: Instant) {
        let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) else {
            return;
        };
        let Some(a) = ex.attempt.as_mut() else { return };
        let idx = a.endpoint;
        let ep = &mut self.endpoints[idx];
        let timeout = timeout_of(&ep.cfg);
        if ep.resolved_at.is_some_and(|t| now.duration_since(t) > DNS_TTL) {
            self.resolver.lookup(idx, ep);
        }
        if allow_pooled {
            if let Some(k) = ep.idle.pop() {
                if let Some(up) = self.upstreams.get_mut(k) {
                    up.owner = Owner::Client(ck);
                    up.reused = true;
                    a.up = Some(k);
                    a.phase = AttemptPhase::Sending;
                    a.deadline = now + timeout;
                    let d = a.deadline;
                    self.arm(d);
                    return;
                }
            }
        }
        if ep.addrs.is_empty() {
            self.resolver.lookup(idx, ep);
            a.phase = AttemptPhase::Resolving;
            a.deadline = now + timeout;
            let d = a.deadline;
            self.arm(d);
            return;
        }
        let key = match self.open_upstream(idx, Owner::Client(ck), now) {
            Ok(key) => key,
            Err(super::OpenError::Endpoint(e)) => {
                self.fail_attempt(ck, Failure::Connect(e), now);
                return;
            }
            Err(super::OpenError::Local(e)) => {
                // Out of descriptors or memory: our fault, not the endpoint's. 503, nobody blamed.
                log::warn!("cannot open an upstream connection: {e} -> 503");
                self.endpoints[idx].health.end();
                if let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) {
                    ex.attempt = None;
                }
                self.stats.rejected += 1;
                self.respond_local_error(ck, 503, "the proxy is out of file descriptors; try again", now);
                return;
            }
        };
        let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) else { return };
        let Some(a) = ex.attempt.as_mut() else { return };
        a.up = Some(key);
        a.addrs_tried += 1;
        a.phase = AttemptPhase::Connecting;
        a.deadline = now + timeout.min(CONNECT_TIMEOUT);
        let d = a.deadline;
        self.arm(d);
    }

    /// A connect failed: move on to the endpoint's next resolved address within the same attempt
    /// and deadline (a simple, sequential Happy Eyeballs), so one unreachable A or AAAA record
    /// does not pin the endpoint as failed. False when every address was tried.
    pub(super) fn next_address(&mut self, ck: Key, now: Instant) -> bool {
        let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) else {
            return false;
        };
        let Some(a) = ex.attempt.as_mut() else { return false };
        let ep = &mut self.endpoints[a.endpoint];
        if a.phase != AttemptPhase::Connecting || a.addrs_tried >= ep.addrs.len() || a.deadline <= now {
            return false;
        }
        log::debug!("endpoint {}: connect failed, trying its next address", ep.cfg.id);
        ep.next_addr = ep.next_addr.wrapping_add(1);
        let (idx, old) = (a.endpoint, a.up.take());
        if let Some(k) = old {
            self.close_upstream(k);
        }
        let Ok(key) = self.open_upstream(idx, Owner::Client(ck), now) else {
            return false;
        };
        if let Some(a) = self.clients.get_mut(ck).and_then(|c| match &mut c.phase {
            ClientPhase::Exchange(ex) => ex.attempt.as_mut(),
            _ => None,
        }) {
            a.up = Some(key);
            a.addrs_tried += 1;
        }
        true
    }

    /// A pooled connection was dead: retry the same attempt on a fresh one, blaming no one.
    pub(super) fn replace_stale(&mut self, ck: Key, now: Instant) {
        let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) else {
            return;
        };
        let Some(a) = ex.attempt.as_mut() else { return };
        let old = a.up.take();
        a.fresh_retry_used = true;
        a.head_sent = 0;
        a.body_sent = a.folded;
        a.resp = None;
        a.resp_body = None;
        if let Some(k) = old {
            self.close_upstream(k);
        }
        log::debug!("pooled upstream connection was closed; retrying on a new one");
        self.connect_attempt(ck, false, now);
    }

    /// Endpoint lookups finished: attempts waiting on `idx` connect now, or fail over.
    pub(super) fn resume_resolving(&mut self, idx: usize, now: Instant) {
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
        let failed = self.endpoints[idx].addrs.is_empty();
        for ck in waiting {
            if failed {
                let host = self.endpoints[idx].cfg.url.host.clone();
                self.fail_attempt(ck, Failure::Resolve(format!("cannot resolve {host}")), now);
            } else {
                self.connect_attempt(ck, true, now);
            }
            self.drive(ck, now);
        }
        self.resume_probes(idx, now);
    }

    /// The current attempt's deadline passed.
    pub(super) fn on_exchange_deadline(&mut self, ck: Key, now: Instant) {
        let Some(ClientPhase::Exchange(ex)) = self.clients.get(ck).map(|c| &c.phase) else {
            return;
        };
        let Some(a) = ex.attempt.as_ref() else {
            self.respond_local_error(ck, 408, "request not received in time", now);
            return;
        };
        if a.deadline > now {
            return;
        }
        // The upstream is not being read while the client's backlog is full (backpressure): its
        // silence is ours, not a fault. Only a client that takes nothing for --idle-timeout ends
        // the exchange, as the client's doing (aborted; no endpoint blamed).
        if a.phase == AttemptPhase::Relaying && self.clients.get(ck).is_some_and(|c| c.out.len() >= CLIENT_OUT_HIGH) {
            let stalled =
                self.clients.get(ck).is_some_and(|c| now.duration_since(c.last_taken) >= self.settings.idle_timeout);
            if stalled {
                log::info!("client stopped reading for --idle-timeout: closing its connection");
                self.close_client(ck, now);
                return;
            }
            let next = now + self.settings.stream_idle_timeout.min(self.settings.idle_timeout);
            if let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) {
                if let Some(a) = ex.attempt.as_mut() {
                    a.deadline = next;
                }
            }
            self.arm(next);
            return;
        }
        // A held stream whose first content is slow (long thinking sends pings): released, so the
        // client sees them, and relayed from now on.
        if a.phase == AttemptPhase::Priming && a.hold_until.is_some_and(|h| h <= now) {
            let idle = self.settings.stream_idle_timeout;
            if let Some(c) = self.clients.get_mut(ck) {
                if let ClientPhase::Exchange(ex) = &mut c.phase {
                    release_hold(ex, &mut c.out);
                    if let Some(a) = ex.attempt.as_mut() {
                        a.deadline = now + idle;
                    }
                }
            }
            self.arm(now + idle);
            self.drive(ck, now);
            return;
        }
        let failure = match a.phase {
            AttemptPhase::Resolving => Failure::Timeout("name resolution"),
            AttemptPhase::Connecting => Failure::Timeout("connect"),
            AttemptPhase::Sending if !a.request_sent(ex.body.len(), ex.body_tracker.is_done()) => {
                if !ex.responded {
                    self.stats.rejected += 1;
                    self.respond_local_error(ck, 408, "request body not received in time", now);
                }
                return;
            }
            AttemptPhase::Sending => Failure::Timeout("no response head"),
            AttemptPhase::Relaying => Failure::Timeout("stream idle"),
            AttemptPhase::Holding => Failure::Timeout("reading a failed response"),
            AttemptPhase::Priming => Failure::Timeout("stream idle before any content"),
        };
        self.fail_attempt(ck, failure, now);
        self.drive(ck, now);
    }

    /// The current attempt failed: blame the endpoint once, then retry, or give the client
    /// the best answer we have.
    pub(super) fn fail_attempt(&mut self, ck: Key, failure: Failure, now: Instant) {
        let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) else {
            return;
        };
        let Some(a) = ex.attempt.take() else { return };
        let retry_after = a.resp.as_ref().and_then(|h| h.retry_after_secs);
        let until_close = a.resp.as_ref().is_some_and(|h| h.framing == BodyFraming::UntilClose);
        let primed = a.phase == AttemptPhase::Priming;
        let usage = a.scan.as_ref().and_then(|s| s.usage());
        let up = a.up;
        let idx = a.endpoint;
        let responded = ex.responded;
        let attempts = ex.attempts;
        let api = ex.api;
        // Could the request have reached the endpoint? Not when the connection never came up;
        // otherwise assume it did once a byte was written.
        let maybe_reached = match &failure {
            Failure::Resolve(_) | Failure::Connect(_) | Failure::Tls(_) | Failure::Timeout("connect") => false,
            _ => a.head_sent > 0 || a.resp.is_some(),
        };
        if maybe_reached {
            ex.reached.push(idx);
        }
        let can_retry = ex.retry_copy && retry_possible(&self.endpoints, &ex.reached);
        ex.last_failure = Some(failure.clone());
        if let Some(k) = up {
            self.close_upstream(k);
        }
        if api {
            self.blame(idx, &failure, retry_after, now);
        } else {
            self.endpoints[idx].health.end(); // outside the API: never a verdict on the endpoint
        }
        if let Some((model, t)) = usage {
            self.record_usage(idx, model.as_deref(), &t.counts(), now); // billed, even if it broke
        }
        if primed && !responded && can_retry && attempts < MAX_ATTEMPTS {
            self.stats.stream_retries += 1;
            log::info!(
                "stream from {} failed before any content ({}): retried on another endpoint",
                self.endpoints[idx].cfg.id,
                failure.describe()
            );
        }
        if responded {
            // Mid-stream: end the client's response visibly, by closing after what was sent.
            self.stats.failed += 1;
            self.log_request(ck, Some(idx), None, &failure.describe(), now);
            if let Some(c) = self.clients.get_mut(ck) {
                c.phase = ClientPhase::Closing;
                c.since = now;
                // A body framed by the close would look complete after a FIN: end it with a
                // reset, so truncation is never clean.
                c.reset = until_close;
            }
            return;
        }
        if api && attempts < MAX_ATTEMPTS && can_retry {
            self.stats.retries += 1;
            log::debug!("retrying after {}", failure.describe());
            self.start_attempt(ck, now);
            return;
        }
        // Out of attempts: the last upstream response if we kept one, else 502/504.
        self.stats.failed += 1;
        let Some(c) = self.clients.get_mut(ck) else {
            return;
        };
        let ClientPhase::Exchange(ex) = &mut c.phase else {
            return;
        };
        let status;
        let mut close = !ex.keep_alive || !ex.body_tracker.is_done();
        if let Some((bytes, must_close)) = ex.stash.take() {
            status = if let Failure::Status(s) = failure { s } else { 502 };
            close |= must_close;
            c.out.push(&bytes);
        } else {
            status = if failure.is_timeout() { 504 } else { 502 };
            let msg = format!("all {attempts} attempts failed; last: {}", failure.describe());
            let mut bytes = Vec::new();
            wire::error_response(status, &msg, close, &mut bytes);
            c.out.push(&bytes);
        }
        self.log_request(ck, Some(idx), Some(status), "", now);
        self.end_exchange(ck, close, now);
    }

    /// The response is complete: account it, pool the connection, ready the client for more.
    pub(super) fn finish_exchange(&mut self, ck: Key, reuse: bool, now: Instant) {
        let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) else {
            return;
        };
        let Some(a) = ex.attempt.take() else { return };
        let status = a.resp.as_ref().map_or(0, |h| h.status);
        let close = !ex.keep_alive || !ex.body_tracker.is_done();
        let api = ex.api;
        let idx = a.endpoint;
        if ex.usage_unread {
            self.stats.usage_unread += 1;
        }
        if let Some(k) = a.up {
            self.release_upstream(k, reuse, now);
        }
        if let Some((model, t)) = a.scan.as_ref().and_then(|s| s.usage()) {
            self.record_usage(idx, model.as_deref(), &t.counts(), now);
        }
        let stream_error = a.scan.as_ref().and_then(|s| s.error());
        let mut note = String::new();
        if api && is_blamed(status) {
            // The last attempt's failed response was relayed as-is; it still counts.
            self.blame(idx, &Failure::Status(status), a.resp.as_ref().and_then(|h| h.retry_after_secs), now);
            self.stats.failed += 1;
        } else if let (true, Some(e)) = (api, stream_error) {
            // An error event inside the 200 stream (passed through unchanged, after content):
            // the endpoint's failure, like a 529 (overloaded) or a 500.
            let failure = Failure::InStream(e);
            note = failure.describe();
            self.blame(idx, &failure, None, now);
            self.stats.stream_errors += 1;
            self.stats.failed += 1;
        } else if !api || !proves_healthy(status) {
            // Outside the API, or the upstream's own answer to this request (400, 404, 501 ...):
            // relayed as is; health and the failure queue stay as they were.
            self.endpoints[idx].health.end();
            self.stats.successful += 1;
        } else {
            let ep = &mut self.endpoints[idx];
            ep.health.end();
            if let Some(flip) = ep.health.record_success(a.head_elapsed) {
                log::info!("endpoint {} is {} (was {})", ep.cfg.id, flip.to.as_str(), flip.from.as_str());
            }
            let id = ep.cfg.id.clone();
            if self.failures.remove(&id) {
                log::info!("endpoint {id} answered again, removed from failure queue");
                self.queue_changed(now);
            }
            if let Some(ClientPhase::Exchange(ex)) = self.clients.get(ck).map(|c| &c.phase) {
                if let Some(s) = ex.session.as_deref() {
                    self.affinity.bind(s, idx, now);
                }
            }
            self.stats.successful += 1;
        }
        self.log_request(ck, Some(idx), Some(status), &note, now);
        self.end_exchange(ck, close, now);
    }

    /// Record an endpoint failure: health (logged on the flip only) and the failure queue.
    pub(super) fn blame(&mut self, idx: usize, failure: &Failure, retry_after: Option<u64>, now: Instant) {
        let ep = &mut self.endpoints[idx];
        ep.health.end();
        if let Some(flip) = ep.health.record_failure(ep.cfg.max_failures) {
            log::warn!(
                "endpoint {} is {} (was {}): {}",
                ep.cfg.id,
                flip.to.as_str(),
                flip.from.as_str(),
                failure.describe()
            );
        }
        if let Some(secs) = retry_after {
            ep.health.set_retry_after(now + std::time::Duration::from_secs(secs.min(3600)));
        }
        let id = ep.cfg.id.clone();
        self.failures.add(&id, &failure.describe(), std::time::SystemTime::now());
        self.queue_changed(now);
    }

    /// Return an upstream connection to its endpoint's pool, or close it.
    pub(super) fn release_upstream(&mut self, k: Key, reuse: bool, now: Instant) {
        let Some(up) = self.upstreams.get_mut(k) else {
            return;
        };
        let ep = &mut self.endpoints[up.endpoint];
        // A connection to a target that a reload replaced never goes back to the pool: the next
        // request would carry the new key to the old host.
        if reuse && up.generation == ep.generation && !ep.retired && ep.idle.len() < POOL_MAX {
            up.owner = Owner::Idle;
            up.idle_since = now;
            up.inbuf.clear();
            ep.idle.push(k);
            self.arm(now + POOL_IDLE);
        } else {
            self.close_upstream(k);
        }
    }
}

/// Whether some endpoint of the cluster is left that the request has not reached.
fn retry_possible(endpoints: &[Endpoint], reached: &[usize]) -> bool {
    endpoints.iter().enumerate().any(|(i, ep)| ep.cfg.enabled && !ep.retired && !reached.contains(&i))
}

impl Attempt {
    /// Everything the client has sent, head and complete body, has gone upstream.
    pub fn request_sent(&self, body_len: usize, body_done: bool) -> bool {
        body_done && self.head_sent == self.head_out.len() && self.body_sent == body_len
    }
}

/// Interpret what the upstream has sent so far: the head once, then body bytes, either
/// relayed to the client or held in the stash. `Some` when the attempt is decided.
fn process_response(
    ex: &mut Exchange,
    up: &mut Upstream,
    out: &mut super::io::OutBuf,
    now: Instant,
    stream_idle: std::time::Duration,
    hold: Option<std::time::Duration>,
) -> Option<AttemptEvent> {
    let a = ex.attempt.as_mut()?;
    while a.resp.is_none() {
        if up.inbuf.is_empty() {
            return None;
        }
        let head = match parse_response_head(&up.inbuf, ex.head.method() == "HEAD") {
            Ok(None) if up.inbuf.len() > MAX_HEAD_BYTES => {
                return Some(AttemptEvent::Failed(Failure::BadResponse("response head too large".into())))
            }
            Ok(None) => return None,
            Err(e) => return Some(AttemptEvent::Failed(Failure::BadResponse(e.to_string()))),
            Ok(Some(h)) => h,
        };
        up.inbuf.drain(..head.raw.len());
        if (100..200).contains(&head.status) {
            if head.status == 101 {
                return Some(AttemptEvent::Failed(Failure::BadResponse("unexpected 101 upgrade".into())));
            }
            continue; // interim response (100 Continue from the upstream): we answered our own
        }
        a.head_elapsed = now.duration_since(a.started);
        a.resp_body = Some(BodyTracker::new(head.framing));
        let until_close = head.framing == BodyFraming::UntilClose;
        let messages = ex.api && head.status == 200 && ex.head.target().split('?').next() == Some("/v1/messages");
        a.scan = if messages { super::sse::Scan::for_reply(&head) } else { None };
        if messages && a.scan.is_none() {
            ex.usage_unread = true;
        }
        let stream = matches!(a.scan, Some(super::sse::Scan::Sse(_)));
        if ex.api && is_blamed(head.status) && ex.attempts < MAX_ATTEMPTS {
            a.phase = AttemptPhase::Holding;
            let mut bytes = Vec::new();
            wire::client_response_head(&head, until_close || !ex.keep_alive, ex.cors.as_deref(), &mut bytes);
            ex.stash = Some((bytes, until_close));
        } else if let (true, Some(hold)) = (stream, hold) {
            // Held until the first content event; released as it was, then relayed as usual.
            a.phase = AttemptPhase::Priming;
            a.hold_until = Some(now + hold);
            let close = !ex.keep_alive || until_close || !ex.body_tracker.is_done();
            ex.keep_alive = !close;
            let mut bytes = Vec::with_capacity(head.raw.len() + 32);
            wire::client_response_head(&head, close, ex.cors.as_deref(), &mut bytes);
            ex.stash = Some((bytes, until_close));
        } else {
            a.phase = AttemptPhase::Relaying;
            let close = !ex.keep_alive || until_close || !ex.body_tracker.is_done();
            ex.keep_alive = !close;
            let mut bytes = Vec::with_capacity(head.raw.len() + 32);
            wire::client_response_head(&head, close, ex.cors.as_deref(), &mut bytes);
            out.push(&bytes);
            ex.responded = true;
        }
        a.deadline = hold_deadline(a, now + stream_idle);
        a.resp = Some(head);
    }
    let request_sent = a.request_sent(ex.body.len(), ex.body_tracker.is_done());
    let Attempt { resp_body, scan, .. } = a;
    let tracker = resp_body.as_mut()?;
    if up.inbuf.is_empty() {
        if tracker.is_done() {
            release_hold(ex, out);
            return ex.attempt.as_ref().map(|a| done_event(a, request_sent, up));
        }
        return None;
    }
    let n = match tracker.advance_observing(&up.inbuf, |data| {
        if let Some(s) = scan.as_mut() {
            s.feed(data);
        }
    }) {
        Ok(n) => n,
        Err(e) => {
            if matches!(a.phase, AttemptPhase::Holding | AttemptPhase::Priming) {
                ex.stash = None;
            }
            return Some(AttemptEvent::Failed(Failure::BadResponse(format!("bad chunked body: {e:?}"))));
        }
    };
    a.deadline = hold_deadline(a, now + stream_idle);
    match a.phase {
        AttemptPhase::Relaying => out.push(&up.inbuf[..n]),
        _ => {
            if let Some((stash, _)) = ex.stash.as_mut() {
                if stash.len() + n > STASH_LIMIT {
                    ex.stash = None;
                } else {
                    stash.extend_from_slice(&up.inbuf[..n]);
                }
            }
        }
    }
    up.inbuf.drain(..n);
    if a.phase == AttemptPhase::Priming {
        if let Some(e) = a.scan.as_ref().and_then(|s| s.error()) {
            ex.stash = None; // nothing was released: retried as if the 200 had never come
            return Some(AttemptEvent::Failed(Failure::InStream(e)));
        }
        let content = matches!(&a.scan, Some(super::sse::Scan::Sse(s)) if s.content_seen);
        if content || ex.stash.is_none() || a.resp_body.as_ref().is_some_and(BodyTracker::is_done) {
            release_hold(ex, out); // first content, or the hold is full: the stream goes on as usual
        }
    }
    let a = ex.attempt.as_mut()?;
    if a.resp_body.as_ref().is_some_and(BodyTracker::is_done) {
        return Some(done_event(a, request_sent, up));
    }
    if a.phase == AttemptPhase::Holding && ex.stash.is_none() {
        // Too big to keep: give up on this response now and retry.
        let status = a.resp.as_ref().map_or(502, |h| h.status);
        return Some(AttemptEvent::Failed(Failure::Status(status)));
    }
    None
}

/// While a stream is held, the deadline is the earlier of the stream-idle one and the hold's end.
fn hold_deadline(a: &Attempt, idle: Instant) -> Instant {
    match (a.phase, a.hold_until) {
        (AttemptPhase::Priming, Some(h)) => idle.min(h),
        _ => idle,
    }
}

/// A held stream goes out: what was held is queued for the client, and from now on the stream
/// is relayed as it comes (no retry is possible any more).
pub(super) fn release_hold(ex: &mut Exchange, out: &mut super::io::OutBuf) {
    let Some(a) = ex.attempt.as_mut() else { return };
    if a.phase != AttemptPhase::Priming {
        return;
    }
    a.phase = AttemptPhase::Relaying;
    a.hold_until = None;
    if let Some((bytes, _)) = ex.stash.take() {
        out.push(&bytes);
    }
    ex.responded = true;
}

/// The response body is complete: a success to relay, or a held failure to retry.
/// The connection is reusable only if both messages ended cleanly on it.
fn done_event(a: &Attempt, request_sent: bool, up: &Upstream) -> AttemptEvent {
    let status = a.resp.as_ref().map_or(502, |h| h.status);
    if a.phase == AttemptPhase::Holding {
        return AttemptEvent::Failed(Failure::Status(status));
    }
    let keep = a.resp.as_ref().is_some_and(|h| h.keep_alive);
    AttemptEvent::Complete { reuse: keep && up.inbuf.is_empty() && request_sent }
}

/// A pooled connection that failed before any response byte was probably closed by the
/// upstream while idle: worth one retry on a fresh connection.
fn is_stale(ex: &Exchange, up: &Upstream) -> bool {
    ex.retry_copy && ex.attempt.as_ref().is_some_and(|a| up.reused && !a.fresh_retry_used && a.resp.is_none())
}
