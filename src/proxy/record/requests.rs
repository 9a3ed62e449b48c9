//! The records of finished requests: the recent-requests ring and requests-per-second series
//! (the dashboard's), and the access-log line each record makes (`--access-log`). What fills a
//! record when a request ends is `finished.rs`.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Requests kept for the dashboard, and seconds of the requests-per-second series.
const RECENT: usize = 50;
/// A request's path as the ring and the access log keep it (a head may hold 64 KiB of target).
pub const MAX_PATH_SHOWN: usize = 512;
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
    pub fn class(self) -> usize {
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
    /// Its `--log-bodies` file, or "" for none.
    pub body_log: String,
    /// The client key's name (or the access key's), "" for none.
    pub key: String,
    /// Attempts that failed before the last: (endpoint id, name, why, ms). Empty (no
    /// allocation) for a request answered at the first try.
    pub failed: Vec<(String, String, String, u128)>,
    /// How long the last attempt took, unless it failed (then it is in `failed`).
    pub last_ms: Option<u128>,
    /// Endpoints of its chain passed over at its first attempt: (id, name, why). Empty (no
    /// allocation) when none was.
    pub skipped: Vec<(String, String, &'static str)>,
    /// The model ("" when the reply named none) and the tokens it reported.
    pub model: String,
    pub tokens: Option<crate::proxy::scan::usage::Tokens>,
    /// The model whose price charged it, when not `model` ("" otherwise).
    pub priced_as: String,
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
            body_log: String::new(),
            key: String::new(),
            failed: Vec::new(),
            last_ms: None,
            skipped: Vec::new(),
            model: String::new(),
            tokens: None,
            priced_as: String::new(),
        }
    }
}

impl Record {
    /// The record as the access log and `/_qcc/recent` show it: a borrowed view serialized
    /// straight to its bytes (no `Value` tree per logged request).
    pub fn line(&self) -> Line<'_> {
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
            body_log: some(&self.body_log),
            key: some(&self.key),
            model_requested: some(&self.model_requested),
            model_sent: some(&self.model_sent),
            skipped_for_headroom: some(&self.skipped_for_headroom),
            tried: Tried(self),
            skipped: Skipped(&self.skipped),
            tokens: self.tokens.as_ref().map(|t| TokensLine {
                model: some(&self.model),
                priced_as: some(&self.priced_as),
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
pub struct Line<'a> {
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
    #[serde(skip_serializing_if = "Option::is_none")]
    body_log: Option<&'a str>,
    key: Option<&'a str>,
    model_requested: Option<&'a str>,
    model_sent: Option<&'a str>,
    skipped_for_headroom: Option<&'a str>,
    tried: Tried<'a>,
    #[serde(skip_serializing_if = "Skipped::is_empty")]
    skipped: Skipped<'a>,
    tokens: Option<TokensLine<'a>>,
}

/// The endpoints passed over, as `[{"endpoint", "name", "why"}]`.
struct Skipped<'a>(&'a [(String, String, &'static str)]);

impl Skipped<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl serde::Serialize for Skipped<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (id, name, why) in self.0 {
            seq.serialize_element(&serde_json::json!({"endpoint": id, "name": name, "why": why}))?;
        }
        seq.end()
    }
}

#[derive(serde::Serialize)]
struct TokensLine<'a> {
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priced_as: Option<&'a str>,
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
pub fn set(dst: &mut String, src: &str) {
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
    pub fn take_slot(&mut self) -> Record {
        if self.requests.len() >= RECENT {
            self.requests.pop_front().unwrap_or_default()
        } else {
            Record::default()
        }
    }

    pub fn push(&mut self, r: Record) {
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

    /// The newest record that `f` takes.
    pub fn newest(&self, f: impl Fn(&Record) -> bool) -> Option<&Record> {
        self.requests.iter().rev().find(|r| f(r))
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
