//! A cluster's requests moving down its fallback chain and back, said once per move: a log
//! line, an event in the history, an alert (`cluster_switch`), and, when the proxy serves the
//! profile priorities (`Settings::chain`), a `switch_history` entry in `priority.json` of type
//! `failover` (to a later profile) or `auto` (back to the first: qcc tries it first on every
//! request, so it is back as soon as it answers).

use std::time::Instant;

use serde_json::json;

use crate::proxy::shared::Shared;

impl Shared {
    /// A request that came in for cluster `entry` (started at `started`) was served by cluster
    /// `by`. A move is counted only from requests started after the last one, so answers still
    /// in flight from before it do not flip it back and forth.
    pub(in crate::proxy) fn note_served(&mut self, entry: usize, by: usize, started: Instant, now: Instant) {
        let room = &mut self.clusters.0[entry];
        if room.serving == by || room.switched_at.is_some_and(|t| started < t) {
            return;
        }
        let from = std::mem::replace(&mut room.serving, by);
        room.switched_at = Some(now);
        let (entry_name, from_name, to_name) = (
            self.clusters[entry].name.to_string(),
            self.clusters[from].name.to_string(),
            self.clusters[by].name.to_string(),
        );
        let (kind, reason) = match by == entry {
            true => ("auto", format!("'{entry_name}' answers again")),
            false => ("failover", format!("no endpoint of '{from_name}' could take the request")),
        };
        let text = format!("qcc: requests for '{entry_name}' now go to '{to_name}' (were '{from_name}'): {reason}");
        match kind {
            "auto" => log::info!("{text}"),
            _ => log::warn!("{text}"),
        }
        self.history.push("", "switch", format!("{from_name} -> {to_name}: {reason}"));
        let fields = json!({"from": from_name, "to": to_name, "type": kind, "reason": reason, "for": entry_name});
        self.alert("cluster_switch", fields, text, now);
        if entry == 0 && self.settings.chain.is_some() {
            self.disk.record_switch(self.settings.home.clone(), from_name, to_name, reason, kind);
        }
    }
}
