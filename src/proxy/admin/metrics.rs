//! `GET /metrics` in the Prometheus text format: the per-endpoint counters (`counters.rs`) and
//! health records, the clusters, the queue, usage, client keys, the process. What each finished
//! request leaves (the counters' updates, the dashboard's ring, the access log) is `requests.rs`.

use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::policy::health::Outcome;
use crate::proxy::counters::{CLASSES, TTFB_BUCKETS};
use crate::proxy::shared::{Conns, Shared};

impl Shared {
    /// `GET /metrics`: the Prometheus text exposition format. Per-endpoint series carry the id
    /// (`endpoint`) and the name (`name`; both checked on load to need no escaping).
    pub(in crate::proxy) fn metrics_text(&self, conns: &Conns, now: Instant) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let live: Vec<_> = self.endpoints.iter().filter(|e| !e.retired).collect();
        let labels = |ep: &crate::proxy::state::Endpoint| labels(ep, &self.clusters);
        family(&mut out, "qcc_requests_total", "counter", "Requests that ended, by endpoint and status class.");
        for ep in &live {
            for (i, class) in CLASSES.iter().enumerate() {
                let _ =
                    writeln!(out, "qcc_requests_total{{{},class=\"{class}\"}} {}", labels(ep), ep.counters.requests[i]);
            }
        }
        family(&mut out, "qcc_upstream_attempts_total", "counter", "Upstream attempts by outcome.");
        for ep in &live {
            for o in Outcome::ALL {
                let _ = writeln!(
                    out,
                    "qcc_upstream_attempts_total{{{},outcome=\"{}\"}} {}",
                    labels(ep),
                    o.as_str(),
                    ep.health.count(o)
                );
            }
        }
        family(
            &mut out,
            "qcc_cluster_served_total",
            "counter",
            "Requests a served cluster's endpoints answered, and of those how many came down a fallback chain.",
        );
        for c in self.clusters.iter().filter(|c| !c.retired) {
            let name = escape(&c.name);
            let _ = writeln!(
                out,
                "qcc_cluster_served_total{{cluster=\"{name}\",via=\"direct\"}} {}",
                c.served - c.fell_back
            );
            let _ = writeln!(out, "qcc_cluster_served_total{{cluster=\"{name}\",via=\"fallback\"}} {}", c.fell_back);
        }
        family(&mut out, "qcc_retries_total", "counter", "Requests tried again on another endpoint.");
        let _ = writeln!(out, "qcc_retries_total {}", self.stats.retries);
        family(
            &mut out,
            "qcc_pool_stale_retries_total",
            "counter",
            "Requests sent again on a fresh connection: a pooled one that sat idle closed before answering.",
        );
        let _ = writeln!(out, "qcc_pool_stale_retries_total {}", self.stats.stale_retries);
        family(
            &mut out,
            "qcc_pool_races_total",
            "counter",
            "Attempts that failed on a pooled connection closed before answering (not blamed on the endpoint).",
        );
        let _ = writeln!(out, "qcc_pool_races_total {}", self.stats.pool_races);
        family(&mut out, "qcc_history_dropped_total", "counter", "Access-log lines dropped: the disk did not keep up.");
        let _ = writeln!(out, "qcc_history_dropped_total {}", self.stats.history_dropped);
        family(&mut out, "qcc_requests_in_flight", "gauge", "Requests in progress.");
        let in_flight: u32 = live.iter().map(|e| e.in_flight.get()).sum();
        let _ = writeln!(out, "qcc_requests_in_flight {in_flight}");
        family(&mut out, "qcc_client_connections", "gauge", "Open client connections.");
        let _ = writeln!(out, "qcc_client_connections {}", conns.clients);
        family(&mut out, "qcc_upstream_connections", "gauge", "Open upstream connections (idle ones included).");
        let _ = writeln!(out, "qcc_upstream_connections {}", conns.upstreams);
        family(&mut out, "qcc_endpoint_up", "gauge", "1 when the endpoint would be picked now.");
        for ep in &live {
            let _ = writeln!(out, "qcc_endpoint_up{{{}}} {}", labels(ep), u8::from(ep.routable(&self.failures, now)));
        }
        family(&mut out, "qcc_ratelimit_remaining", "gauge", "What the endpoint last said is left of its rate limit.");
        for ep in &live {
            for (dim, w) in crate::policy::headroom::DIMS.iter().zip(&ep.headroom.dims) {
                if let Some(r) = w.and_then(|w| w.remaining) {
                    let _ = writeln!(out, "qcc_ratelimit_remaining{{{},dimension=\"{dim}\"}} {r}", labels(ep));
                }
            }
        }
        family(&mut out, "qcc_ratelimit_limit", "gauge", "The endpoint's rate limit, as it last said.");
        for ep in &live {
            for (dim, w) in crate::policy::headroom::DIMS.iter().zip(&ep.headroom.dims) {
                if let Some(l) = w.and_then(|w| w.limit) {
                    let _ = writeln!(out, "qcc_ratelimit_limit{{{},dimension=\"{dim}\"}} {l}", labels(ep));
                }
            }
        }
        family(&mut out, "qcc_failure_queue_size", "gauge", "Endpoints in the failure queue.");
        let _ = writeln!(out, "qcc_failure_queue_size {}", self.failures.len());
        family(&mut out, "qcc_failure_queue_events_total", "counter", "Failure queue events since the counters began.");
        let q = self.failures.stats();
        for (event, n) in [
            ("failed", q.total_failed),
            ("verified", q.total_verified),
            ("recovered", q.total_recovered),
            ("still_failed", q.total_still_failed),
        ] {
            let _ = writeln!(out, "qcc_failure_queue_events_total{{event=\"{event}\"}} {n}");
        }
        family(
            &mut out,
            "qcc_upstream_ttfb_seconds",
            "histogram",
            "Upstream time to the response head of successful attempts.",
        );
        for ep in &live {
            let c = &ep.counters;
            for (i, le) in TTFB_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "qcc_upstream_ttfb_seconds_bucket{{{},le=\"{le}\"}} {}",
                    labels(ep),
                    c.ttfb_buckets[i]
                );
            }
            let _ = writeln!(out, "qcc_upstream_ttfb_seconds_bucket{{{},le=\"+Inf\"}} {}", labels(ep), c.ttfb_count);
            let _ = writeln!(out, "qcc_upstream_ttfb_seconds_sum{{{}}} {}", labels(ep), c.ttfb_sum);
            let _ = writeln!(out, "qcc_upstream_ttfb_seconds_count{{{}}} {}", labels(ep), c.ttfb_count);
        }
        // Dollars over the days the usage book keeps (90), priced models only.
        let mut cost: std::collections::BTreeMap<(&str, &str), f64> = std::collections::BTreeMap::new();
        for day in self.usage.last_days_ref() {
            for (ep, models) in day {
                for (model, c) in models {
                    if let Some(x) = self.settings.prices.cost(model, c) {
                        *cost.entry((ep.as_str(), model.as_str())).or_default() += x;
                    }
                }
            }
        }
        if !cost.is_empty() {
            family(
                &mut out,
                "qcc_cost_usd_total",
                "counter",
                "What the counted tokens cost, in US dollars, by endpoint and model.",
            );
            for ((ep, model), usd) in cost {
                let name = self.endpoints.iter().rev().find(|e| e.cfg.id == ep).map_or("", |e| e.cfg.name.as_str());
                let model = model.replace(['\\', '"', '\n'], "_");
                let _ =
                    writeln!(out, "qcc_cost_usd_total{{endpoint=\"{ep}\",name=\"{name}\",model=\"{model}\"}} {usd}");
            }
        }
        let today = crate::store::timefmt::date(SystemTime::now());
        if let Some(day) = self.usage.day(&today) {
            family(&mut out, "qcc_tokens_today", "gauge", "Tokens counted today (UTC) by endpoint, model and kind.");
            for (ep, models) in day {
                for (model, c) in models {
                    let model = model.replace(['\\', '"', '\n'], "_");
                    for (kind, n) in [
                        ("input", c.input_tokens),
                        ("output", c.output_tokens),
                        ("cache_creation", c.cache_creation_input_tokens),
                        ("cache_read", c.cache_read_input_tokens),
                    ] {
                        let name =
                            self.endpoints.iter().rev().find(|e| e.cfg.id == *ep).map_or("", |e| e.cfg.name.as_str());
                        let _ = writeln!(
                            out,
                            "qcc_tokens_today{{endpoint=\"{ep}\",name=\"{name}\",model=\"{model}\",kind=\"{kind}\"}} {n}"
                        );
                    }
                }
            }
        }
        self.keys_metrics(&mut out, now);
        family(&mut out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.");
        let start = self.started_wall.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(out, "process_start_time_seconds {start}");
        if let Some(rss) = proc_status_bytes("VmRSS:") {
            family(&mut out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            family(&mut out, "process_open_fds", "gauge", "Number of open file descriptors.");
            let _ = writeln!(out, "process_open_fds {}", dir.count());
        }
        out
    }
}

fn proc_status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = text.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The labels that name an endpoint in `/metrics`: its id, its name and its cluster's name
/// (a profile's name, escaped as a label value).
fn labels(ep: &crate::proxy::state::Endpoint, clusters: &[crate::proxy::clusters::Cluster]) -> String {
    let cluster = clusters.get(ep.cluster).map_or("", |c| &*c.name);
    format!("endpoint=\"{}\",name=\"{}\",cluster=\"{}\"", ep.cfg.id, ep.cfg.name, escape(cluster))
}

/// A label value as the exposition format writes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
