//! The failure queue: endpoints that failed, waiting for a recovery probe.
//!
//! (The single-owner invariant doc comment goes on `FailureQueue`.)

use std::path::Path;
use std::time::SystemTime;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub total_failed: u64,
    pub total_verified: u64,
    pub total_recovered: u64,
    pub total_still_failed: u64,
}

pub struct FailureQueue {
    // private: queued ids in insertion order, last_check_times, stats, unknown fields kept, dirty flag
}

impl FailureQueue {
    pub fn new() -> FailureQueue {
        todo!()
    }
    /// Load `$QCC_HOME/failure_endpoints.json`. Queued ids are cleared, counters kept.
    /// Missing file: empty queue, no warning. Corrupt file: empty queue plus a warning string
    /// naming the file and the problem (the caller logs it; the next save replaces the file).
    pub fn load(path: &Path) -> (FailureQueue, Option<String>) {
        let _ = path;
        todo!()
    }
    /// Returns true when newly queued (counted, INFO logged); false when already queued (DEBUG only).
    pub fn add(&mut self, id: &str, reason: &str, now: SystemTime) -> bool {
        let _ = (id, reason, now);
        todo!()
    }
    /// Returns true when it was queued.
    pub fn remove(&mut self, id: &str) -> bool {
        let _ = id;
        todo!()
    }
    /// A probe of a queued endpoint finished: counts verified and recovered/still_failed,
    /// removes it on success, updates last_check_times.
    pub fn record_probe(&mut self, id: &str, recovered: bool, now: SystemTime) {
        let _ = (id, recovered, now);
        todo!()
    }
    pub fn contains(&self, id: &str) -> bool {
        let _ = id;
        todo!()
    }
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::empty()
    }
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn stats(&self) -> &QueueStats {
        todo!()
    }
    /// Remove every queued id (qcc queue clear); counters kept.
    pub fn clear(&mut self) {
        todo!()
    }
    /// Changed since the last `to_json`/save.
    pub fn is_dirty(&self) -> bool {
        todo!()
    }
    /// The file's JSON (existing shape plus unknown fields kept); `now` fills updated_at.
    pub fn to_json(&self, now: SystemTime) -> serde_json::Value {
        let _ = now;
        todo!()
    }
    /// Atomic write of `to_json` to `path`; clears the dirty flag on success.
    pub fn save(&mut self, path: &Path, now: SystemTime) -> std::io::Result<()> {
        let _ = (path, now);
        todo!()
    }
}
