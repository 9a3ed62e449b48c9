//! What a request leaves behind when it ends: the recent-requests ring and requests-per-second
//! series (the dashboard), per-endpoint counters and a time-to-first-byte histogram (`GET
//! /metrics`, Prometheus text format), and one line in the access log (`--access-log`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::policy::health::Outcome;
use crate::proxy::state::Exchange;
use crate::proxy::EventLoop;

/// Upper bounds (seconds) of the time-to-first-byte histogram.
const TTFB_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Requests kept for the dashboard, and seconds of the requests-per-second series.
const RECENT: usize = 50;
/// A request's path as the ring and the access log keep it (a head may hold 64 KiB of target).
const MAX_PATH_SHOWN: usize = 512;
const SERIES_SECS: u64 = 300;

/// Per-endpoint counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Requests that ended on this endpoint, by class: 2xx, 3xx, 4xx, 5xx, failed, aborted.
    pub requests: [u64; 6],
    ttfb_buckets: [u64; TTFB_BUCKETS.len()],
    ttfb_sum: f64,
    ttfb_count: u64,
}

const CLASSES: [&str; 6] = ["2xx", "3xx", "4xx", "5xx", "failed", "aborted"];

impl Counters {
    pub fn observe_ttfb(&mut self, secs: f64) {
        for (i, le) in TTFB_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.ttfb_buckets[i] += 1;
            }
        }
        self.ttfb_sum += secs;
        self.ttfb_count += 1;
    }
}

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

impl EventLoop {
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
            let mut line = Vec::with_capacity(512);
            let _ = serde_json::to_writer(&mut line, &r.line()); // (a Vec cannot fail to take bytes)
            line.push(b'\n');
            if !self.disk.access_log(line) {
                self.stats.history_dropped += 1;
            }
        }
        self.recent.push(r);
    }

    /// `GET /metrics`: the Prometheus text exposition format. Per-endpoint series carry the id
    /// (`endpoint`) and the name (`name`; both checked on load to need no escaping).
    pub(in crate::proxy) fn metrics_text(&self, now: Instant) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let live: Vec<_> = self.endpoints.iter().filter(|e| !e.retired).collect();
        family(&mut out, "qcc_requests_total", "counter", "Requests that ended, by endpoint and status class.");
        for ep in &live {
            for (i, class) in CLASSES.iter().enumerate() {
                let _ =
                    writeln!(out, "qcc_requests_total{{{},class=\"{class}\"}} {}", labels(ep), ep.counters.requests[i]);
            }
        }
        family(&mut out, "qcc_upstream_attempts_total", "counter", "Upstream attempts by outcome.");
        for ep in &live {
            for o in Outcome::ALL {
                let _ = writeln!(
                    out,
                    "qcc_upstream_attempts_total{{{},outcome=\"{}\"}} {}",
                    labels(ep),
                    o.as_str(),
                    ep.health.count(o)
                );
            }
        }
        family(&mut out, "qcc_retries_total", "counter", "Requests tried again on another endpoint.");
        let _ = writeln!(out, "qcc_retries_total {}", self.stats.retries);
        family(
            &mut out,
            "qcc_pool_stale_retries_total",
            "counter",
            "Requests sent again on a fresh connection: a pooled one that sat idle closed before answering.",
        );
        let _ = writeln!(out, "qcc_pool_stale_retries_total {}", self.stats.stale_retries);
        family(
            &mut out,
            "qcc_pool_races_total",
            "counter",
            "Attempts that failed on a pooled connection closed before answering (not blamed on the endpoint).",
        );
        let _ = writeln!(out, "qcc_pool_races_total {}", self.stats.pool_races);
        family(&mut out, "qcc_history_dropped_total", "counter", "Access-log lines dropped: the disk did not keep up.");
        let _ = writeln!(out, "qcc_history_dropped_total {}", self.stats.history_dropped);
        family(&mut out, "qcc_requests_in_flight", "gauge", "Requests in progress.");
        let in_flight: u32 = live.iter().map(|e| e.in_flight.get()).sum();
        let _ = writeln!(out, "qcc_requests_in_flight {in_flight}");
        family(&mut out, "qcc_client_connections", "gauge", "Open client connections.");
        let _ = writeln!(out, "qcc_client_connections {}", self.clients.len());
        family(&mut out, "qcc_upstream_connections", "gauge", "Open upstream connections (idle ones included).");
        let _ = writeln!(out, "qcc_upstream_connections {}", self.upstreams.len());
        family(&mut out, "qcc_endpoint_up", "gauge", "1 when the endpoint would be picked now.");
        for ep in &live {
            let _ = writeln!(out, "qcc_endpoint_up{{{}}} {}", labels(ep), u8::from(ep.routable(&self.failures, now)));
        }
        family(&mut out, "qcc_ratelimit_remaining", "gauge", "What the endpoint last said is left of its rate limit.");
        for ep in &live {
            for (dim, w) in crate::policy::headroom::DIMS.iter().zip(&ep.headroom.dims) {
                if let Some(r) = w.and_then(|w| w.remaining) {
                    let _ = writeln!(out, "qcc_ratelimit_remaining{{{},dimension=\"{dim}\"}} {r}", labels(ep));
                }
            }
        }
        family(&mut out, "qcc_ratelimit_limit", "gauge", "The endpoint's rate limit, as it last said.");
        for ep in &live {
            for (dim, w) in crate::policy::headroom::DIMS.iter().zip(&ep.headroom.dims) {
                if let Some(l) = w.and_then(|w| w.limit) {
                    let _ = writeln!(out, "qcc_ratelimit_limit{{{},dimension=\"{dim}\"}} {l}", labels(ep));
                }
            }
        }
        family(&mut out, "qcc_failure_queue_size", "gauge", "Endpoints in the failure queue.");
        let _ = writeln!(out, "qcc_failure_queue_size {}", self.failures.len());
        family(&mut out, "qcc_failure_queue_events_total", "counter", "Failure queue events since the counters began.");
        let q = self.failures.stats();
        for (event, n) in [
            ("failed", q.total_failed),
            ("verified", q.total_verified),
            ("recovered", q.total_recovered),
            ("still_failed", q.total_still_failed),
        ] {
            let _ = writeln!(out, "qcc_failure_queue_events_total{{event=\"{event}\"}} {n}");
        }
        family(
            &mut out,
            "qcc_upstream_ttfb_seconds",
            "histogram",
            "Upstream time to the response head of successful attempts.",
        );
        for ep in &live {
            let c = &ep.counters;
            for (i, le) in TTFB_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "qcc_upstream_ttfb_seconds_bucket{{{},le=\"{le}\"}} {}",
                    labels(ep),
                    c.ttfb_buckets[i]
                );
            }
            let _ = writeln!(out, "qcc_upstream_ttfb_seconds_bucket{{{},le=\"+Inf\"}} {}", labels(ep), c.ttfb_count);
            let _ = writeln!(out, "qcc_upstream_ttfb_seconds_sum{{{}}} {}", labels(ep), c.ttfb_sum);
            let _ = writeln!(out, "qcc_upstream_ttfb_seconds_count{{{}}} {}", labels(ep), c.ttfb_count);
        }
        // Dollars over the days the usage book keeps (90), priced models only.
        let mut cost: std::collections::BTreeMap<(&str, &str), f64> = std::collections::BTreeMap::new();
        for day in self.usage.last_days_ref() {
            for (ep, models) in day {
                for (model, c) in models {
                    if let Some(x) = self.settings.prices.cost(model, c) {
                        *cost.entry((ep.as_str(), model.as_str())).or_default() += x;
                    }
                }
            }
        }
        if !cost.is_empty() {
            family(
                &mut out,
                "qcc_cost_usd_total",
                "counter",
                "What the counted tokens cost, in US dollars, by endpoint and model.",
            );
            for ((ep, model), usd) in cost {
                let name = self.endpoints.iter().rev().find(|e| e.cfg.id == ep).map_or("", |e| e.cfg.name.as_str());
                let model = model.replace(['\\', '"', '\n'], "_");
                let _ =
                    writeln!(out, "qcc_cost_usd_total{{endpoint=\"{ep}\",name=\"{name}\",model=\"{model}\"}} {usd}");
            }
        }
        let today = crate::store::timefmt::date(SystemTime::now());
        if let Some(day) = self.usage.day(&today) {
            family(&mut out, "qcc_tokens_today", "gauge", "Tokens counted today (UTC) by endpoint, model and kind.");
            for (ep, models) in day {
                for (model, c) in models {
                    let model = model.replace(['\\', '"', '\n'], "_");
                    for (kind, n) in [
                        ("input", c.input_tokens),
                        ("output", c.output_tokens),
                        ("cache_creation", c.cache_creation_input_tokens),
                        ("cache_read", c.cache_read_input_tokens),
                    ] {
                        let name =
                            self.endpoints.iter().rev().find(|e| e.cfg.id == *ep).map_or("", |e| e.cfg.name.as_str());
                        let _ = writeln!(
                            out,
                            "qcc_tokens_today{{endpoint=\"{ep}\",name=\"{name}\",model=\"{model}\",kind=\"{kind}\"}} {n}"
                        );
                    }
                }
            }
        }
        self.keys_metrics(&mut out, now);
        family(&mut out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.");
        let start = self.started_wall.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(out, "process_start_time_seconds {start}");
        if let Some(rss) = proc_status_bytes("VmRSS:") {
            family(&mut out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            family(&mut out, "process_open_fds", "gauge", "Number of open file descriptors.");
            let _ = writeln!(out, "process_open_fds {}", dir.count());
        }
        out
    }
}

fn proc_status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = text.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The labels that name an endpoint in `/metrics`.
fn labels(ep: &crate::proxy::state::Endpoint) -> String {
    format!("endpoint=\"{}\",name=\"{}\"", ep.cfg.id, ep.cfg.name)
}
