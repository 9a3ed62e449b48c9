//! `GET /_qcc/session?id=SESSION`: what `qcc statusline` shows inside Claude Code for one
//! session: the cluster and endpoint that answered it last and the model they were sent, its
//! tokens and cost today, and, when it came with a client key that has a daily budget, what is
//! left of it. Read from the recent-requests ring, the usage book and the keys table: nothing is
//! kept for it.

use serde_json::{json, Value};

use crate::proxy::shared::Shared;

impl Shared {
    pub(in crate::proxy) fn session_json(&self, id: &str) -> Value {
        // The ring keeps the session's first 8 characters (as the logs show it).
        let tag = id.get(..8).unwrap_or(id);
        let last = (!id.is_empty()).then(|| self.recent.newest(|r| r.session == tag)).flatten();
        let day = &self.usage_day.1;
        let today = self.usage.session_day(day, id);
        let mut out = json!({
            "session": tag,
            "serving": self.clusters[0].name.to_string(),
            "tokens_today": today.as_ref().map_or(0, |s| s.counts.all_tokens()),
            "cost_today": today.as_ref().map_or(0.0, |s| s.cost_usd),
        });
        if let Some(r) = last {
            out["cluster"] = json!(r.cluster);
            out["endpoint"] = json!(r.endpoint_name);
            out["model"] = json!(if r.model_sent.is_empty() { &r.model } else { &r.model_sent });
            if let Some(k) = self.keys.find(&r.key).filter(|_| !r.key.is_empty()) {
                let used = self.usage.key_day(day, &r.key);
                let limits = &k.entry.limits;
                out["key"] = json!({
                    "name": r.key,
                    "usd_left": limits.daily_usd.map(|d| (d - used.cost_usd).max(0.0)),
                    "tokens_left": limits.daily_tokens.map(|d| d.saturating_sub(used.tokens())),
                });
            }
        }
        out
    }
}
