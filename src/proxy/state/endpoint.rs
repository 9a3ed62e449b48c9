//! An endpoint as the loop keeps it. Owned by `Shared` (its `endpoints` list, lent to the
//! upstream side's pool as a slice); attempts and probes hold its index, never a reference.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use crate::policy::health::Health;
use crate::proxy::event::slab::Key;
use crate::store::cluster::EndpointConfig;

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
    pub counters: crate::proxy::counters::Counters,
    /// Bumped when a reload gives this slot a new target (URL, key or CA): connections and
    /// lookups of an older generation are never pooled or applied.
    pub generation: u32,
    /// It answered 404/405 to `/v1/messages/count_tokens`: token counts are not sent there
    /// (qcc estimates them) until a reload gives it a new target.
    pub lacks_count_tokens: bool,
    /// Writes of its learned rules to the config file still on their way (`forward/learn.rs`):
    /// while there are any, a reload keeps what it learned (`admin/reload.rs`).
    pub learning: u32,
    /// A queued pass-through endpoint's probe round came: the next request that may go there
    /// is its probe (`forward/probe.rs`, `eligibility.rs`); cleared when one goes.
    pub probe_by_request: bool,
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
            learning: 0,
            probe_by_request: false,
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
