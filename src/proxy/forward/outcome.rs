//! How an attempt ends: whether the request is tried again or answered (the held response, a
//! 502/504, a cut stream), and what is counted when a response completes. What the answer says
//! about its endpoint is recorded by `verdict.rs`.

use std::time::Instant;

use crate::http::BodyFraming;
use crate::policy::health::Outcome;
use crate::proxy::client::conn::Conn;
use crate::proxy::state::*;
use crate::proxy::wire;

/// 5xx, 429, 401 and 403 are the endpoint's fault; other statuses are the client's business.
/// An answer that says the endpoint works (a success or a redirect). Every other status that is
/// not blamed (400, 404, 422, 501, 505 ...) is the upstream's answer to this request: relayed,
/// and says nothing about the endpoint either way.
pub(in crate::proxy) fn proves_healthy(status: u16) -> bool {
    (200..400).contains(&status)
}

impl Conn<'_> {
    /// The current attempt failed: blame the endpoint once, then retry, or give the client
    /// the best answer we have.
    pub(in crate::proxy) fn fail_attempt(&mut self, failure: Failure, now: Instant) {
        let ClientPhase::Exchange(ex) = &mut self.c.phase else {
            return;
        };
        let Some(mut a) = ex.attempt.take() else { return };
        ex.failed.push(FailedAttempt {
            endpoint: a.endpoint,
            ms: now.saturating_duration_since(a.started).as_millis(),
            why: failure.describe(),
        });
        let retry_after = a.resp.as_ref().and_then(|h| h.retry_after_secs);
        let until_close = a.resp.as_ref().is_some_and(|h| h.framing == BodyFraming::UntilClose);
        let primed = a.phase == AttemptPhase::Priming;
        let usage = a.scan.as_ref().and_then(|s| s.usage());
        let asked = a.mapped.as_ref().map(|m| m.from.clone());
        let up = a.up.take();
        let answered = a.resp.is_some();
        let idx = a.endpoint;
        let responded = ex.responded();
        let attempts = ex.attempts;
        let api = ex.api;
        // Could the request have reached the endpoint? Not when the connection never came up;
        // otherwise assume it did once a byte was written.
        let maybe_reached = match &failure {
            Failure::Resolve(_)
            | Failure::Connect(_)
            | Failure::Tls(_)
            | Failure::Timeout(AttemptPhase::Resolving | AttemptPhase::Connecting) => false,
            _ => a.head_sent > 0 || a.resp.is_some(),
        };
        if maybe_reached {
            ex.reached.insert(idx);
        }
        // Its place in its endpoint's in-flight count and `--tpm` hold end here, before anything
        // asks whether that endpoint may serve again.
        drop(a);
        let can_retry = ex.retry_copy
            && crate::proxy::clusters::another_may_serve(
                ex,
                None,
                &self.sh.endpoints,
                &self.sh.clusters,
                &self.sh.failures,
                now,
            );
        ex.last_failure = Some(failure.clone());
        // A connection reused from the pool that closes before answering is most likely the
        // keep-alive race (the upstream timed it out as our request went out), not a fault of
        // the endpoint: not blamed. Each pooled connection can do this once; a fresh connection
        // that does the same is blamed.
        let pool_race = matches!(failure, Failure::Closed(_))
            && !answered
            && up.as_ref().and_then(|l| self.net.upstreams.get(l.key())).is_some_and(|u| u.reused);
        if let Some(lease) = up {
            self.net.close_upstream(&mut self.sh.endpoints, lease);
        }
        if api && (self.learn_from_refusal(idx, &failure, now) || self.pass_on_refusal(idx, &failure, now)) {
            return; // a rule learned (sent there again without what it refused), or the answer
        }
        if api && pool_race {
            let ep = &mut self.sh.endpoints[idx];
            ep.health.record(Outcome::Race);
            self.sh.stats.pool_races += 1;
            log::info!("endpoint {}: a pooled connection closed before answering; not blamed", ep.cfg.label());
        } else if let Failure::Lacks(status) = failure {
            // It lacks the API: remembered, never blamed, queued or probed for it.
            let ep = &mut self.sh.endpoints[idx];
            ep.health.record(Outcome::Answered);
            if !ep.lacks_count_tokens {
                ep.lacks_count_tokens = true;
                log::info!("endpoint {} answers {status} to token counts: qcc estimates them", ep.cfg.label());
            }
        } else if api {
            self.sh.blame(idx, &failure, retry_after, now);
        } // (outside the API: never a verdict on the endpoint)
        if let Some((model, t)) = usage {
            self.charge(idx, model.as_deref(), asked.as_deref(), &t.counts(), now);
            // billed, even if it broke
        }
        if primed && !responded && can_retry && attempts < MAX_ATTEMPTS {
            self.sh.stats.stream_retries += 1;
            log::info!(
                "stream from {} failed before any content ({}): retried on another endpoint",
                self.sh.endpoints[idx].cfg.label(),
                failure.describe()
            );
        }
        if responded {
            // Mid-stream: end the client's response visibly, by closing after what was sent.
            self.sh.stats.failed += 1;
            self.log_request(Some(idx), None, &failure.describe(), now);
            let c = &mut *self.c;
            c.phase = ClientPhase::Closing;
            c.since = now;
            // A body framed by the close would look complete after a FIN: end it with a reset,
            // so truncation is never clean.
            c.reset = until_close;
            return;
        }
        if matches!(failure, Failure::Lacks(_)) && !(attempts < MAX_ATTEMPTS && can_retry) {
            // No endpoint left that has the API: the estimate, as for a cluster that speaks
            // another dialect.
            self.answer_locally(&crate::store::cluster::Format::Anthropic);
            return;
        }
        if api && attempts < MAX_ATTEMPTS && can_retry {
            self.sh.stats.retries += 1;
            log::debug!("retrying after {}", failure.describe());
            self.start_attempt(now);
            return;
        }
        // Out of attempts: the last upstream response if we kept one, else 502/504.
        self.sh.stats.failed += 1;
        let c = &mut *self.c;
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
        self.log_request(Some(idx), Some(status), "", now);
        self.end_exchange(close, now);
    }

    /// The response is complete: account it, pool the connection, ready the client for more.
    pub(in crate::proxy) fn finish_exchange(&mut self, reuse: bool, now: Instant) {
        let ClientPhase::Exchange(ex) = &mut self.c.phase else {
            return;
        };
        let Some(mut a) = ex.attempt.take() else { return };
        let status = a.resp.as_ref().map_or(0, |h| h.status);
        let close = !ex.keep_alive || !ex.body_tracker.is_done();
        let api = ex.api;
        let idx = a.endpoint;
        if ex.usage_unread {
            self.sh.stats.usage_unread += 1;
        }
        if let Some(lease) = a.up.take() {
            self.net.release_upstream(&mut self.sh.endpoints, lease, reuse, now);
        }
        if let Some((model, t)) = a.scan.as_ref().and_then(|s| s.usage()) {
            self.charge(idx, model.as_deref(), a.mapped.as_ref().map(|m| m.from.as_str()), &t.counts(), now);
            // A model this endpoint just served: what its recovery probe asks for, unless told.
            if let Some(m) = model.as_deref().filter(|_| (200..300).contains(&status)) {
                let ep = &mut self.sh.endpoints[idx];
                if ep.last_ok_model.as_deref() != Some(m) {
                    ep.last_ok_model = Some(crate::store::usage::model_name(m).to_string());
                }
            }
            if let ClientPhase::Exchange(ex) = &mut self.c.phase {
                ex.tokens = Some((model, t));
            }
        }
        let stream_error = a.scan.as_ref().and_then(|s| s.error());
        let mut note = String::new();
        let cluster = self.sh.endpoints[idx].cluster;
        if api && self.sh.clusters[cluster].cfg.retry_on.contains(status) {
            // The last attempt's failed response was relayed as-is; it still counts.
            self.sh.blame(idx, &Failure::Status(status), a.resp.as_ref().and_then(|h| h.retry_after_secs), now);
            self.sh.stats.failed += 1;
        } else if let (true, Some(e)) = (api, stream_error) {
            // An error event inside the 200 stream (passed through unchanged, after content):
            // the endpoint's failure, like a 529 (overloaded) or a 500.
            let failure = Failure::InStream(e);
            note = failure.describe();
            self.sh.blame(idx, &failure, None, now);
            self.sh.stats.stream_errors += 1;
            self.sh.stats.failed += 1;
        } else if !api || !proves_healthy(status) {
            // Outside the API, or the upstream's own answer to this request (400, 404, 501 ...):
            // relayed as is; health and the failure queue stay as they were.
            self.sh.endpoints[idx].health.record(Outcome::Answered);
            self.sh.stats.successful += 1;
        } else {
            if let ClientPhase::Exchange(ex) = &self.c.phase {
                self.sh.credit(idx, ex, a.head_elapsed, now);
            }
            self.sh.stats.successful += 1;
        }
        self.log_request(Some(idx), Some(status), &note, now);
        self.end_exchange(close, now);
    }
}
