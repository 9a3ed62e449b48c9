//! Token usage per day, endpoint and model: `$QCC_HOME/usage.json`, written by the proxy
//! (coalesced, atomic) and read by `qcc usage`. Bounded to the last 90 days.
//!
//! ```json
//! {"days": {"2026-11-25": {"3f2a9c1d": {"claude-sonnet-4-5": {"requests": 3, "input_tokens": 120,
//!   "output_tokens": 45, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 9000}}}},
//!  "updated_at": "2026-11-25T14:02:00.000000"}
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Days kept in the file.
pub const KEEP_DAYS: usize = 90;
/// Model names are the upstream's to choose: longer ones are cut to this many bytes...
pub const MAX_MODEL_NAME: usize = 64;
/// ...and an endpoint's models past this many in one day are counted under [`OTHER_MODELS`],
/// so an upstream inventing a name per reply cannot grow the file, `/metrics` or the status.
pub const MAX_MODELS_PER_DAY: usize = 32;
pub const OTHER_MODELS: &str = "other";

/// A model name as it is kept: at most [`MAX_MODEL_NAME`] bytes (cut at a character boundary).
pub fn model_name(name: &str) -> &str {
    crate::mask::clip(name, MAX_MODEL_NAME)
}

/// The counters of one (day, endpoint, model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl Counts {
    /// Every kind of token the upstream reported, together (input, output, cache writes and
    /// reads).
    pub fn all_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_creation_input_tokens)
            .saturating_add(self.cache_read_input_tokens)
    }

    /// Totals saturate: no count an upstream (or a hand-edited file) reports can wrap them.
    pub fn add(&mut self, o: &Counts) {
        self.requests = self.requests.saturating_add(o.requests);
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cache_creation_input_tokens =
            self.cache_creation_input_tokens.saturating_add(o.cache_creation_input_tokens);
        self.cache_read_input_tokens = self.cache_read_input_tokens.saturating_add(o.cache_read_input_tokens);
    }
}

/// The most tokens one answer may report in one counter (no model comes near it): a larger
/// count is malformed, read as 0 like a negative one.
pub const MAX_TOKENS_PER_ANSWER: u64 = 100_000_000;

/// A token count in an upstream's answer: any JSON value, read as 0 unless it is a whole number
/// from 0 to `MAX_TOKENS_PER_ANSWER`. Used by every reader of usage (Messages replies and
/// streams, translated ones), so a malformed count never fails the answer it came in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount(pub u64);

impl<'de> Deserialize<'de> for TokenCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TokenCount, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TokenCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, n: u64) -> Result<TokenCount, E> {
                Ok(TokenCount(if n <= MAX_TOKENS_PER_ANSWER { n } else { 0 }))
            }
            fn visit_i64<E>(self, n: i64) -> Result<TokenCount, E> {
                Ok(TokenCount(u64::try_from(n).ok().filter(|&n| n <= MAX_TOKENS_PER_ANSWER).unwrap_or(0)))
            }
            fn visit_f64<E>(self, _: f64) -> Result<TokenCount, E> {
                Ok(TokenCount(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<TokenCount, E> {
                Ok(TokenCount(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<TokenCount, E> {
                Ok(TokenCount(0))
            }
            fn visit_unit<E>(self) -> Result<TokenCount, E> {
                Ok(TokenCount(0))
            }
            fn visit_none<E>(self) -> Result<TokenCount, E> {
                Ok(TokenCount(0))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<TokenCount, D::Error> {
                TokenCount::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<TokenCount, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TokenCount(0))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<TokenCount, A::Error> {
                while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(TokenCount(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// day -> endpoint id -> model -> counts.
pub type Days = BTreeMap<String, BTreeMap<String, BTreeMap<String, Counts>>>;

/// One Claude Code session's counts on one day: tokens, what they cost (the models with a
/// price), and when it was last seen (an order for forgetting, not a time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionCounts {
    #[serde(flatten)]
    pub counts: Counts,
    pub cost_usd: f64,
    pub seen: u64,
}

/// day -> session id (`x-claude-code-session-id`) -> counts. Only the id and the counts of a
/// session are kept.
pub type Sessions = BTreeMap<String, BTreeMap<String, SessionCounts>>;

/// Sessions kept per day; past this the least recently seen is folded into [`OTHER_SESSIONS`].
pub const MAX_SESSIONS_PER_DAY: usize = 1000;
pub const OTHER_SESSIONS: &str = "other";
/// Days of sessions kept (the per-endpoint days stay 90).
pub const SESSION_DAYS: usize = 7;

/// One client key's counts on one day: its requests (every request it made that went
/// upstream), the tokens and cost the upstreams reported, and when it was last seen (unix
/// seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyCounts {
    #[serde(flatten)]
    pub counts: Counts,
    pub cost_usd: f64,
    pub last_seen: u64,
}

impl KeyCounts {
    /// The tokens a daily token budget counts: every kind the upstream reported.
    pub fn tokens(&self) -> u64 {
        self.counts.all_tokens()
    }
}

/// day -> client key name (`store/keys.rs`; never the key) -> counts.
pub type KeyDays = BTreeMap<String, BTreeMap<String, KeyCounts>>;

/// The usage file, as written and as `/_qcc/usage` answers.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageFile {
    pub days: Days,
    pub sessions: Sessions,
    pub keys: KeyDays,
    pub updated_at: Option<String>,
}

/// The usage book, owned by the proxy's loop (like the failure queue: one owner, no lock).
#[derive(Debug, Default)]
pub struct UsageBook {
    days: Days,
    sessions: Sessions,
    keys: KeyDays,
    seen: u64,
    dirty: bool,
}

impl UsageBook {
    /// Load the file. Missing: empty. Unreadable or corrupt: empty plus a warning naming the file
    /// and the problem; the next save replaces it (it is the proxy's own state).
    pub fn load(path: &Path) -> (UsageBook, Option<String>) {
        match read_file(path) {
            Ok(UsageFile { days, sessions, keys, .. }) => {
                let seen = sessions.values().flat_map(|d| d.values()).map(|s| s.seen).max().unwrap_or(0);
                (UsageBook { days, sessions, keys, seen, dirty: false }, None)
            }
            Err(e) => (UsageBook::default_dirty(), Some(e)),
        }
    }

    /// Count one response of `endpoint` with `model` on `day` ("YYYY-MM-DD").
    pub fn record(&mut self, day: &str, endpoint: &str, model: &str, c: &Counts) {
        // Allocates only for a new day, endpoint or model: this runs for every response.
        if !self.days.contains_key(day) {
            self.days.insert(day.to_string(), BTreeMap::new());
        }
        let endpoints = self.days.get_mut(day).expect("inserted above");
        if !endpoints.contains_key(endpoint) {
            endpoints.insert(endpoint.to_string(), BTreeMap::new());
        }
        let models = endpoints.get_mut(endpoint).expect("inserted above");
        let mut model = model_name(model);
        if models.len() >= MAX_MODELS_PER_DAY && !models.contains_key(model) {
            model = OTHER_MODELS;
        }
        match models.get_mut(model) {
            Some(slot) => slot.add(c),
            None => {
                models.insert(model.to_string(), *c);
            }
        }
        while self.days.len() > KEEP_DAYS {
            self.days.pop_first();
        }
        self.dirty = true;
    }

    fn default_dirty() -> UsageBook {
        UsageBook { dirty: true, ..UsageBook::default() }
    }

    /// Count one response of Claude Code session `session` on `day`, costing `cost_usd`.
    pub fn record_session(&mut self, day: &str, session: &str, c: &Counts, cost_usd: f64) {
        self.seen += 1;
        let seen = self.seen;
        if !self.sessions.contains_key(day) {
            self.sessions.insert(day.to_string(), BTreeMap::new());
        }
        while self.sessions.len() > SESSION_DAYS {
            self.sessions.pop_first();
        }
        let Some(today) = self.sessions.get_mut(day) else { return };
        if !today.contains_key(session) && today.len() >= MAX_SESSIONS_PER_DAY {
            // The least recently seen session is folded into `other` (its counts kept there).
            let oldest =
                today.iter().filter(|(k, _)| *k != OTHER_SESSIONS).min_by_key(|(_, s)| s.seen).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                if let Some(gone) = today.remove(&k) {
                    let o = today.entry(OTHER_SESSIONS.to_string()).or_default();
                    o.counts.add(&gone.counts);
                    o.cost_usd += gone.cost_usd;
                    o.seen = o.seen.max(gone.seen);
                }
            }
        }
        let s = today.entry(session.to_string()).or_default();
        s.counts.add(c);
        s.cost_usd += cost_usd;
        s.seen = seen;
        self.dirty = true;
    }

    /// Count a request of client key `name` on `day`, at `unix_secs`.
    pub fn key_request(&mut self, day: &str, name: &str, unix_secs: u64) {
        let k = self.key_slot(day, name);
        k.counts.requests += 1;
        k.last_seen = unix_secs;
    }

    /// Count a response's tokens and cost for client key `name` on `day`; returns the day's
    /// counts before and after.
    pub fn record_key(&mut self, day: &str, name: &str, c: &Counts, cost_usd: f64) -> (KeyCounts, KeyCounts) {
        let k = self.key_slot(day, name);
        let before = *k;
        k.counts.add(&Counts { requests: 0, ..*c });
        k.cost_usd += cost_usd;
        (before, *k)
    }

    /// Client key `name`'s counts on `day`.
    /// A session's counts on `day` (by its id as charged), if it has any.
    pub fn session_day(&self, day: &str, session: &str) -> Option<SessionCounts> {
        self.sessions.get(day).and_then(|d| d.get(session)).cloned()
    }

    pub fn key_day(&self, day: &str, name: &str) -> KeyCounts {
        self.keys.get(day).and_then(|d| d.get(name)).copied().unwrap_or_default()
    }

    fn key_slot(&mut self, day: &str, name: &str) -> &mut KeyCounts {
        if !self.keys.contains_key(day) {
            while self.keys.len() >= KEEP_DAYS {
                self.keys.pop_first();
            }
            self.keys.insert(day.to_string(), BTreeMap::new());
        }
        self.dirty = true;
        // (Looked up, not `entry(day.to_string())`: this runs for every keyed request.)
        let today = self.keys.get_mut(day).expect("inserted above");
        if !today.contains_key(name) {
            today.insert(name.to_string(), KeyCounts::default());
        }
        today.get_mut(name).expect("inserted above")
    }

    /// The client keys' counts of the last `n` days held.
    pub fn last_keys(&self, n: usize) -> KeyDays {
        self.keys.iter().rev().take(n.max(1)).map(|(d, v)| (d.clone(), v.clone())).collect()
    }

    /// The sessions of the last `n` days held.
    pub fn last_sessions(&self, n: usize) -> Sessions {
        self.sessions.iter().rev().take(n.max(1)).map(|(d, v)| (d.clone(), v.clone())).collect()
    }

    /// Every day held, each endpoint's models.
    pub fn last_days_ref(&self) -> impl Iterator<Item = &BTreeMap<String, BTreeMap<String, Counts>>> {
        self.days.values()
    }

    /// The last `n` days held (the live view of `qcc usage`).
    pub fn last_days(&self, n: usize) -> Days {
        self.days.iter().rev().take(n.max(1)).map(|(d, v)| (d.clone(), v.clone())).collect()
    }

    pub fn day(&self, day: &str) -> Option<&BTreeMap<String, BTreeMap<String, Counts>>> {
        self.days.get(day)
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The file's bytes as of now, for a writer elsewhere (the proxy's disk thread); the book
    /// counts as written until `mark_dirty` says the write failed.
    pub fn take_bytes(&mut self, now: SystemTime) -> Vec<u8> {
        #[derive(Serialize)]
        struct FileRef<'a> {
            days: &'a Days,
            sessions: &'a Sessions,
            keys: &'a KeyDays,
            updated_at: String,
        }
        let file = FileRef {
            days: &self.days,
            sessions: &self.sessions,
            keys: &self.keys,
            updated_at: crate::store::timefmt::iso(now),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        bytes.push(b'\n');
        self.dirty = false;
        bytes
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

/// The usage file (for `qcc usage`); a missing file is empty, a broken one an error naming it.
pub fn read_file(path: &Path) -> Result<UsageFile, String> {
    match crate::store::fsutil::read_file(path) {
        Ok(bytes) => serde_json::from_slice::<UsageFile>(&bytes)
            .map_err(|e| format!("{}: invalid usage file ({e})", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsageFile::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_bounds_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("qcc-usage-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("usage.json");
        let mut b = UsageBook::default();
        let c = Counts { requests: 1, input_tokens: 10, output_tokens: 5, ..Counts::default() };
        for d in 0..100 {
            b.record(&format!("2026-{:02}-{:02}", 1 + d / 28, 1 + d % 28), "aaaaaaaa", "m", &c);
        }
        b.record("2026-04-16", "aaaaaaaa", "m", &c);
        assert_eq!(b.days.len(), KEEP_DAYS);
        assert_eq!(b.day("2026-04-16").unwrap()["aaaaaaaa"]["m"].requests, 2);
        crate::store::fsutil::atomic_write(&path, &b.take_bytes(SystemTime::now())).unwrap();
        b.key_request("2026-04-16", "bob", 1);
        let c2 = Counts { requests: 1, input_tokens: 7, cache_read_input_tokens: 3, ..Counts::default() };
        let (before, after) = b.record_key("2026-04-16", "bob", &c2, 0.25);
        assert_eq!((before.tokens(), after.tokens(), after.counts.requests), (0, 10, 1));
        crate::store::fsutil::atomic_write(&path, &b.take_bytes(SystemTime::now())).unwrap();
        let (again, warning) = UsageBook::load(&path);
        assert!(warning.is_none());
        assert_eq!(again.days, b.days);
        assert_eq!(again.key_day("2026-04-16", "bob").cost_usd, 0.25, "key budgets survive a restart");
        std::fs::write(&path, "{not json").unwrap();
        let (empty, warning) = UsageBook::load(&path);
        assert!(empty.dirty);
        assert!(empty.days.is_empty() && warning.unwrap().contains("usage.json"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sessions_are_bounded_with_the_least_recently_seen_folded_into_other() {
        let mut b = UsageBook::default();
        let c = Counts { requests: 1, output_tokens: 2, ..Counts::default() };
        for i in 0..(MAX_SESSIONS_PER_DAY + 10) {
            b.record_session("2026-12-02", &format!("s{i}"), &c, 0.5);
        }
        b.record_session("2026-12-02", "s5", &c, 0.5); // s5 was folded; it comes back new
        let day = &b.sessions["2026-12-02"];
        assert!(day.len() <= MAX_SESSIONS_PER_DAY + 1);
        let total: u64 = day.values().map(|s| s.counts.requests).sum();
        assert_eq!(total, (MAX_SESSIONS_PER_DAY + 11) as u64, "nothing lost");
        assert!(day[OTHER_SESSIONS].counts.requests >= 10);
        assert!(!day.contains_key("s0"), "the least recently seen went first");
        for d in 0..10 {
            b.record_session(&format!("2026-11-{:02}", 10 + d), "x", &c, 0.0);
        }
        assert!(b.sessions.len() <= SESSION_DAYS);
    }

    #[test]
    fn model_names_are_capped_in_length_and_number() {
        let mut b = UsageBook::default();
        let c = Counts { requests: 1, ..Counts::default() };
        let long = format!("{}é", "m".repeat(MAX_MODEL_NAME - 1));
        b.record("2026-12-02", "ep", &long, &c);
        for i in 0..1000 {
            b.record("2026-12-02", "ep", &format!("model-{i}"), &c);
        }
        let models = &b.day("2026-12-02").unwrap()["ep"];
        assert_eq!(models.len(), MAX_MODELS_PER_DAY + 1);
        assert!(models.contains_key(&"m".repeat(MAX_MODEL_NAME - 1)), "cut at a character boundary");
        assert_eq!(models[OTHER_MODELS].requests, 1001 - MAX_MODELS_PER_DAY as u64);
        assert_eq!(models.values().map(|c| c.requests).sum::<u64>(), 1001, "nothing lost");
        b.record("2026-12-03", "ep", "model-999", &c);
        assert!(b.day("2026-12-03").unwrap()["ep"].contains_key("model-999"), "a new day starts afresh");
    }
}
