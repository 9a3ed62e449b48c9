//! The proxy's own endpoints under `/_qcc/`: `GET /_qcc/status` and `GET /_qcc/history` (JSON),
//! and the actions `POST /_qcc/queue/clear`, `POST /_qcc/reload`, `POST /_qcc/probe`. Actions
//! need the header `x-qcc-action: 1`, which a page on another site cannot send without a CORS
//! preflight (refused unless its origin is allowed). Keys never appear here.

use std::time::Instant;

use serde_json::{json, Value};

use crate::http::{BodyFraming, RequestHead};
use crate::proxy::event::slab::Key;
use crate::proxy::state::{ClientPhase, LOCAL_REPLIES_MAX};
use crate::proxy::{wire, EventLoop};

/// The dashboard: one self-contained page (no CDN, no build step), compiled in.
const DASHBOARD: &str = include_str!("dashboard.html");

impl EventLoop {
    pub(in crate::proxy) fn status_json(&self, now: Instant) -> Value {
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
                    "probing": ep.probing,
                    "latency_ms": h.latency_percentiles().map(|(p50, p95, p99, n)| {
                        json!({"p50": p50, "p95": p95, "p99": p99, "samples": n})
                    }),
                    "health": {
                        "status": h.status.as_str(),
                        "consecutive_failures": h.consecutive_failures,
                        "total_requests": h.total_requests(),
                        "failed_requests": h.failed_requests(),
                        "success_rate": (h.success_rate() * 100.0).round() / 100.0,
                        "avg_response_time": (h.avg_response_ms() * 100.0).round() / 100.0,
                        "in_flight": ep.in_flight.get(),
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
                "log_lines_suppressed": self.refusals.suppressed(),
                "log_lines_dropped": crate::logging::dropped(),
                "in_flight": self.clients.keys().filter(|k| matches!(self.clients.get(*k).map(|c| &c.phase), Some(ClientPhase::Exchange(_)))).count(),
            },
            "connections": {
                "clients": self.clients.len(),
                "upstreams": self.upstreams.len(),
                "idle_upstreams": idle,
                "pool_races": self.stats.pool_races,
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
                "details": self.queue_details(now),
            },
            "settings": {
                "verify_interval_secs": self.settings.verify_interval.as_secs(),
                "probe_model": self.settings.probe_model,
                "stream_idle_timeout_secs": self.settings.stream_idle_timeout.as_secs(),
                "stream_hold_secs": self.settings.stream_hold.as_secs(),
                "header_timeout_secs": self.settings.header_timeout.as_secs(),
                "idle_timeout_secs": self.settings.idle_timeout.as_secs(),
                "drain_timeout_secs": self.settings.drain_timeout.as_secs(),
                "max_body": self.settings.max_body,
                "max_connections": self.settings.max_connections,
                "access_key": self.settings.access_key.is_some(),
            },
        })
    }

    /// Each queued endpoint: why, since when, last check, and when the next probe runs.
    fn queue_details(&self, now: Instant) -> Vec<Value> {
        let next = self.next_probe.saturating_duration_since(now).as_secs();
        self.failures
            .ids()
            .map(|id| {
                let ep = self.endpoints.iter().find(|e| e.cfg.id == id && !e.retired);
                let (reason, since) = match self.failures.why(id) {
                    Some((r, t)) => (Value::from(r), Value::from(crate::store::timefmt::iso(t))),
                    None => (Value::Null, Value::Null),
                };
                json!({"id": id, "base_url": ep.map(|e| e.cfg.url.to_string()), "reason": reason, "since": since,
                       "last_check": self.failures.last_check(id), "next_check_in_secs": next})
            })
            .collect()
    }

    /// Answer a request for `/_qcc/...` on the loop itself.
    pub(in crate::proxy) fn serve_admin(&mut self, ck: Key, head: &RequestHead, now: Instant) {
        if !matches!(head.framing, BodyFraming::None | BodyFraming::Length(0)) {
            self.respond_local_error(ck, 400, "the /_qcc/ endpoints take no request body", now);
            return;
        }
        let (path, query) = head.target().split_once('?').unwrap_or((head.target(), ""));
        let param = |name: &str| {
            query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('='))).map(str::to_string)
        };
        let action = head.method() == "POST";
        let marked = head.headers().any(|(n, v)| n.eq_ignore_ascii_case(b"x-qcc-action") && v == b"1");
        let (status, body) = match (head.method(), path) {
            _ if action && !marked => (
                403,
                json!({"type": "error", "error": {"type": "permission_error",
                       "message": "qcc actions need the header x-qcc-action: 1"}}),
            ),
            ("GET", "/_qcc/" | "/_qcc") => {
                self.respond_admin(ck, head, 200, "text/html; charset=utf-8", DASHBOARD.as_bytes(), now);
                return;
            }
            ("GET", "/_qcc/status") => (200, self.status_json(now)),
            ("GET", "/_qcc/recent") => (200, self.recent.to_json()),
            ("POST", "/_qcc/endpoint") => {
                let (Some(id), Some(enabled)) = (param("endpoint"), param("enabled")) else {
                    self.respond_admin_error(ck, head, 400, "give ?endpoint=ID&enabled=true|false", now);
                    return;
                };
                // The config is edited and read again on the disk thread; the answer follows.
                let edit = crate::proxy::event::disk::Edit::Enable { id, enabled: enabled == "true" };
                self.request_reload(edit, Some((ck, head.keep_alive)), now);
                return;
            }
            ("GET", "/_qcc/history") => {
                let n = param("n").and_then(|v| v.parse().ok()).unwrap_or(50);
                (200, self.history.to_json(param("endpoint").as_deref(), n))
            }
            ("POST", "/_qcc/reload") => {
                self.request_reload(crate::proxy::event::disk::Edit::None, Some((ck, head.keep_alive)), now);
                return;
            }
            ("POST", "/_qcc/probe") => {
                // Probe now: one endpoint, the queued ones (?queued=1), or all of them.
                let only = param("endpoint");
                let queued = param("queued").is_some();
                let picked: Vec<usize> = (0..self.endpoints.len())
                    .filter(|&i| {
                        let ep = &self.endpoints[i];
                        !ep.retired
                            && only.as_deref().is_none_or(|id| ep.cfg.id == id)
                            && (!queued || self.failures.contains(&ep.cfg.id))
                    })
                    .collect();
                if picked.is_empty() && only.is_some() {
                    (404, json!({"type": "error", "error": {"type": "not_found_error", "message": "no such endpoint"}}))
                } else {
                    let ids: Vec<String> = picked.iter().map(|&i| self.endpoints[i].cfg.id.clone()).collect();
                    for i in picked {
                        self.start_probe(i, now);
                    }
                    (200, json!({"probing": ids}))
                }
            }
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
                self.history.push("", "cleared", format!("{n} endpoints"));
                (200, json!({"cleared": n}))
            }
            (
                _,
                "/_qcc/status" | "/_qcc/history" | "/_qcc/recent" | "/_qcc/queue/clear" | "/_qcc/reload"
                | "/_qcc/probe" | "/_qcc/endpoint" | "/_qcc/",
            ) => (
                405,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "method not allowed"}}),
            ),
            _ => {
                (404, json!({"type": "error", "error": {"type": "not_found_error", "message": "no such qcc endpoint"}}))
            }
        };
        self.respond_admin(ck, head, status, "application/json", body.to_string().as_bytes(), now);
    }

    fn respond_admin_error(&mut self, ck: Key, head: &RequestHead, status: u16, msg: &str, now: Instant) {
        let body = json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}});
        self.respond_admin(ck, head, status, "application/json", body.to_string().as_bytes(), now);
    }

    /// A local answer on the client connection, which then reads its next request (or closes).
    pub(in crate::proxy) fn respond_admin(
        &mut self,
        ck: Key,
        head: &RequestHead,
        status: u16,
        ctype: &str,
        body: &[u8],
        now: Instant,
    ) {
        self.respond_local(ck, head.keep_alive, status, ctype, body, now);
    }

    /// `respond_admin` for a request whose head is gone (answered after the disk thread).
    pub(in crate::proxy) fn respond_local(
        &mut self,
        ck: Key,
        keep_alive: bool,
        status: u16,
        ctype: &str,
        body: &[u8],
        now: Instant,
    ) {
        // Replies the proxy made itself and its clients have not read are bounded all together
        // (each connection holds at most one past `CLIENT_OUT_HIGH`; see `pump_head`): forty
        // clients that ask for /metrics and never read must not hold forty copies.
        let queued: usize =
            self.clients.iter().filter(|c| !matches!(c.phase, ClientPhase::Exchange(_))).map(|c| c.out.len()).sum();
        if queued + body.len() > LOCAL_REPLIES_MAX {
            self.stats.rejected += 1;
            log::debug!("{queued} unread bytes of local replies queued -> 503");
            self.respond_local_error(ck, 503, "the proxy holds too many unread replies; try again", now);
            return;
        }
        let Some(c) = self.clients.get_mut(ck) else {
            return;
        };
        let close = !keep_alive || self.draining.is_some();
        let mut bytes = Vec::new();
        wire::local_response(status, ctype, body, close, &mut bytes);
        c.out.push(&bytes);
        c.since = now;
        c.phase = if close { ClientPhase::Closing } else { ClientPhase::ReadingHead };
    }
}
