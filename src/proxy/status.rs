//! The proxy's own endpoints under `/_qcc/`: `GET /_qcc/status` (JSON) and
//! `POST /_qcc/queue/clear`. Keys never appear here.

use std::time::Instant;

use serde_json::{json, Value};

use super::slab::Key;
use super::state::ClientPhase;
use super::{wire, EventLoop};
use crate::http::{BodyFraming, RequestHead};

impl EventLoop {
    pub(super) fn status_json(&self, now: Instant) -> Value {
        let sessions = self.affinity.counts(self.endpoints.len());
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, ep)| !ep.retired)
            .map(|(i, ep)| {
                let h = &ep.health;
                json!({
                    "id": ep.cfg.id,
                    "base_url": ep.cfg.url.to_string(),
                    "priority": ep.cfg.priority,
                    "weight": ep.cfg.weight,
                    "enabled": ep.cfg.enabled,
                    "max_failures": ep.cfg.max_failures,
                    "timeout": ep.cfg.timeout_secs,
                    "in_failure_queue": self.failures.contains(&ep.cfg.id),
                    "usable": ep.routable(&self.failures, now),
                    "sessions": sessions[i],
                    "health": {
                        "status": h.status.as_str(),
                        "consecutive_failures": h.consecutive_failures,
                        "total_requests": h.total_requests,
                        "failed_requests": h.failed_requests,
                        "success_rate": (h.success_rate() * 100.0).round() / 100.0,
                        "avg_response_time": (h.avg_response_ms() * 100.0).round() / 100.0,
                        "in_flight": h.in_flight,
                    },
                })
            })
            .collect();
        let q = self.failures.stats();
        let failed: Vec<&str> = self.failures.ids().collect();
        let idle: usize = self.endpoints.iter().map(|e| e.idle.len()).sum();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_secs": now.duration_since(self.started).as_secs(),
            "started_at": crate::store::timefmt::iso(self.started_wall),
            "listen": self.addr.to_string(),
            "cluster": self.settings.cluster.name,
            "strategy": self.balancer.strategy().as_str(),
            "affinity": {
                "enabled": self.affinity.enabled(),
                "sessions": self.affinity.len(),
                "max": self.settings.affinity_max,
                "ttl_secs": self.settings.affinity_ttl.as_secs(),
            },
            "requests": {
                "total": self.stats.total,
                "successful": self.stats.successful,
                "failed": self.stats.failed,
                "aborted": self.stats.aborted,
                "rejected": self.stats.rejected,
                "retries": self.stats.retries,
                "bad_requests": self.stats.bad_requests,
                "unauthorized": self.stats.unauthorized,
                "forbidden": self.stats.forbidden,
                "in_flight": self.clients.keys().filter(|k| matches!(self.clients.get(*k).map(|c| &c.phase), Some(ClientPhase::Exchange(_)))).count(),
            },
            "connections": {
                "clients": self.clients.len(),
                "upstreams": self.upstreams.len(),
                "idle_upstreams": idle,
            },
            "endpoints": endpoints,
            "streams": {
                "retried_before_content": self.stats.stream_retries,
                "in_stream_errors": self.stats.stream_errors,
            },
            "usage": {
                "day": crate::store::timefmt::date(std::time::SystemTime::now()),
                "today": self.usage.day(&crate::store::timefmt::date(std::time::SystemTime::now())),
                "unread_encoded_replies": self.stats.usage_unread,
            },
            "state_files": {
                "failed_writes": self.stats.state_write_failures,
                "failing": !self.failing_files.is_empty(),
            },
            "failure_queue": {
                "stats": {
                    "total_failed": q.total_failed,
                    "total_verified": q.total_verified,
                    "total_recovered": q.total_recovered,
                    "total_still_failed": q.total_still_failed,
                },
                "failed_endpoints_count": failed.len(),
                "failed_endpoints": failed,
            },
        })
    }

    /// Answer a request for `/_qcc/...` on the loop itself.
    pub(super) fn serve_admin(&mut self, ck: Key, head: &RequestHead, now: Instant) {
        if !matches!(head.framing, BodyFraming::None | BodyFraming::Length(0)) {
            self.respond_local_error(ck, 400, "the /_qcc/ endpoints take no request body", now);
            return;
        }
        let path = head.target().split('?').next().unwrap_or("");
        let (status, body) = match (head.method(), path) {
            ("GET", "/_qcc/status") => (200, self.status_json(now)),
            ("POST", "/_qcc/queue/clear") => {
                let n = self.failures.len();
                // A cleared endpoint must be eligible again: no longer queued means no probe
                // will ever restore it, so its failure verdict goes too.
                for ep in self.endpoints.iter_mut().filter(|ep| self.failures.contains(&ep.cfg.id)) {
                    ep.health.forget_failures();
                }
                self.failures.clear();
                self.queue_changed(now);
                log::info!("failure queue cleared ({n} endpoints) by request");
                (200, json!({"cleared": n}))
            }
            (_, "/_qcc/status") | (_, "/_qcc/queue/clear") => (
                405,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "method not allowed"}}),
            ),
            _ => {
                (404, json!({"type": "error", "error": {"type": "not_found_error", "message": "no such qcc endpoint"}}))
            }
        };
        let Some(c) = self.clients.get_mut(ck) else {
            return;
        };
        let close = !head.keep_alive || self.draining.is_some();
        let mut bytes = Vec::new();
        wire::local_response(status, "application/json", body.to_string().as_bytes(), close, &mut bytes);
        c.out.push(&bytes);
        c.since = now;
        c.phase = if close { ClientPhase::Closing } else { ClientPhase::ReadingHead };
    }
}
