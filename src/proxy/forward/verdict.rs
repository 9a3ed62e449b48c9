//! What an answer says about its endpoint, the one place it is recorded: a failed attempt
//! (`blame`: health, the failure queue, its history and alert), a good answer (`credit`: health,
//! leaving the queue, the cluster's counts and moves, the session's binding), and a recovery
//! probe's (`probe_verdict`). Shared state only; the loop decides what happens to the request.

use std::time::{Instant, SystemTime};

use crate::proxy::shared::Shared;
use crate::proxy::state::{Exchange, Failure};

impl Shared {
    /// Endpoint `idx` answered `ex`'s request well (after `head_elapsed` to its head): its
    /// health, its leaving the failure queue, its cluster's counts and moves, the session's
    /// binding.
    pub(in crate::proxy) fn credit(
        &mut self,
        idx: usize,
        ex: &Exchange,
        head_elapsed: std::time::Duration,
        now: Instant,
    ) {
        let ep = &mut self.endpoints[idx];
        ep.counters.observe_ttfb(head_elapsed.as_secs_f64());
        if let Some(flip) = ep.health.record_success(head_elapsed) {
            log::info!("endpoint {} is {} (was {})", ep.cfg.label(), flip.to.as_str(), flip.from.as_str());
        }
        if self.failures.remove(&self.endpoints[idx].cfg.id) {
            let id = self.endpoints[idx].cfg.id.clone();
            log::info!("endpoint {} answered again, removed from failure queue", self.endpoints[idx].cfg.label());
            self.history.push(&id, "recovered", "answered a request");
            self.queue_changed(now);
            self.endpoint_up_alert(idx, "answered a request", now);
        }
        let cluster = self.endpoints[idx].cluster;
        self.count_served(idx, ex.cluster, ex.started, now);
        // A session whose endpoint is only out of headroom for now keeps it: it comes back
        // there (its prompt cache) once the limit resets.
        let Some(s) = ex.session.as_deref() else { return };
        let waiting = self.affinity.lookup(cluster, s, now).filter(|&pin| {
            pin != idx
                && self.endpoints.get(pin).is_some_and(|e| e.headroom.blocked(now) && e.cfg.enabled && !e.retired)
        });
        if waiting.is_none() {
            self.affinity.bind(cluster, s, idx, now);
        }
    }

    /// Record an endpoint failure: health (logged on the flip only) and the failure queue.
    pub(in crate::proxy) fn blame(&mut self, idx: usize, failure: &Failure, retry_after: Option<u64>, now: Instant) {
        let ep = &mut self.endpoints[idx];
        if let Some(flip) = ep.health.record_failure(ep.cfg.max_failures) {
            log::warn!(
                "endpoint {} is {} (was {}): {}",
                ep.cfg.label(),
                flip.to.as_str(),
                flip.from.as_str(),
                failure.describe()
            );
        }
        if let Some(secs) = retry_after {
            ep.health.set_retry_after(now + std::time::Duration::from_secs(secs.min(3600)));
        }
        let id = ep.cfg.id.clone();
        let reason = failure.describe();
        if self.failures.add(&id, &reason, std::time::SystemTime::now()) {
            log::info!("endpoint {} added to failure queue: {reason}", ep.cfg.label());
            self.history.push(&id, "queued", reason.clone());
            self.endpoint_down_alert(idx, &reason, now);
        } else {
            log::debug!("endpoint {} already in failure queue: {reason}", ep.cfg.label());
        }
        self.history.push(&id, "failed", reason);
        self.queue_changed(now);
    }

    /// Endpoint `idx`'s recovery probe ended (`Ok`: it answered): its health restored, and
    /// the failure queue told (it leaves it when the probe succeeded).
    pub(in crate::proxy) fn probe_verdict(&mut self, idx: usize, outcome: Result<(), String>, now: Instant) {
        let ok = outcome.is_ok();
        let ep = &mut self.endpoints[idx];
        let id = ep.cfg.id.clone();
        let label = ep.cfg.label();
        self.history.push(&id, if ok { "probe_ok" } else { "probe_failed" }, outcome.err().unwrap_or_default());
        if ok {
            if let Some(flip) = ep.health.restore() {
                log::info!(
                    "endpoint {label} is {} (was {}) after a recovery probe",
                    flip.to.as_str(),
                    flip.from.as_str()
                );
            }
        } else {
            log::debug!("endpoint {label} still failing its recovery probe");
        }
        if self.failures.contains(&id) {
            if self.failures.record_probe(&id, ok, SystemTime::now()) {
                log::info!("endpoint {label} recovered, removed from failure queue");
                self.endpoint_up_alert(idx, "answered its recovery probe", now);
            }
            self.queue_changed(now);
        }
    }
}
