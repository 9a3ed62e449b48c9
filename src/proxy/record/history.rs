//! A bounded ring of what happened to the endpoints (failures, queueing, probes, recoveries,
//! reloads), for `qcc health history` and the status page. Loop state, like everything else.

use std::collections::VecDeque;
use std::time::SystemTime;

use serde_json::{json, Value};

/// Events kept; older ones are dropped.
const KEEP: usize = 500;

pub struct Event {
    pub at: SystemTime,
    /// Endpoint id, or "" for the cluster as a whole (a reload).
    pub endpoint: String,
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Default)]
pub struct History(VecDeque<Event>);

impl History {
    pub fn push(&mut self, endpoint: &str, kind: &'static str, detail: impl Into<String>) {
        if self.0.len() == KEEP {
            self.0.pop_front();
        }
        self.0.push_back(Event { at: SystemTime::now(), endpoint: endpoint.to_string(), kind, detail: detail.into() });
    }

    /// The newest `n` events (of `endpoint` when given), oldest first.
    pub fn to_json(&self, endpoint: Option<&str>, n: usize) -> Value {
        let picked: Vec<&Event> =
            self.0.iter().rev().filter(|e| endpoint.is_none_or(|id| e.endpoint == id)).take(n).collect();
        Value::Array(
            picked
                .into_iter()
                .rev()
                .map(|e| {
                    json!({"time": crate::store::timefmt::iso(e.at), "endpoint": e.endpoint, "event": e.kind,
                           "detail": e.detail})
                })
                .collect(),
        )
    }
}
