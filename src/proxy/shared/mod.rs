//! `Shared`: what every connection reads and updates — the served clusters and their endpoints,
//! the failure queue, the counters, token usage, the client keys, alerts, the disk thread. The
//! loop owns one (`EventLoop::sh`) beside its sockets and hands it to each side as `&mut
//! Shared`: to `Net`'s methods as an argument, to a client's `Conn` as a field. What only reads or updates this state is a method of `Shared` and never sees
//! a socket: the status JSON and `/metrics` (`admin/status.rs`, `metrics.rs`), a finished
//! request's record (`finished.rs`), the client keys' rows (`keys.rs`), the state files
//! (`persist.rs`), alerts made (`alerts.rs`, `switches.rs`), charging (`forward/charge.rs`), an
//! endpoint's verdicts (`forward/verdict.rs`), and the client side's questions — who asks, within
//! which limits, with what reserved (`client/access.rs`, `reserve.rs`).
//!
//! Single owner: like everything the loop holds, it is reached only from the loop's thread, one
//! event at a time — the invariant that replaces the Python version's `asyncio.Lock` (see
//! `EventLoop` and `FailureQueue`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::policy::failure_queue::FailureQueue;
use crate::settings::Settings;

use super::state::{Endpoint, Stats};
use super::{clusters, record, upstream};

pub(crate) mod disk;
pub(crate) mod guard;
pub(crate) mod keys;
pub(crate) mod notify;
pub(crate) mod refusals;
pub(crate) mod served;
pub(crate) mod switches;

pub struct Shared {
    /// The address the proxy listens on (as bound).
    pub addr: SocketAddr,
    /// Every served cluster's endpoints, in one list (each knows its cluster).
    pub endpoints: Vec<Endpoint>,
    /// The served clusters, the started one first (`clusters.rs`).
    pub clusters: ReadOnly<Vec<clusters::Cluster>>,
    /// Bumped each time a reload gives a cluster slot to a cluster (`Cluster::born`): an exchange
    /// that began before (`Exchange::since`) never uses that slot.
    pub cluster_generation: u64,
    /// When the next round of recovery probes runs (the timers' to move; a request told that
    /// nothing may serve it hears it as its `retry-after`).
    pub next_probe: Instant,
    pub failures: FailureQueue,
    pub stats: Stats,
    /// What the proxy was started with, as reloads changed it: read by everyone, changed only
    /// here (a reload's `set_prices`, `set_config_notify_urls`), so a connection's code cannot
    /// rewrite it.
    pub settings: ReadOnly<Settings>,
    /// Host/Origin/preflight checks (`guard.rs`), built from the settings and the bound address.
    pub gate: guard::Gate,
    pub queue_path: PathBuf,
    pub persist_at: Option<Instant>,
    /// Token usage per day, endpoint and model (`$QCC_HOME/usage.json`), and when to write it.
    pub usage: crate::store::usage::UsageBook,
    pub usage_at: Option<Instant>,
    /// (UTC day number, its "YYYY-MM-DD"), the usage book's current bucket name.
    pub usage_day: (i64, String),
    /// State files whose last write failed (reported once, and once when they work again).
    pub failing_files: Vec<PathBuf>,
    pub started: Instant,
    pub started_wall: SystemTime,
    /// Session -> endpoint bindings (`affinity.rs`).
    pub affinity: upstream::affinity::Affinity,
    /// Recent endpoint events (`history.rs`).
    pub history: record::history::History,
    /// Recent requests and requests per second (the dashboard), and the access log (`metrics.rs`).
    pub recent: record::requests::Recent,
    /// The thread that does the file work: state files, the access log, config reads (`disk.rs`).
    pub disk: disk::Disk,
    /// Wrong keys per client address, and the rate of refusal log lines (`refusals.rs`).
    pub refusals: refusals::Refusals,
    /// The named client keys and their live counters (`shared/keys.rs`), and the last problem
    /// reading their file (said once).
    pub keys: keys::ClientKeys,
    pub keys_problem: Option<String>,
    /// `--log-bodies` files written so far (the next one's slot).
    pub body_logs: u64,
    /// Admin credential for the local CLI, written in the pid file (`pidfile::PidInfo`).
    pub control_token: String,
    /// The dashboard page's own token: its actions carry it when no key is configured.
    pub page_token: String,
    /// Alert receivers and what they still have to get (`shared/notify.rs`).
    pub notifier: notify::Notifier,
}

impl Shared {
    /// A reload's new prices.
    pub fn set_prices(&mut self, prices: crate::store::prices::PriceTable) {
        self.settings.0.prices = prices;
    }

    /// A reload's new alert receivers from the config file.
    pub fn set_config_notify_urls(&mut self, urls: Vec<String>) {
        self.settings.0.config_notify_urls = urls;
    }
}

/// A part of `Shared` that every room reads and only `Shared`'s own methods (in this file)
/// change: a field of this type can be read through it anywhere, and written nowhere else.
pub struct ReadOnly<T>(T);

impl<T> ReadOnly<T> {
    pub fn new(value: T) -> ReadOnly<T> {
        ReadOnly(value)
    }
}

impl<T> std::ops::Deref for ReadOnly<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What only the loop knows, for the status JSON and `/metrics`: its connections.
pub struct Conns {
    pub clients: usize,
    /// Clients with a request in progress.
    pub exchanges: usize,
    pub upstreams: usize,
}
