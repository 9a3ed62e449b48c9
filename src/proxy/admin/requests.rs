//! What a request leaves behind when it ends: its endpoint's request counters, the
//! recent-requests ring and requests-per-second series (the dashboard's), and its line in the
//! access log (`--access-log`, handed to the disk's history thread).

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::proxy::shared::Shared;
use crate::proxy::state::Exchange;

/// Requests kept for the dashboard, and seconds of the requests-per-second series.
const RECENT: usize = 50;
/// A request's path as the ring and the access log keep it (a head may hold 64 KiB of target).
const MAX_PATH_SHOWN: usize = 512;
const SERIES_SECS: u64 = 300;

/// How a request ended, as the dashboard and the access log show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The status sent to the client.
    Status(u16),
    /// The upstream broke after the response started.
    Failed,
    /// The client went away first.
    Aborted,
}

impl Ended {
    /// Index into `CLASSES`.
    fn class(self) -> usize {
        match self {
            Ended::Status(200..=299) => 0,
            Ended::Status(300..=399) => 1,
            Ended::Status(400..=499) => 2,
            Ended::Status(500..=599) => 3,
            Ended::Status(_) | Ended::Failed => 4,
            Ended::Aborted => 5,
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Status(s) => write!(f, "{s}"),
            Ended::Failed => f.write_str("failed"),
            Ended::Aborted => f.write_str("aborted"),
        }
    }
}

/// One finished request, for the dashboard and the access log. The ring reuses the oldest
/// record's strings for the newest, so recording a request allocates nothing once it is full.
pub struct Record {
    pub at: SystemTime,
    pub method: String,
    pub path: String,
    /// The endpoint's id, or "-".
    pub endpoint: String,
    /// Its name, or "-".
    pub endpoint_name: String,
    /// The served cluster it belongs to ("" without an endpoint), and the route that sent the
    /// request there (its rule, "" when none matched).
    pub cluster: String,
    pub route: String,
    /// When the endpoint's model map renamed the request's model: the client's and the
    /// endpoint's names ("" otherwise).
    pub model_requested: String,
    pub model_sent: String,
    /// An endpoint passed over for its used-up rate limit ("" otherwise).
    pub skipped_for_headroom: String,
    pub status: Ended,
    pub attempts: u8,
    pub ttfb_ms: Option<u128>,
    pub duration_ms: u128,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The session tag, or "" for none.
    pub session: String,
    /// The client key's name (or the access key's), "" for none.
    pub key: String,
    /// Attempts that failed before the last: (endpoint id, name, why, ms). Empty (no
    /// allocation) for a request answered at the first try.
    pub failed: Vec<(String, String, String, u128)>,
    /// How long the last attempt took, unless it failed (then it is in `failed`).
    pub last_ms: Option<u128>,
    /// The model ("" when the reply named none) and the tokens it reported.
    pub model: String,
    pub tokens: Option<crate::proxy::answer::usage::Tokens>,
}

impl Default for Record {
    fn default() -> Record {
        Record {
            at: UNIX_EPOCH,
            method: String::new(),
            path: String::new(),
            endpoint: String::new(),
            endpoint_name: String::new(),
            cluster: String::new(),
            route: String::new(),
            model_requested: String::new(),
            model_sent: String::new(),
            skipped_for_headroom: String::new(),
            status: Ended::Failed,
            attempts: 0,
            ttfb_ms: None,
            duration_ms: 0,
            bytes_in: 0,
            bytes_out: 0,
            session: String::new(),
            key: String::new(),
            failed: Vec::new(),
            last_ms: None,
            model: String::new(),
            tokens: None,
        }
    }
}

impl Record {
    /// The record as the access log and `/_qcc/recent` show it: a borrowed view serialized
    /// straight to its bytes (no `Value` tree per logged request).
    fn line(&self) -> Line<'_> {
        fn some(s: &str) -> Option<&str> {
            if s.is_empty() {
                None
            } else {
                Some(s)
            }
        }
        Line {
            time: crate::store::timefmt::iso(self.at),
            method: &self.method,
            path: &self.path,
            endpoint: &self.endpoint,
            endpoint_name: &self.endpoint_name,
            cluster: some(&self.cluster),
            route: some(&self.route),
            status: Shown(self.status),
            attempts: self.attempts,
            ttfb_ms: self.ttfb_ms,
            duration_ms: self.duration_ms,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            session: some(&self.session),
            key: some(&self.key),
            model_requested: some(&self.model_requested),
            model_sent: some(&self.model_sent),
            skipped_for_headroom: some(&self.skipped_for_headroom),
            tried: Tried(self),
            tokens: self.tokens.as_ref().map(|t| TokensLine {
                model: some(&self.model),
                input: t.input,
                output: t.output,
                cache_creation: t.cache_creation,
                cache_read: t.cache_read,
            }),
        }
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self.line()).unwrap_or(Value::Null)
    }
}

/// A record's fields in the access log's order.
#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    method: &'a str,
    path: &'a str,
    endpoint: &'a str,
    endpoint_name: &'a str,
    cluster: Option<&'a str>,
    route: Option<&'a str>,
    status: Shown<Ended>,
    attempts: u8,
    ttfb_ms: Option<u128>,
    duration_ms: u128,
    bytes_in: u64,
    bytes_out: u64,
    session: Option<&'a str>,
    key: Option<&'a str>,
    model_requested: Option<&'a str>,
    model_sent: Option<&'a str>,
    skipped_for_headroom: Option<&'a str>,
    tried: Tried<'a>,
    tokens: Option<TokensLine<'a>>,
}

#[derive(serde::Serialize)]
struct TokensLine<'a> {
    model: Option<&'a str>,
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
}

/// A value as its `Display` text, written straight into the JSON string (a status: "200",
/// "failed", "aborted"; an attempt's outcome).
struct Shown<T>(T);

impl<T: std::fmt::Display> serde::Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Each attempt: which endpoint, how it ended, how long (the last one's end is the request's).
struct Tried<'a>(&'a Record);

impl serde::Serialize for Tried<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Try<'a>(&'a str, &'a str, &'a dyn std::fmt::Display, u128);
        impl serde::Serialize for Try<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("endpoint", self.0)?;
                m.serialize_entry("name", self.1)?;
                m.serialize_entry("outcome", &Shown(self.2))?;
                m.serialize_entry("ms", &self.3)?;
                m.end()
            }
        }
        let r = self.0;
        let last = r.last_ms.filter(|_| !(r.endpoint == "-" || r.endpoint.is_empty()));
        let mut seq = s.serialize_seq(Some(r.failed.len() + usize::from(last.is_some())))?;
        for (id, name, why, ms) in &r.failed {
            seq.serialize_element(&Try(id, name, why, *ms))?;
        }
        if let Some(ms) = last {
            seq.serialize_element(&Try(&r.endpoint, &r.endpoint_name, &r.status, ms))?;
        }
        seq.end()
    }
}

/// `dst = src`, keeping `dst`'s buffer.
fn set(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

/// The recent requests and the per-second request counts of the last five minutes.
#[derive(Default)]
pub struct Recent {
    requests: VecDeque<Record>,
    /// (unix second, requests ended in it), oldest first.
    per_second: VecDeque<(u64, u32)>,
}

impl Recent {
    /// The record to fill next: the oldest one when the ring is full (its buffers are reused).
    fn take_slot(&mut self) -> Record {
        if self.requests.len() >= RECENT {
            self.requests.pop_front().unwrap_or_default()
        } else {
            Record::default()
        }
    }

    fn push(&mut self, r: Record) {
        let sec = r.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match self.per_second.back_mut() {
            Some((s, n)) if *s == sec => *n += 1,
            _ => self.per_second.push_back((sec, 1)),
        }
        while self.per_second.front().is_some_and(|(s, _)| s + SERIES_SECS < sec) {
            self.per_second.pop_front();
        }
        if self.requests.len() == RECENT {
            self.requests.pop_front();
        }
        self.requests.push_back(r);
    }

    /// `{"requests": [newest first], "rps": [300 counts, oldest first, ending now]}`.
    pub fn to_json(&self) -> Value {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut rps = vec![0u32; SERIES_SECS as usize];
        for (s, n) in &self.per_second {
            if let Some(age) = now.checked_sub(*s).filter(|a| *a < SERIES_SECS) {
                rps[(SERIES_SECS - 1 - age) as usize] = *n;
            }
        }
        json!({"requests": self.requests.iter().rev().map(Record::to_json).collect::<Vec<_>>(), "rps": rps})
    }
}

impl Shared {
    /// A request ended (any way): the dashboard's ring, the counters, the access log.
    pub(in crate::proxy) fn record_request(
        &mut self,
        ex: &Exchange,
        endpoint: Option<usize>,
        status: Ended,
        out: u64,
        now: Instant,
    ) {
        if let Some(ep) = endpoint.and_then(|i| self.endpoints.get_mut(i)) {
            ep.counters.requests[status.class()] += 1;
        }
        let mut r = self.recent.take_slot();
        r.at = SystemTime::now();
        set(&mut r.method, ex.head.method());
        set(&mut r.path, crate::mask::clip(ex.head.target(), MAX_PATH_SHOWN));
        let ep = endpoint.and_then(|i| self.endpoints.get(i));
        set(&mut r.endpoint, ep.map_or("-", |ep| ep.cfg.id.as_str()));
        set(&mut r.endpoint_name, ep.map_or("-", |ep| ep.cfg.name.as_str()));
        set(&mut r.cluster, ep.map_or("", |ep| &*self.clusters[ep.cluster].name));
        r.route.clear();
        if let Some(rule) = ex.route.and_then(|n| self.clusters[0].routes.get(n)) {
            use std::fmt::Write;
            let _ = write!(r.route, "{}", rule.describe());
        }
        let (asked, sent) = ex.model_mapped.as_ref().map_or(("", ""), |(a, s)| (a.as_str(), s.as_str()));
        set(&mut r.model_requested, crate::store::usage::model_name(asked));
        set(&mut r.model_sent, sent);
        let skipped = ex.headroom_skip.and_then(|i| self.endpoints.get(i)).map_or("", |e| e.cfg.name.as_str());
        set(&mut r.skipped_for_headroom, skipped);
        r.status = status;
        r.attempts = ex.attempts;
        r.ttfb_ms = ex.first_byte.map(|t| t.duration_since(ex.started).as_millis());
        r.duration_ms = now.duration_since(ex.started).as_millis();
        r.bytes_in = ex.head.raw.len() as u64 + ex.body.len() as u64 + ex.body_dropped;
        r.bytes_out = out;
        set(&mut r.session, ex.session_tag().unwrap_or(""));
        set(&mut r.key, ex.key.as_ref().map_or("", |k| &k.name));
        r.failed.clear();
        for f in &ex.failed {
            let ep = self.endpoints.get(f.endpoint);
            let (id, name) = ep.map_or(("-", "-"), |e| (e.cfg.id.as_str(), e.cfg.name.as_str()));
            r.failed.push((id.to_string(), name.to_string(), f.why.clone(), f.ms));
        }
        // The last attempt is told here unless it is one of the failed ones.
        let last_failed = ex.failed.len() >= usize::from(ex.attempts);
        r.last_ms = ex.last_start.filter(|_| !last_failed).map(|t| now.saturating_duration_since(t).as_millis());
        let model = ex.tokens.as_ref().and_then(|(m, _)| m.as_deref()).unwrap_or("");
        set(&mut r.model, crate::store::usage::model_name(model));
        r.tokens = ex.tokens.as_ref().map(|(_, t)| t.clone());
        if self.settings.access_log.is_some() {
            // Into this turn's batch (`Disk::send_lines`); a Vec cannot fail to take bytes.
            let batch = self.disk.line_buffer();
            let _ = serde_json::to_writer(&mut *batch, &r.line());
            batch.push(b'\n');
        }
        self.recent.push(r);
    }
}
