//! The per-socket and per-request state the event loop owns: clients, upstream connections,
//! endpoints, and an exchange (one client request and its attempts).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use rustls::ClientConfig;

use super::event::io::OutBuf;
use super::event::slab::Key;
use super::upstream::transport::Transport;
use crate::http::{BodyTracker, HeadScan, RequestHead, ResponseHead};
use crate::policy::health::Health;
use crate::store::cluster::EndpointConfig;

/// A set of endpoint indices: a bit mask, spilling into a list only in clusters of more than
/// 64 endpoints (so a request's bookkeeping allocates nothing).
#[derive(Debug, Default)]
pub struct EndpointSet {
    low: u64,
    high: Vec<usize>,
}

impl EndpointSet {
    pub fn insert(&mut self, i: usize) {
        match i {
            0..64 => self.low |= 1 << i,
            _ if !self.high.contains(&i) => self.high.push(i),
            _ => {}
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        match i {
            0..64 => self.low & (1 << i) != 0,
            _ => self.high.contains(&i),
        }
    }
}

/// A request is tried at most this many times (first try + 2 retries).
pub const MAX_ATTEMPTS: u8 = 3;
/// Stop reading an upstream while this much is waiting to be written to its client.
pub const CLIENT_OUT_HIGH: usize = 256 * 1024;
/// How long a request may wait for the disk thread before it is answered 503.
pub const DISK_WAIT: Duration = Duration::from_secs(10);
/// Replies the proxy makes itself (`/_qcc/*`, `/metrics`) still unread by their clients, all
/// connections together: past this a new one is refused with 503.
pub const LOCAL_REPLIES_MAX: usize = 8 * 1024 * 1024;
/// A complete request body up to this size is sent in the same write as the head.
pub const FOLD_BODY_MAX: usize = 64 * 1024;
/// A failed response kept to return if every retry fails; larger ones are not kept.
pub const STASH_LIMIT: usize = 64 * 1024;
/// Idle pooled upstream connections are closed after this.
pub const POOL_IDLE: Duration = Duration::from_secs(20);
/// At most this many idle connections per endpoint. Sized for the busiest moment (every client
/// in flight at once): a smaller cap makes a busy proxy close and reopen upstream connections
/// on every request. Idle ones still close after `POOL_IDLE`.
pub const POOL_MAX: usize = 1024;
/// Connect timeout cap (the endpoint's `timeout` applies when smaller).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Resolved addresses are refreshed (in the background) after this.
pub const DNS_TTL: Duration = Duration::from_secs(300);
/// A connection we are closing gets this long to take its last bytes.
pub const LINGER: Duration = Duration::from_secs(5);
/// A new connection that has not sent a byte is closed after this (a flood of silent sockets
/// must not hold the connection slots for the whole `--header-timeout`).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// The endpoint's `timeout`: connect (capped) and time to the response head.
pub fn timeout_of(cfg: &EndpointConfig) -> Duration {
    Duration::from_secs(cfg.timeout_secs.max(1))
}

/// One endpoint of the served cluster, with everything the loop knows about it.
pub struct Endpoint {
    pub cfg: EndpointConfig,
    /// The served cluster it belongs to (`clusters.rs`; an index into the loop's `clusters`).
    pub cluster: usize,
    pub health: Health,
    /// What its answers say is left of its rate limits (`policy/headroom.rs`).
    pub headroom: crate::policy::headroom::Headroom,
    /// Requests and tokens of the last minute, against its caps (`policy/caps.rs`).
    pub load: crate::policy::caps::Load,
    /// The model of this endpoint's last successful request, as it reported it.
    pub last_ok_model: Option<String>,
    /// Attempts in progress on this endpoint (least_connections reads it), counted by the
    /// `InFlight` each attempt holds.
    pub in_flight: Rc<Cell<u32>>,
    /// Present for https endpoints.
    pub tls: Option<Arc<ClientConfig>>,
    pub addrs: Vec<SocketAddr>,
    pub resolved_at: Option<Instant>,
    pub resolving: bool,
    /// Rotates over `addrs` on new connections, so a dead address is not tried forever.
    pub next_addr: usize,
    /// Idle keep-alive connections, most recently used last.
    pub idle: Vec<Key>,
    pub probing: bool,
    /// Removed from the cluster by a reload. Kept (never picked) so that indices held by
    /// in-flight attempts stay valid; revived if a later reload brings the id back.
    pub retired: bool,
    /// Counters for `/metrics` (`counters.rs`).
    pub counters: super::counters::Counters,
    /// Bumped when a reload gives this slot a new target (URL, key or CA): connections and
    /// lookups of an older generation are never pooled or applied.
    pub generation: u32,
    /// It answered 404/405 to `/v1/messages/count_tokens`: token counts are not sent there
    /// (qcc estimates them) until a reload gives it a new target.
    pub lacks_count_tokens: bool,
}

impl Endpoint {
    /// The model this endpoint's recovery probe asks for: its own `probe_model`; else its
    /// mapping of the proxy's probe model (a current small model); else the model of its last
    /// successful request; else the proxy's probe model.
    pub fn probe_model<'a>(&'a self, proxy_default: &'a str) -> &'a str {
        if let Some(m) = self.cfg.probe_model.as_deref() {
            return m;
        }
        if let Some(m) = crate::store::models::map(&self.cfg.model_map, proxy_default) {
            return m;
        }
        self.last_ok_model.as_deref().unwrap_or(proxy_default)
    }

    /// An endpoint as the loop keeps it, from its validated config and its TLS configuration.
    pub fn new(cfg: EndpointConfig, cluster: usize, tls: Option<Arc<ClientConfig>>) -> Endpoint {
        let addrs = match cfg.url.host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, cfg.url.port)],
            Err(_) => Vec::new(),
        };
        Endpoint {
            cfg,
            cluster,
            health: Health::new(),
            in_flight: Rc::new(Cell::new(0)),
            last_ok_model: None,
            headroom: Default::default(),
            load: Default::default(),
            tls,
            resolved_at: None,
            resolving: false,
            addrs,
            next_addr: 0,
            idle: Vec::new(),
            probing: false,
            retired: false,
            generation: 0,
            lacks_count_tokens: false,
            counters: Default::default(),
        }
    }

    /// Whether the balancer may pick this endpoint first: enabled, not retired, healthy enough,
    /// outside any `Retry-After`, and not in the failure queue. A queued endpoint has failed a
    /// request since it was last verified (the client may have seen that failure and be about to
    /// retry): it waits for a recovery probe, unless every endpoint looks down (the balancer's
    /// last resort).
    pub fn routable(&self, failures: &crate::policy::failure_queue::FailureQueue, now: Instant) -> bool {
        self.cfg.enabled
            && !self.retired
            && self.health.is_usable(true, self.cfg.max_failures, now)
            && !failures.contains(&self.cfg.id)
            && !self.headroom.blocked(now)
            && !self.load.at_cap(&self.cfg.caps, self.in_flight.get(), now)
    }
}

/// Who an upstream connection is working for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// In its endpoint's idle pool.
    Idle,
    Client(Key),
    /// A recovery probe of this endpoint index.
    Probe(usize),
    /// An alert on its way to a webhook (`admin/notify.rs`); no endpoint.
    Alert,
    /// An answer read for its usage after its client went away (`answer/drain.rs`).
    Drain,
}

pub struct Upstream {
    pub transport: Transport,
    pub endpoint: usize,
    /// The endpoint's generation when this connection was opened.
    pub generation: u32,
    pub owner: Owner,
    pub connected: bool,
    /// Came from the idle pool: a close before any response byte is a stale connection,
    /// retried on a fresh one without blaming the endpoint.
    pub reused: bool,
    /// How long it sat idle in the pool before this use (zero for a fresh one): only a rested
    /// connection's close before answering is taken for the idle-close race.
    pub rested: std::time::Duration,
    pub can_read: bool,
    pub can_write: bool,
    pub inbuf: Vec<u8>,
    /// Where reading the current response's head is (interim responses seen, bytes scanned).
    pub head: crate::http::HeadReader,
    pub idle_since: Instant,
    /// The peer's EOF (or an error) was signalled by an event: read until it shows.
    pub hup: bool,
}

pub struct Client {
    pub sock: TcpStream,
    pub peer: SocketAddr,
    pub can_read: bool,
    pub can_write: bool,
    /// Bytes read and not yet consumed: a head in progress, or the next pipelined request.
    pub inbuf: Vec<u8>,
    /// How far `inbuf` was searched for the end of a request head.
    pub head_scan: HeadScan,
    pub out: OutBuf,
    pub phase: ClientPhase,
    /// When the current head started arriving, or the connection went idle.
    pub since: Instant,
    /// Our side is shut down for writing (closing: we wait for the client's EOF so our last
    /// response is not destroyed by a reset).
    pub write_shut: bool,
    /// The client's last request (`Connection: close`, or HTTP/1.0 without keep-alive) was read
    /// to its end: closing needs no half-close and wait (the close sends a FIN, nothing unread).
    pub peer_done: bool,
    /// The peer's EOF (or an error) was signalled by an event: read until it shows.
    pub hup: bool,
    /// Request heads read on this connection so far.
    pub heads: u32,
    /// When the client last took bytes we had queued for it (or nothing was queued).
    pub last_taken: Instant,
    /// Close with a reset (RST) once what is queued is written: the end of a truncated
    /// until-close response must not look like its end.
    pub reset: bool,
    /// The request being answered is a `HEAD`: a reply qcc makes itself carries no body.
    pub answering_head: bool,
}

impl Client {
    /// Idle between requests (or never used): the connection to give up first when all slots
    /// are taken.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, ClientPhase::ReadingHead) && self.inbuf.is_empty() && self.out.is_empty()
    }
}

pub enum ClientPhase {
    /// Waiting for (the rest of) a request head.
    ReadingHead,
    Exchange(Box<Exchange>),
    /// A request the proxy answers itself once the disk thread has done its part (a reload, a
    /// dashboard edit); nothing more is read meanwhile. `keep_alive`: the request's wish.
    Waiting {
        keep_alive: bool,
    },
    /// Flush what is queued, then close.
    Closing,
}

/// Why an attempt failed: the reason logged and queued, and whether it counts as a timeout.
#[derive(Debug, Clone)]
pub enum Failure {
    Resolve(String),
    Connect(String),
    Tls(String),
    /// Nothing came in time, in this phase of the attempt.
    Timeout(AttemptPhase),
    Closed(&'static str),
    BadResponse(String),
    Status(u16),
    /// It lacks the API asked for (a 404 or 405 to a token count): not its failure.
    Lacks(u16),
    /// An `error` event inside a 200 stream.
    InStream(super::answer::sse::StreamError),
}

impl Failure {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::Timeout(_))
    }
    pub fn describe(&self) -> String {
        match self {
            Failure::Resolve(e) => format!("resolve error: {e}"),
            Failure::Connect(e) => format!("connect error: {e}"),
            Failure::Tls(e) => format!("TLS error: {e}"),
            Failure::Timeout(phase) => format!("timeout: {}", phase.waiting_for()),
            Failure::Closed(what) => format!("connection closed: {what}"),
            Failure::BadResponse(e) => format!("bad response: {e}"),
            Failure::Status(s) => format!("HTTP {s}"),
            Failure::Lacks(s) => format!("HTTP {s}: no token count API"),
            Failure::InStream(super::answer::sse::StreamError::Overloaded) => "in-stream overloaded_error".to_string(),
            Failure::InStream(super::answer::sse::StreamError::Api) => "in-stream error".to_string(),
        }
    }
}

impl AttemptPhase {
    /// What an attempt in this phase waits for (a timeout's message).
    pub fn waiting_for(self) -> &'static str {
        match self {
            AttemptPhase::Resolving => "name resolution",
            AttemptPhase::Connecting => "connect",
            AttemptPhase::Sending => "no response head",
            AttemptPhase::Relaying => "stream idle",
            AttemptPhase::Holding => "reading a failed response",
            AttemptPhase::Priming => "stream idle before any content",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptPhase {
    /// Waiting for the resolver.
    Resolving,
    /// Non-blocking connect in progress.
    Connecting,
    /// Sending the request; a response head may arrive at any time.
    Sending,
    /// Response head relayed; body flowing to the client.
    Relaying,
    /// A failed response (5xx, 429, 401, 403) read into the stash before retrying.
    Holding,
    /// A 200 event stream held (head and leading events in the stash) until its first content
    /// event: an in-stream error or a death before it is a failed attempt, retried elsewhere.
    Priming,
}

/// An attempt that failed, as the access log tells it.
#[derive(Debug)]
pub struct FailedAttempt {
    pub endpoint: usize,
    pub ms: u128,
    pub why: String,
}

/// The caller of a request, held by its exchange: counted in the key's requests in progress
/// for as long as the exchange lives.
pub struct KeyTicket {
    pub name: Rc<str>,
    pub _in_flight: Option<InFlight>,
    /// The key has a daily budget: the request reserves its estimate once its body is here
    /// (`reserve.rs`), held until the request ends.
    pub budgeted: bool,
    pub reserved: Option<crate::policy::limits::Reservation>,
}

/// What happened to the current attempt during a pump.
pub enum AttemptEvent {
    Nothing,
    Progress,
    Failed(Failure),
    /// The response is complete; `reuse`: the upstream connection may go back to the pool.
    Complete {
        reuse: bool,
    },
    /// A pooled connection turned out to be closed before answering.
    Stale,
}

/// An attempt's place in its endpoint's in-flight count: taken when the attempt starts and
/// given back when the attempt is dropped, wherever that happens, so the count cannot drift.
pub struct InFlight(Rc<Cell<u32>>);

impl InFlight {
    pub fn start(count: &Rc<Cell<u32>>) -> InFlight {
        count.set(count.get() + 1);
        InFlight(Rc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let n = self.0.get();
        debug_assert!(n > 0, "in-flight count out of step");
        self.0.set(n.saturating_sub(1));
    }
}

pub struct Attempt {
    pub endpoint: usize,
    /// Counts this attempt in its endpoint's `in_flight` while it lives.
    pub _in_flight: InFlight,
    /// Its request's token estimate, held against its endpoint's `--tpm` cap while it lives.
    pub _tpm_held: Option<crate::policy::caps::Held>,
    pub up: Option<Key>,
    pub phase: AttemptPhase,
    pub started: Instant,
    /// The deadline of the current phase (connect, response head, stream idle).
    pub deadline: Instant,
    /// The request head for this endpoint, plus the first `folded` body bytes.
    pub head_out: Vec<u8>,
    pub folded: usize,
    pub head_sent: usize,
    pub body_sent: usize,
    pub resp: Option<ResponseHead>,
    pub resp_body: Option<BodyTracker>,
    pub head_elapsed: Duration,
    /// A stale pooled connection was already replaced once in this attempt.
    pub fresh_retry_used: bool,
    /// What is read from the response as it passes (`sse.rs`).
    pub scan: Option<super::answer::Scan>,
    /// While `Priming`: when the held stream is released even without content (`--stream-hold`).
    pub hold_until: Option<Instant>,
    /// Addresses of the endpoint this attempt has connected to (a failed connect moves on to
    /// the next resolved address within the attempt's deadline).
    pub addrs_tried: usize,
    /// The body as this endpoint gets it when its model map renamed the model (else the
    /// exchange's), and the names (client's, endpoint's).
    pub mapped: Option<Box<crate::proxy::upstream::mapping::Mapped>>,
    /// On an OpenAI-format endpoint: its answer's translation (`upstream/translation.rs`).
    pub translation: Option<Box<crate::proxy::upstream::translation::Translation>>,
}

/// One client request, from its head until its response is complete.
pub struct Exchange {
    pub head: RequestHead,
    pub started: Instant,
    /// The request body as it goes upstream (a chunked one re-framed as canonical chunks), kept
    /// whole so a retry can resend it (unless `retry_copy` was given up: then sent bytes go).
    pub body: Vec<u8>,
    /// False once the memory budget took this body's retry copy (`budget.rs`): no retry.
    pub retry_copy: bool,
    /// Body bytes sent and freed (without a retry copy); `body` holds the rest.
    pub body_dropped: u64,
    pub body_tracker: BodyTracker,
    pub attempts: u8,
    /// Endpoint indices already tried by this request.
    pub tried: EndpointSet,
    /// Endpoints the request may have reached (bytes were written): never sent there again.
    pub reached: EndpointSet,
    pub attempt: Option<Attempt>,
    /// The last failed upstream response (head and body as the client would get them),
    /// and whether the client connection must close after it (an until-close body).
    pub stash: Option<(Vec<u8>, bool)>,
    pub last_failure: Option<Failure>,
    /// The client connection stays open after this exchange.
    pub keep_alive: bool,
    /// The allowed web origin that sent the request: the response names it (CORS).
    pub cors: Option<String>,
    /// The Claude Code session (`x-claude-code-session-id`), for affinity and the log.
    pub session: Option<String>,
    /// A Messages reply whose usage could not be read (an encoded body).
    pub usage_unread: bool,
    /// An endpoint this request would have gone to but for its used-up rate limit (headroom).
    pub headroom_skip: Option<usize>,
    /// The model the client asked for and the one the endpoint got, when the last attempt's
    /// endpoint renamed it (its model map).
    pub model_mapped: Option<(String, String)>,
    /// The model whose price charged the answer, when it was not the answering model's own (the
    /// client's name for it: `charge.rs`).
    pub priced_as: Option<String>,
    /// When the first response byte was queued for the client; from then on no retry is
    /// possible (`responded`).
    pub first_byte: Option<Instant>,
    /// The client's `OutBuf::pushed()` when the exchange began (bytes sent = the difference).
    pub out_start: u64,
    /// Model and token counts of the response, once read (for the access log).
    pub tokens: Option<(Option<String>, super::answer::usage::Tokens)>,
    /// The attempts that failed before the last one: which endpoint, how long, why (the access
    /// log's `attempts`; allocated only when an attempt fails).
    pub failed: Vec<FailedAttempt>,
    /// When the last attempt started (its time in the access log).
    pub last_start: Option<Instant>,
    /// The client key (or the access key) it came with: its name for the logs and usage, and
    /// its place among the key's requests in progress while the exchange lives.
    pub key: Option<KeyTicket>,
    /// An Anthropic API request (path under `/v1/`). Anything else (Claude Code's `HEAD /`
    /// reachability check, a relay's own pages) is forwarded once: never retried, never a
    /// verdict on the endpoint's health or queue.
    pub api: bool,
    /// The cluster its route chose (`clusters.rs`; 0, the started one, unless a route matched),
    /// decided at its first attempt, and the clusters it may use: that one's fallback chain,
    /// as a bit mask of cluster indices.
    pub cluster: usize,
    pub reach: u64,
    /// The route that chose its cluster (an index into the started cluster's routes).
    pub route: Option<usize>,
    /// The cluster of its current (or last) attempt's endpoint as the `x-qcc-cluster` header
    /// says it (`Cluster::header`).
    pub served_by: Option<Rc<str>>,
    /// Where its model is in its body, found once at the first attempt when an endpoint maps
    /// models (`policy::route::look`, the same read as its route).
    pub model: Option<crate::policy::route::ModelAt>,
    /// The rest of what one read of the request found (`facts.rs`).
    pub facts: super::facts::Facts,
    /// `Shared::cluster_generation` when it began: a cluster slot born later is not its chain's.
    pub since: u64,
    /// Endpoints passed over at its first attempt, and why (the request history's `skipped`).
    pub skipped: Vec<(usize, crate::policy::eligibility::Reason)>,
}

impl Exchange {
    /// The body as JSON text: decoded when it came chunked (`facts.rs`).
    pub fn json_body(&self) -> &[u8] {
        self.facts.json_body(&self.body)
    }

    /// Decode a complete chunked body once.
    pub fn decode_body(&mut self) {
        self.facts.decode(self.head.framing, self.body_tracker.is_done(), &self.body);
    }

    /// The request's token estimate (made once, from its JSON text).
    pub fn estimate(&mut self, prices: &crate::store::prices::PriceTable) -> crate::policy::limits::Used {
        self.decode_body();
        self.facts.estimate(&self.body, prices)
    }

    /// Make the request's form for endpoint `i` (`ep`, of a dialect that re-makes bodies, the
    /// first of its chain that could serve it), once, when that dialect takes such a request.
    pub fn read_chat(&mut self, i: usize, ep: &Endpoint) {
        if !self.remade_for(ep) {
            return;
        }
        self.facts.read_chat(i, &ep.cfg, &self.body);
    }

    /// Endpoint `ep`'s dialect can take this request: any request for one that forwards as it
    /// comes; for one that re-makes bodies, a whole request of a kind it takes, with a form there.
    pub fn dialect_takes(&self, ep: &Endpoint) -> bool {
        !crate::translate::rewrites(&ep.cfg.format) || (self.remade_for(ep) && self.facts.untranslatable().is_none())
    }

    /// Why no OpenAI-format endpoint can take it, when its content is the reason.
    pub fn untranslatable(&self) -> Option<&str> {
        self.facts.untranslatable()
    }

    /// The Chat Completions form made for `endpoint`, taken.
    pub fn take_chat(&mut self, endpoint: usize) -> Option<crate::translate::Translated> {
        self.facts.take_chat(endpoint)
    }

    /// Endpoint `ep`'s dialect re-makes bodies and takes this request: its whole body is here
    /// (kept for retries), and it is of a kind the dialect takes (`translate::takes`).
    fn remade_for(&self, ep: &Endpoint) -> bool {
        crate::translate::rewrites(&ep.cfg.format)
            && self.body_tracker.is_done()
            && self.retry_copy
            && crate::translate::takes(&ep.cfg.format, self.head.method_bytes(), self.head.path_bytes())
    }

    /// A response byte has been queued for the client: no retry is possible any more.
    pub fn responded(&self) -> bool {
        self.first_byte.is_some()
    }

    /// The session id's first 8 characters, as logs and the dashboard show it (the id is
    /// visible ASCII, see `affinity::session_of`).
    pub fn session_tag(&self) -> Option<&str> {
        self.session.as_deref().map(|s| s.get(..8).unwrap_or(s))
    }
}

/// Request counters of the running proxy.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// The client went away before its response was complete.
    pub aborted: u64,
    pub retries: u64,
    /// Requests answered by the proxy itself (413, 408, 503 no endpoint): counted in `total`.
    pub rejected: u64,
    /// Heads that never became a request (400, 431, 408 slow head): not in `total`.
    pub bad_requests: u64,
    /// Wrong or missing access key (401): not in `total`, never forwarded.
    pub unauthorized: u64,
    /// Refused by a client key's limit (429): counted in `total`, never forwarded.
    pub limited: u64,
    /// Refused for a foreign `Host` or `Origin` (403, or 400 for a missing/repeated Host):
    /// not in `total`, never forwarded.
    pub forbidden: u64,
    /// 200 streams that failed before any content and were retried elsewhere.
    pub stream_retries: u64,
    /// Streams that carried an in-stream `error` event.
    pub stream_errors: u64,
    /// Messages replies whose usage could not be read (an encoded body).
    pub usage_unread: u64,
    /// Failed writes of the state files (full disk, file-size limit).
    pub state_write_failures: u64,
    /// Pooled upstream connections that closed before answering a request written to them
    /// (the keep-alive race): the attempt failed, the endpoint was not blamed.
    pub pool_races: u64,
    /// Access-log lines dropped because the disk did not keep up (`event/disk.rs`).
    pub history_dropped: u64,
    /// Requests sent again on a fresh connection after a rested pooled one closed before
    /// answering (`answer/response.rs`, `is_stale`).
    pub stale_retries: u64,
}

#[cfg(test)]
mod tests {
    use super::EndpointSet;

    #[test]
    fn endpoint_sets_hold_any_index() {
        let mut s = EndpointSet::default();
        for i in [0, 5, 63, 64, 200, 200] {
            s.insert(i);
        }
        for i in [0, 5, 63, 64, 200] {
            assert!(s.contains(i), "{i}");
        }
        for i in [1, 62, 65, 199, 201] {
            assert!(!s.contains(i), "{i}");
        }
    }
}
