//! `GET /_qcc/status`: everything the proxy knows, as JSON (the dashboard and `qcc proxy
//! status` read it). Keys never appear here.

use std::time::Instant;

use serde_json::{json, Value};

use crate::proxy::shared::{Conns, Shared};

impl Shared {
    /// Each served cluster: its rules, its chain, its endpoints' state, what it served.
    fn clusters_json(&self, now: Instant) -> Value {
        let names = |list: &[usize]| list.iter().map(|&c| &*self.clusters[c].name).collect::<Vec<_>>();
        let list: Vec<Value> = self
            .clusters
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.retired)
            .map(|(i, c)| {
                let mine = || self.endpoints.iter().filter(move |e| e.cluster == i && !e.retired);
                let routes: Vec<Value> = c
                    .routes
                    .iter()
                    .zip(&c.targets)
                    .enumerate()
                    .map(|(n, (r, &t))| json!({"n": n + 1, "rule": r.describe(), "to": &*self.clusters[t].name}))
                    .collect();
                json!({
                    "name": &*c.name,
                    "started": i == 0,
                    "strategy": c.balancer.strategy().as_str(),
                    "retry_on": c.cfg.retry_on.codes(),
                    "routes": routes,
                    "fallback": c.cfg.fallback,
                    "chain": names(&c.chain[1..]),
                    "endpoints": mine().count(),
                    "usable": mine().filter(|e| e.routable(&self.failures, now)).count(),
                    "served": c.served,
                    "fell_back": c.fell_back,
                })
            })
            .collect();
        Value::Array(list)
    }

    pub(in crate::proxy) fn status_json(&self, conns: &Conns, now: Instant) -> Value {
        let sessions = self.affinity.counts(self.endpoints.len());
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, ep)| !ep.retired)
            .map(|(i, ep)| {
                let h = &ep.health;
                json!({
                    "name": ep.cfg.name,
                    "id": ep.cfg.id,
                    "cluster": &*self.clusters[ep.cluster].name,
                    "base_url": ep.cfg.url.to_string(),
                    "priority": ep.cfg.priority,
                    "weight": ep.cfg.weight,
                    "enabled": ep.cfg.enabled,
                    "max_failures": ep.cfg.max_failures,
                    "timeout": ep.cfg.timeout_secs,
                    "model_map": ep.cfg.model_map.iter().map(|r| format!("{}={}", r.pattern, r.model)).collect::<Vec<_>>(),
                    "probe_model": ep.cfg.probe_model,
                    "format": ep.cfg.format.as_str(),
                    "caps": ep.cfg.caps.to_json(),
                    "rules": ep.cfg.rules.to_json(),
                    "learned_rules": ep.cfg.learned.to_json(),
                    "at_cap": ep.load.at_cap(&ep.cfg.caps, ep.in_flight.get(), now),
                    "in_failure_queue": self.failures.contains(&ep.cfg.id),
                    "usable": ep.routable(&self.failures, now),
                    "sessions": sessions[i],
                    "headroom": headroom_json(&ep.headroom, now),
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
            "cluster": &*self.clusters[0].name,
            "strategy": self.clusters[0].balancer.strategy().as_str(),
            "retry_on": self.clusters[0].cfg.retry_on.codes(),
            "clusters": self.clusters_json(now),
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
                "limited": self.stats.limited,
                "forbidden": self.stats.forbidden,
                "log_lines_suppressed": self.refusals.suppressed(),
                "log_lines_dropped": crate::logging::dropped(),
                "in_flight": conns.exchanges,
            },
            "connections": {
                "clients": conns.clients,
                "upstreams": conns.upstreams,
                "idle_upstreams": idle,
                "pool_races": self.stats.pool_races,
                "stale_retries": self.stats.stale_retries,
                "history_dropped": self.stats.history_dropped,
            },
            "endpoints": endpoints,
            "keys": self.keys_json(now),
            "alerts": {
                "receivers": self.notifier.receivers(),
                "queued": self.notifier.queued(),
                "delivered": self.notifier.delivered,
                "given_up": self.notifier.given_up,
                "dropped": self.notifier.dropped,
            },
            "streams": {
                "retried_before_content": self.stats.stream_retries,
                "in_stream_errors": self.stats.stream_errors,
            },
            "usage": self.usage_json(),
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
                "details": self.queue_details(self.next_probe, now),
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
                "access_log": self.settings.access_log,
            },
        })
    }

    /// Today's tokens per endpoint and model, what they cost (USD, the priced models) and how
    /// much of the input came from the prompt cache.
    fn usage_json(&self) -> Value {
        let day = crate::store::timefmt::date(std::time::SystemTime::now());
        let today = self.usage.day(&day);
        let mut cost: serde_json::Map<String, Value> = serde_json::Map::new();
        let mut unpriced = std::collections::BTreeSet::new();
        for (ep, models) in today.into_iter().flatten() {
            let mut usd = 0.0;
            let mut all = crate::store::usage::Counts::default();
            let mut by_model = serde_json::Map::new();
            for (model, c) in models {
                all.add(c);
                let m = self.settings.prices.cost(model, c);
                match m {
                    Some(x) => usd += x,
                    None => {
                        unpriced.insert(model.clone());
                    }
                }
                by_model.insert(
                    model.clone(),
                    json!({"cost_usd": m, "cache_hit_rate": crate::store::prices::cache_hit_rate(c)}),
                );
            }
            cost.insert(
                ep.clone(),
                json!({"cost_usd": usd, "cache_hit_rate": crate::store::prices::cache_hit_rate(&all), "models": by_model}),
            );
        }
        // The day's most expensive Claude Code sessions (the dashboard's top sessions).
        let sessions = self.usage.last_sessions(1);
        let mut top: Vec<(&String, &crate::store::usage::SessionCounts)> =
            sessions.get(&day).into_iter().flatten().collect();
        top.sort_by(|a, b| {
            b.1.cost_usd.total_cmp(&a.1.cost_usd).then(b.1.counts.output_tokens.cmp(&a.1.counts.output_tokens))
        });
        let top: Vec<Value> = top
            .into_iter()
            .take(10)
            .map(|(id, s)| {
                json!({"session": id, "requests": s.counts.requests, "cost_usd": s.cost_usd,
                                  "input_tokens": s.counts.input_tokens, "output_tokens": s.counts.output_tokens,
                                  "cache_read_input_tokens": s.counts.cache_read_input_tokens})
            })
            .collect();
        json!({"day": day, "today": today, "cost_today": cost, "unpriced_models": unpriced, "top_sessions": top,
               "unread_encoded_replies": self.stats.usage_unread})
    }

    /// Each queued endpoint: why, since when, last check, and when the next probe runs.
    fn queue_details(&self, next_probe: Instant, now: Instant) -> Vec<Value> {
        let next = next_probe.saturating_duration_since(now).as_secs();
        self.failures
            .ids()
            .map(|id| {
                let ep = self.endpoints.iter().find(|e| e.cfg.id == id && !e.retired);
                let (reason, since) = match self.failures.why(id) {
                    Some((r, t)) => (Value::from(r), Value::from(crate::store::timefmt::iso(t))),
                    None => (Value::Null, Value::Null),
                };
                json!({"name": ep.map(|e| e.cfg.name.as_str()), "id": id, "base_url": ep.map(|e| e.cfg.url.to_string()), "reason": reason, "since": since,
                       "last_check": self.failures.last_check(id), "next_check_in_secs": next})
            })
            .collect()
    }
}

/// What an endpoint's answers said of its rate limits: per dimension `{"limit", "remaining",
/// "reset"}`, and whether it is passed over until a reset (`blocked_secs`).
fn headroom_json(h: &crate::policy::headroom::Headroom, now: Instant) -> Value {
    let mut out = serde_json::Map::new();
    for (dim, w) in crate::policy::headroom::DIMS.iter().zip(&h.dims) {
        if let Some(w) = w {
            out.insert(
                (*dim).to_string(),
                json!({"limit": w.limit, "remaining": w.remaining,
                       "reset": w.reset.map(crate::store::timefmt::iso)}),
            );
        }
    }
    let blocked = h.blocked_until.filter(|t| *t > now).map(|t| t.duration_since(now).as_secs() + 1);
    json!({"dimensions": out, "blocked_secs": blocked, "share": h.share()})
}
