//! One client request and its attempts. Owned by its client (`ClientPhase::Exchange`), or, after
//! the client went away, by the orphaned answer that still reads its usage (`forward/orphan.rs`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::endpoint::Endpoint;
use crate::http::{BodyTracker, RequestHead, ResponseHead};

/// A request is tried at most this many times (first try + 2 retries).
pub const MAX_ATTEMPTS: u8 = 3;
/// A complete request body up to this size is sent in the same write as the head.
pub const FOLD_BODY_MAX: usize = 64 * 1024;
/// A failed response kept to return if every retry fails; larger ones are not kept.
pub const STASH_LIMIT: usize = 64 * 1024;

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

    pub fn remove(&mut self, i: usize) {
        match i {
            0..64 => self.low &= !(1 << i),
            _ => self.high.retain(|&x| x != i),
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        match i {
            0..64 => self.low & (1 << i) != 0,
            _ => self.high.contains(&i),
        }
    }
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
    InStream(crate::proxy::scan::sse::StreamError),
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
            Failure::InStream(crate::proxy::scan::sse::StreamError::Overloaded) => {
                "in-stream overloaded_error".to_string()
            }
            Failure::InStream(crate::proxy::scan::sse::StreamError::Api) => "in-stream error".to_string(),
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
    /// Its upstream connection, lent to it (`state/lease.rs`).
    pub up: Option<crate::proxy::state::Lease>,
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
    pub scan: Option<crate::proxy::scan::Scan>,
    /// While `Priming`: when the held stream is released even without content (`--stream-hold`).
    pub hold_until: Option<Instant>,
    /// Addresses of the endpoint this attempt has connected to (a failed connect moves on to
    /// the next resolved address within the attempt's deadline).
    pub addrs_tried: usize,
    /// The body as this endpoint gets it when its model map renamed the model (else the
    /// exchange's), and the names (client's, endpoint's).
    pub mapped: Option<Box<crate::proxy::scan::mapping::Mapped>>,
    /// On an OpenAI-format endpoint: its answer's translation (`scan/translation.rs`).
    pub translation: Option<Box<crate::proxy::scan::translation::Translation>>,
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
    pub tokens: Option<(Option<String>, crate::proxy::scan::usage::Tokens)>,
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
    /// The cluster of its current (or last) attempt's endpoint as the `x-qcc-cluster` header
    /// says it (`Cluster::header`).
    pub served_by: Option<Rc<str>>,
    /// What one read of the request found: its route, its model's place, its estimate, its
    /// Chat Completions form (`facts.rs`).
    pub facts: crate::proxy::facts::Facts,
    /// `Shared::cluster_generation` when it began: a cluster slot born later is not its chain's.
    pub since: u64,
    /// Endpoints passed over at its first attempt, and why (the request history's `skipped`).
    pub skipped: Vec<(usize, crate::policy::eligibility::Reason)>,
    /// Refusals it taught a request rule (`forward/learn.rs`): each sent it again at once, to the
    /// endpoint that refused (`again`), without counting against its attempts.
    pub learned: u8,
    pub again: Option<usize>,
    /// Its URL named its cluster (`/c/NAME`, `client/named.rs`): the started cluster's routes do
    /// not apply; `load`: that cluster is not served yet (loaded before its first attempt).
    pub by_name: bool,
    pub load: Load,
    /// Its bodies, for `--log-bodies` (`record/bodies.rs`); `None` when that is off.
    pub body_log: Option<Box<crate::proxy::record::bodies::BodyLog>>,
}

/// A cluster a request's URL named and the proxy does not serve yet.
#[derive(Debug, Default)]
pub enum Load {
    #[default]
    No,
    /// To be asked of the disk thread at the first attempt.
    Wanted(String),
    /// Asked: the request waits for it (`Conn::named_loaded`).
    Asked(String),
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
