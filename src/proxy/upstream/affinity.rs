//! Session affinity: the requests of one Claude Code session stay on the endpoint that last
//! served it, because Anthropic's prompt cache belongs to the upstream account — every switch
//! re-sends the whole context uncached (a slower first token, a bigger bill).
//!
//! The key is the `x-claude-code-session-id` header, the same for every request of a session.
//! The table is plain loop state (no lock: only the loop's thread reaches it), bounded by a
//! count (least recently used evicted) and an idle expiry; every operation is O(1) amortised.
//! Sessions are keyed by a 64-bit hash of their id (no allocation per entry, ~100 bytes each);
//! a collision would only share an endpoint between two sessions.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// The request header that names a Claude Code session.
pub const SESSION_HEADER: &[u8] = b"x-claude-code-session-id";

struct Entry {
    endpoint: usize,
    last_used: Instant,
    /// Matches the newest of this key's marks in `order`; older marks are stale.
    seq: u64,
}

pub struct Affinity {
    max: usize,
    ttl: Duration,
    map: HashMap<u64, Entry>,
    /// Use marks, oldest first: `(key, seq)`. A mark whose seq no longer matches its entry is
    /// skipped (the key was used again later); compacted when stale marks dominate.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
}

impl Affinity {
    /// `max` 0 turns affinity off.
    pub fn new(max: usize, ttl: Duration) -> Affinity {
        Affinity { max, ttl, map: HashMap::new(), order: VecDeque::new(), next_seq: 0 }
    }

    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// The endpoint `session` is bound to, unless the binding went idle past the expiry.
    pub fn lookup(&mut self, cluster: usize, session: &str, now: Instant) -> Option<usize> {
        let key = key_of(cluster, session);
        let e = self.map.get(&key)?;
        if now.saturating_duration_since(e.last_used) > self.ttl {
            self.map.remove(&key);
            return None;
        }
        Some(e.endpoint)
    }

    /// Where `session` is bound, without touching the binding.
    pub fn peek(&self, cluster: usize, session: &str) -> Option<usize> {
        self.map.get(&key_of(cluster, session)).map(|e| e.endpoint)
    }

    /// `session` was served by `endpoint`: bind it there (or keep it) and mark it used.
    pub fn bind(&mut self, cluster: usize, session: &str, endpoint: usize, now: Instant) {
        if !self.enabled() {
            return;
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let key = key_of(cluster, session);
        match self.map.get_mut(&key) {
            Some(e) => {
                e.endpoint = endpoint;
                e.last_used = now;
                e.seq = seq;
            }
            None => {
                self.map.insert(key, Entry { endpoint, last_used: now, seq });
            }
        }
        self.order.push_back((key, seq));
        while self.map.len() > self.max {
            self.evict_oldest();
        }
        if self.order.len() > 2 * self.map.len() + 64 {
            self.compact();
        }
    }

    /// Drop bindings idle past the expiry (oldest first; stops at the first live one).
    pub fn expire(&mut self, now: Instant) {
        while let Some((key, seq)) = self.order.front() {
            match self.map.get(key) {
                Some(e) if e.seq == *seq => {
                    if now.saturating_duration_since(e.last_used) <= self.ttl {
                        return;
                    }
                    let key = *key;
                    self.map.remove(&key);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Sessions bound to each endpoint index (for status), indices below `n`.
    pub fn counts(&self, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for e in self.map.values() {
            if let Some(c) = counts.get_mut(e.endpoint) {
                *c += 1;
            }
        }
        counts
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    fn evict_oldest(&mut self) {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
                return;
            }
        }
    }

    fn compact(&mut self) {
        let map = &self.map;
        self.order.retain(|(key, seq)| map.get(key).is_some_and(|e| e.seq == *seq));
    }
}

/// A session's key in the table: each served cluster binds the session apart (a request routed
/// or fallen back to another cluster binds it there, and leaves its binding here alone).
fn key_of(cluster: usize, session: &str) -> u64 {
    // SipHash with fixed keys: the same id always lands on the same entry.
    let mut h = std::hash::DefaultHasher::new();
    cluster.hash(&mut h);
    session.hash(&mut h);
    h.finish()
}

/// The session id of a request, when it carries a plausible one (visible ASCII, at most 128 bytes).
pub fn session_of<'a>(mut headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Option<String> {
    let (_, v) = headers.find(|(n, _)| n.eq_ignore_ascii_case(SESSION_HEADER))?;
    let v = std::str::from_utf8(v).ok()?.trim();
    (!v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_moves_evicts_least_recently_used_and_expires() {
        let t0 = Instant::now();
        let mut a = Affinity::new(2, Duration::from_secs(60));
        a.bind(0, "s1", 0, t0);
        a.bind(0, "s2", 1, t0);
        assert_eq!((a.lookup(0, "s1", t0), a.lookup(0, "s2", t0)), (Some(0), Some(1)));
        a.bind(0, "s1", 1, t0 + Duration::from_secs(1)); // moved after a failover
        assert_eq!(a.lookup(0, "s1", t0), Some(1));
        a.bind(0, "s3", 0, t0 + Duration::from_secs(2)); // s2 is the least recently used
        assert_eq!(a.lookup(0, "s2", t0), None);
        assert_eq!(a.len(), 2);
        assert_eq!(a.counts(2), vec![1, 1]);
        // Idle past the expiry: gone on lookup, and from the front on expire.
        assert_eq!(a.lookup(0, "s1", t0 + Duration::from_secs(62)), None);
        a.expire(t0 + Duration::from_secs(63));
        assert_eq!(a.len(), 0);
        assert!(a.order.is_empty());
    }

    #[test]
    fn stale_marks_stay_bounded() {
        let t0 = Instant::now();
        let mut a = Affinity::new(10, Duration::from_secs(60));
        for i in 0..100_000u32 {
            a.bind(0, &format!("s{}", i % 3), (i % 2) as usize, t0);
        }
        assert_eq!(a.len(), 3);
        assert!(a.order.len() <= 2 * 3 + 64 + 1, "{}", a.order.len());
    }

    #[test]
    fn off_when_max_is_zero() {
        let mut a = Affinity::new(0, Duration::from_secs(60));
        a.bind(0, "s", 0, Instant::now());
        assert_eq!(a.lookup(0, "s", Instant::now()), None);
    }

    #[test]
    fn session_header_is_read_with_care() {
        let h = |v: &'static [u8]| session_of([(&b"X-Claude-Code-Session-Id"[..], v)].into_iter());
        assert_eq!(h(b"0b9d3d5e-1f0e-4a43-9b8e-3c0c2f1d2e3f").as_deref(), Some("0b9d3d5e-1f0e-4a43-9b8e-3c0c2f1d2e3f"));
        assert_eq!(h(b""), None);
        assert_eq!(h(b"a b"), None);
        assert_eq!(h(&[b'x'; 200]), None);
    }
}
