//! The failure queue: endpoints that failed, waiting for a recovery probe; persisted in the
//! Python qcc's shape (`failure_endpoints.json`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::store::timefmt::iso;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub total_failed: u64,
    pub total_verified: u64,
    pub total_recovered: u64,
    pub total_still_failed: u64,
}

/// The queue of failed endpoints and its counters.
///
/// **Single-owner invariant (what replaces the Python 0.4.1 `asyncio.Lock`).** A
/// `FailureQueue` is a plain struct owned by the proxy's event loop, which runs on one thread.
/// It is reachable only through a `&mut` borrowed from that loop: there is no `Mutex`,
/// `RefCell`, `Arc` or atomic around it, and the type is never shared with another thread.
/// So `add` runs "is it queued? insert, count, log" as one uninterruptible step: there is no
/// await point and no other thread between the check and the count, hence no double counting
/// and no lost update. The borrow checker enforces it: a second `&mut` cannot exist.
pub struct FailureQueue {
    /// Queued ids in the order they failed (a handful: a Vec beats a set here).
    failed: Vec<String>,
    last_check_times: BTreeMap<String, String>,
    stats: QueueStats,
    /// Top-level fields of the file we do not know, written back untouched.
    extra: Map<String, Value>,
    /// Why and since when each queued endpoint is queued (shown by `qcc queue list`; in memory
    /// only: the Python file has no place for it).
    why: BTreeMap<String, (String, SystemTime)>,
    dirty: bool,
}

impl Default for FailureQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl FailureQueue {
    pub fn new() -> FailureQueue {
        FailureQueue {
            failed: Vec::new(),
            last_check_times: BTreeMap::new(),
            stats: QueueStats::default(),
            extra: Map::new(),
            why: BTreeMap::new(),
            dirty: false,
        }
    }

    /// Load `$QCC_HOME/failure_endpoints.json` as at proxy start: queued ids are cleared,
    /// counters and check times kept. Missing file: empty queue, no warning. Unreadable or
    /// corrupt: empty queue plus a warning naming the file and the problem; the next save
    /// replaces the file (it is the proxy's own state, not the user's config).
    pub fn load(path: &Path) -> (FailureQueue, Option<String>) {
        let mut q = FailureQueue::new();
        let bytes = match crate::store::fsutil::read_file(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (q, None),
            Err(e) => return (q, Some(format!("{}: {e}", path.display()))),
        };
        let root = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return (q, Some(format!("{}: not a JSON object", path.display()))),
            Err(e) => return (q, Some(format!("{}: invalid JSON: {e}", path.display()))),
        };
        for (k, v) in root {
            match k.as_str() {
                "stats" => {
                    let n = |f: &str| v.get(f).and_then(Value::as_u64).unwrap_or(0);
                    q.stats = QueueStats {
                        total_failed: n("total_failed"),
                        total_verified: n("total_verified"),
                        total_recovered: n("total_recovered"),
                        total_still_failed: n("total_still_failed"),
                    };
                }
                "last_check_times" => {
                    if let Value::Object(m) = v {
                        q.last_check_times =
                            m.into_iter().filter_map(|(id, t)| t.as_str().map(|t| (id, t.to_string()))).collect();
                    }
                }
                "failed_endpoints" => {
                    // Cleared on start (the Python qcc does the same); rewritten on next save.
                    if v.as_array().is_some_and(|a| !a.is_empty()) {
                        q.dirty = true;
                    }
                }
                "updated_at" => {}
                _ => {
                    q.extra.insert(k, v);
                }
            }
        }
        (q, None)
    }

    /// Returns true when newly queued (counted); false when already queued (no counter change).
    /// The caller logs it: it knows the endpoint's name.
    pub fn add(&mut self, id: &str, reason: &str, now: SystemTime) -> bool {
        if self.contains(id) {
            return false;
        }
        self.failed.push(id.to_string());
        self.why.insert(id.to_string(), (reason.to_string(), now));
        self.last_check_times.insert(id.to_string(), iso(now));
        self.stats.total_failed += 1;
        self.dirty = true;
        true
    }

    /// Returns true when it was queued.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.failed.len();
        self.failed.retain(|f| f != id);
        self.why.remove(id);
        let removed = self.failed.len() != before;
        self.dirty |= removed;
        removed
    }

    /// A probe of a queued endpoint finished: counts verified and recovered/still_failed,
    /// removes it on success, updates last_check_times. Returns true when it was removed.
    pub fn record_probe(&mut self, id: &str, recovered: bool, now: SystemTime) -> bool {
        self.stats.total_verified += 1;
        let removed = if recovered {
            self.stats.total_recovered += 1;
            self.remove(id)
        } else {
            self.stats.total_still_failed += 1;
            false
        };
        self.last_check_times.insert(id.to_string(), iso(now));
        self.dirty = true;
        removed
    }

    /// Why `id` was queued and when (queued in this run of the proxy).
    pub fn why(&self, id: &str) -> Option<(&str, SystemTime)> {
        self.why.get(id).map(|(r, t)| (r.as_str(), *t))
    }

    /// When `id` was last checked (queued or probed), as the file has it.
    pub fn last_check(&self, id: &str) -> Option<&str> {
        self.last_check_times.get(id).map(String::as_str)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.failed.iter().any(|f| f == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.failed.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.failed.len()
    }

    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// Remove every queued id (qcc queue clear); counters kept.
    pub fn clear(&mut self) {
        if !self.failed.is_empty() {
            self.failed.clear();
            self.why.clear();
            self.dirty = true;
        }
    }

    /// Changed since the last successful save.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The file's JSON (existing shape plus unknown fields kept); `now` fills updated_at.
    pub fn to_json(&self, now: SystemTime) -> Value {
        let mut root = self.extra.clone();
        root.insert("failed_endpoints".into(), json!(self.failed));
        root.insert("last_check_times".into(), json!(self.last_check_times));
        root.insert(
            "stats".into(),
            json!({
                "total_failed": self.stats.total_failed,
                "total_verified": self.stats.total_verified,
                "total_recovered": self.stats.total_recovered,
                "total_still_failed": self.stats.total_still_failed,
            }),
        );
        root.insert("updated_at".into(), json!(iso(now)));
        Value::Object(root)
    }

    /// Atomic write of `to_json` to `path`; clears the dirty flag on success.
    pub fn save(&mut self, path: &Path, now: SystemTime) -> std::io::Result<()> {
        crate::store::fsutil::atomic_write(path, &self.take_bytes(now))
    }

    /// The file's bytes as of now, for a writer elsewhere (the proxy's disk thread); the queue
    /// counts as written until `mark_dirty` says the write failed.
    pub fn take_bytes(&mut self, now: SystemTime) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(&self.to_json(now)).unwrap_or_default();
        bytes.push(b'\n');
        self.dirty = false;
        bytes
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_endpoint_ten_times_counts_once() {
        let mut q = FailureQueue::new();
        let now = SystemTime::now();
        let added: Vec<bool> = (0..10).map(|_| q.add("aaaa0001", "HTTP 500", now)).collect();
        assert_eq!(added.iter().filter(|a| **a).count(), 1);
        assert_eq!(q.stats().total_failed, 1);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn seed_scenario_two_endpoints_ten_failures_each_interleaved() {
        let mut q = FailureQueue::new();
        let now = SystemTime::now();
        for _ in 0..10 {
            q.add("bbbb0001", "timeout", now);
            q.add("bbbb0002", "HTTP 502", now);
        }
        assert_eq!(q.stats().total_failed, 2);
        assert_eq!(q.len(), 2);
        assert_eq!(q.ids().count(), q.len());
    }

    #[test]
    fn distinct_endpoints_and_remove_then_fail_again() {
        let mut q = FailureQueue::new();
        let now = SystemTime::now();
        for i in 0..10 {
            assert!(q.add(&format!("c{i:07}"), "x", now));
        }
        assert_eq!(q.stats().total_failed, 10);
        assert!(q.remove("c0000003"));
        assert!(!q.remove("c0000003"));
        assert!(q.add("c0000003", "again", now));
        assert_eq!(q.stats().total_failed, 11);
        assert_eq!(q.len(), 10);
    }

    #[test]
    fn probes_count_and_restore() {
        let mut q = FailureQueue::new();
        let now = SystemTime::now();
        q.add("d0000001", "x", now);
        q.record_probe("d0000001", false, now);
        assert!(q.contains("d0000001"));
        q.record_probe("d0000001", true, now);
        assert!(!q.contains("d0000001"));
        assert_eq!(
            q.stats(),
            &QueueStats { total_failed: 1, total_verified: 2, total_recovered: 1, total_still_failed: 1 }
        );
    }

    #[test]
    fn load_save_round_trip_keeps_counters_and_unknown_fields() {
        let dir = std::env::temp_dir().join(format!("qcc-fq-{}", std::process::id()));
        let path = dir.join("failure_endpoints.json");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            &path,
            r#"{"failed_endpoints": ["e0000001"], "last_check_times": {"e0000001": "2025-10-17T10:05:00.123456"},
               "stats": {"total_failed": 4, "total_verified": 3, "total_recovered": 2, "total_still_failed": 1},
               "updated_at": "2025-10-17T10:05:00.123456", "future_field": {"x": 1}}"#,
        )
        .unwrap();
        let (mut q, warning) = FailureQueue::load(&path);
        assert_eq!(warning, None);
        assert_eq!(q.len(), 0, "queued ids are cleared on start");
        assert_eq!(q.stats().total_failed, 4);
        assert!(q.is_dirty());
        q.save(&path, SystemTime::now()).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["future_field"]["x"], 1);
        assert_eq!(v["stats"]["total_recovered"], 2);
        assert_eq!(v["failed_endpoints"], json!([]));
        assert_eq!(v["last_check_times"]["e0000001"], "2025-10-17T10:05:00.123456");

        std::fs::write(&path, b"{ not json").unwrap();
        let (q, warning) = FailureQueue::load(&path);
        assert_eq!(q.stats().total_failed, 0);
        assert!(warning.unwrap().contains("failure_endpoints.json"));
        let (_, warning) = FailureQueue::load(&dir.join("missing.json"));
        assert_eq!(warning, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
