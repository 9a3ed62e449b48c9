//! The client keys as the admin surface shows them: the status JSON's `keys` table (the
//! dashboard's) and the `key`-labelled `/metrics` series. Names only; never a key, never its hash.

use std::fmt::Write;
use std::time::Instant;

use serde_json::{json, Value};

use crate::proxy::shared::keys::ACCESS_KEY_NAME;
use crate::proxy::shared::Shared;

impl Shared {
    /// Every key with today's (UTC) requests, tokens and cost, its limits and when it was last
    /// seen; the access key's row when it was used today.
    pub(in crate::proxy) fn keys_json(&self, now: Instant) -> Value {
        let day = crate::store::timefmt::date(std::time::SystemTime::now());
        let today_no = self.usage_day_no();
        let today = |name: &str| {
            let k = self.usage.key_day(&day, name);
            json!({"requests": k.counts.requests, "tokens": k.tokens(), "input_tokens": k.counts.input_tokens,
                   "output_tokens": k.counts.output_tokens, "cache_read_input_tokens": k.counts.cache_read_input_tokens,
                   "cost_usd": k.cost_usd,
                   "last_seen": (k.last_seen > 0).then(|| crate::store::timefmt::iso(
                       std::time::UNIX_EPOCH + std::time::Duration::from_secs(k.last_seen)))})
        };
        let mut rows: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                let e = &k.entry;
                json!({"name": e.name, "prefix": e.prefix, "status": e.status(today_no), "admin": e.admin,
                       "cluster": e.cluster, "expires": e.expires, "limits": e.limits,
                       "in_flight": k.in_flight.get(), "last_minute": k.window.count(now),
                       "limited": k.limited, "today": today(&e.name)})
            })
            .collect();
        // (The keys table is about client keys: the access key's row joins theirs.)
        if !rows.is_empty() && self.usage.key_day(&day, ACCESS_KEY_NAME).counts.requests > 0 {
            rows.push(json!({"name": ACCESS_KEY_NAME, "status": "active", "admin": true, "limits": {},
                             "today": today(ACCESS_KEY_NAME)}));
        }
        json!(rows)
    }

    /// The `key`-labelled series of `/metrics`.
    pub(in crate::proxy) fn keys_metrics(&self, out: &mut String, now: Instant) {
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        if self.keys.defined() {
            let day = crate::store::timefmt::date(std::time::SystemTime::now());
            family(out, "qcc_key_requests_today", "gauge", "Requests a client key made today (UTC).");
            for k in self.keys.iter() {
                let c = self.usage.key_day(&day, &k.name);
                let _ = writeln!(out, "qcc_key_requests_today{{key=\"{}\"}} {}", k.name, c.counts.requests);
            }
            family(out, "qcc_key_tokens_today", "gauge", "Tokens a client key used today (UTC), by kind.");
            for k in self.keys.iter() {
                let c = self.usage.key_day(&day, &k.name).counts;
                for (kind, n) in [
                    ("input", c.input_tokens),
                    ("output", c.output_tokens),
                    ("cache_creation", c.cache_creation_input_tokens),
                    ("cache_read", c.cache_read_input_tokens),
                ] {
                    let _ = writeln!(out, "qcc_key_tokens_today{{key=\"{}\",kind=\"{kind}\"}} {n}", k.name);
                }
            }
            family(
                out,
                "qcc_key_cost_usd_today",
                "gauge",
                "What a client key's tokens cost today (UTC), in US dollars.",
            );
            for k in self.keys.iter() {
                let _ = writeln!(
                    out,
                    "qcc_key_cost_usd_today{{key=\"{}\"}} {}",
                    k.name,
                    self.usage.key_day(&day, &k.name).cost_usd
                );
            }
            family(out, "qcc_key_in_flight", "gauge", "A client key's requests in progress.");
            for k in self.keys.iter() {
                let _ = writeln!(out, "qcc_key_in_flight{{key=\"{}\"}} {}", k.name, k.in_flight.get());
            }
            family(out, "qcc_key_requests_last_minute", "gauge", "A client key's requests started in the last 60 s.");
            for k in self.keys.iter() {
                let _ = writeln!(out, "qcc_key_requests_last_minute{{key=\"{}\"}} {}", k.name, k.window.count(now));
            }
            family(out, "qcc_key_limited_total", "counter", "Requests of a client key refused by one of its limits.");
            for k in self.keys.iter() {
                for (limit, n) in crate::policy::limits::Limit::ALL.iter().zip(k.limited) {
                    let _ =
                        writeln!(out, "qcc_key_limited_total{{key=\"{}\",limit=\"{}\"}} {n}", k.name, limit.as_str());
                }
            }
        }
        let n = &self.notifier;
        if n.receivers() > 0 {
            family(out, "qcc_alerts_total", "counter", "Alerts by what became of them.");
            for (result, v) in [("delivered", n.delivered), ("given_up", n.given_up), ("dropped", n.dropped)] {
                let _ = writeln!(out, "qcc_alerts_total{{result=\"{result}\"}} {v}");
            }
            family(out, "qcc_alerts_queued", "gauge", "Alerts waiting to be delivered.");
            let _ = writeln!(out, "qcc_alerts_queued {}", n.queued());
        }
    }
}
