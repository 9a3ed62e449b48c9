//! The alerts themselves: what each event says (`endpoint_down`, `endpoint_up`, `all_down`,
//! `budget_reached`; `cluster_switch` is `switches.rs`'s), made from the shared state and queued
//! for every receiver. Sending them is the loop's (`notify.rs`).

use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use crate::proxy::shared::Shared;

impl Shared {
    /// Queue alert `event` for every receiver. `fields` (an object) adds to the common ones;
    /// `text` is the one line a chat webhook shows.
    pub(in crate::proxy) fn alert(&mut self, event: &'static str, fields: Value, text: String, now: Instant) {
        if !self.notifier.any() {
            return;
        }
        let mut body = json!({
            "event": event,
            "time": format!("{}Z", crate::store::timefmt::iso(SystemTime::now())),
            "cluster": &*self.clusters[0].name,
            "proxy": self.addr.to_string(),
            "text": text,
            "content": text,
        });
        if let (Some(b), Value::Object(more)) = (body.as_object_mut(), fields) {
            b.extend(more);
        }
        log::info!("alert {event}: {text}");
        self.notifier.queue(event, body.to_string().into_bytes(), now);
    }

    /// Endpoint `idx` entered the failure queue; when it was the last usable one, `all_down`.
    pub(in crate::proxy) fn endpoint_down_alert(&mut self, idx: usize, reason: &str, now: Instant) {
        let c = self.endpoints[idx].cluster;
        let cluster = std::rc::Rc::clone(&self.clusters[c].name);
        let ep = &self.endpoints[idx].cfg;
        let text = format!(
            "qcc: endpoint '{}' of cluster '{cluster}' is down ({reason}); it is probed every {} s",
            ep.name,
            self.settings.verify_interval.as_secs()
        );
        let fields = json!({"endpoint": ep.name, "endpoint_id": ep.id, "url": crate::mask::mask_url(&ep.url.to_string()),
                            "reason": reason, "cluster": &*cluster});
        self.alert("endpoint_down", fields, text, now);
        let mine = |e: &&crate::proxy::state::Endpoint| e.cluster == c && e.cfg.enabled && !e.retired;
        let left = self.endpoints.iter().filter(mine).filter(|e| !self.failures.contains(&e.cfg.id)).count();
        if left == 0 && self.notifier.all_down & (1 << c) == 0 {
            self.notifier.all_down |= 1 << c;
            let down = self.endpoints.iter().filter(mine).count();
            let chain: Vec<&str> = self.clusters[c].chain[1..].iter().map(|&f| &*self.clusters[f].name).collect();
            let then = match chain.is_empty() {
                true => "requests fail until one answers again".to_string(),
                false => format!("requests go to {} until one answers again", chain.join(", then ")),
            };
            let text = format!("qcc: no usable endpoint left in cluster '{cluster}' ({down} down): {then}");
            self.alert("all_down", json!({"endpoints_down": down, "cluster": &*cluster, "fallback": chain}), text, now);
        }
    }

    /// Client key `name` reached `limit` (`message` says which and until when).
    pub(in crate::proxy) fn budget_alert(
        &mut self,
        name: &str,
        limit: crate::policy::limits::Limit,
        message: &str,
        now: Instant,
    ) {
        let fields = json!({"key": name, "limit": limit.as_str(), "message": message});
        self.alert("budget_reached", fields, format!("qcc: {message}"), now);
    }

    pub(in crate::proxy) fn endpoint_up_alert(&mut self, idx: usize, how: &str, now: Instant) {
        let c = self.endpoints[idx].cluster;
        self.notifier.all_down &= !(1 << c);
        let cluster = &*self.clusters[c].name;
        let ep = &self.endpoints[idx].cfg;
        let text = format!("qcc: endpoint '{}' of cluster '{cluster}' is back ({how})", ep.name);
        let fields = json!({"endpoint": ep.name, "endpoint_id": ep.id, "reason": how, "cluster": cluster});
        self.alert("endpoint_up", fields, text, now);
    }
}
