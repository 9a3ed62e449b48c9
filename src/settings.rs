//! What the proxy runs with: the validated settings of `qcc proxy start`. The proxy only reads
//! them; `cli::proxy_start` builds them from arguments, the config file and the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::store::cluster::ClusterConfig;
use crate::store::cluster::Strategy;

impl Settings {
    /// The cluster the proxy was started for.
    pub fn main(&self) -> &ClusterConfig {
        &self.clusters[0]
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The clusters to serve as the proxy starts (a reload's live in `proxy::clusters`), the
    /// started one first, then those its routes and fallbacks name
    /// (`store::served::served`); or the built-in default alone: one endpoint
    /// https://api.anthropic.com with an empty api_key, forwarding the client's own credentials.
    pub clusters: Vec<ClusterConfig>,
    /// The started cluster's fallback chain when the profile priorities set it (its secondary
    /// and fallback profiles), over the cluster's own `fallback`; kept for reloads.
    pub chain: Option<Vec<String>>,
    pub builtin_default: bool,
    /// --host/--port (default 127.0.0.1:7860; port 0 picks a free port).
    pub listen: SocketAddr,
    pub strategy: Strategy,
    /// `--strategy` was given: the cluster's own `strategy` (and its changes) do not apply.
    pub strategy_pinned: bool,
    /// --ca-file: an extra trusted CA for every endpoint.
    pub ca_file: Option<PathBuf>,
    /// --verify-interval (default 60 s).
    pub verify_interval: Duration,
    /// --probe-model (default "claude-3-5-haiku-20241022").
    pub probe_model: String,
    /// What tokens cost (the built-in table under the config's `settings.prices`).
    pub prices: crate::store::prices::PriceTable,
    /// $QCC_HOME (default ~/.qcc).
    pub home: PathBuf,
    /// $QCC_CONFIG (default ~/.fastcc/cache.json).
    pub config_path: PathBuf,
    /// --log-level (default info).
    pub log_level: log::LevelFilter,
    /// --max-body bytes (default 32 MiB).
    pub max_body: u64,
    /// --max-connections (default 1024).
    pub max_connections: usize,
    /// --header-timeout (default 30 s).
    pub header_timeout: Duration,
    /// --idle-timeout (default 60 s).
    pub idle_timeout: Duration,
    /// --stream-idle-timeout (default 60 s): an upstream silent this long mid-response has failed.
    pub stream_idle_timeout: Duration,
    /// --stream-hold (default 5 s; 0 turns it off): how long a 200 event stream is held before
    /// its first content event, so that an in-stream error or a death before it can be retried.
    pub stream_hold: Duration,
    /// Off with --no-learn: an Anthropic-format endpoint's 400 that names something qcc may
    /// leave out teaches its rules (`store/rules.rs`, `policy/refusal.rs`).
    pub learn: bool,
    /// --log-bodies DIR: each request's bodies, both sides of a translation, credentials masked
    /// (`proxy/record/bodies.rs`); off by default.
    pub log_bodies: Option<std::path::PathBuf>,
    /// --drain-timeout (default 30 s).
    pub drain_timeout: Duration,
    /// --access-key / QCC_ACCESS_KEY / $QCC_HOME/access_key.
    pub access_key: Option<String>,
    /// --allow-host (repeatable): more names a client may put in `Host`.
    pub allow_hosts: Vec<String>,
    /// --allow-origin (repeatable): web origins allowed to use the proxy.
    pub allow_origins: Vec<String>,
    /// --access-log PATH (`-` for stderr): one JSON line per request.
    pub access_log: Option<PathBuf>,
    /// How long one request-history search may run (`QCC_SEARCH_LIMIT_MS`, default 5 s).
    pub search_limit: Duration,
    /// --affinity-max (default 10,000 sessions; 0 with --no-affinity).
    pub affinity_max: usize,
    /// --affinity-ttl (default 1 h): a binding idle this long is forgotten.
    pub affinity_ttl: Duration,
    /// --notify-url (repeatable): where alerts are posted.
    pub notify_urls: Vec<String>,
    /// The config's `settings.notify_urls` (read again on reload), posted to as well.
    pub config_notify_urls: Vec<String>,
    /// Started by `proxy start --background`: once listening, stdout and stderr go to /dev/null
    /// (the log file has everything) and the terminal is free.
    pub detached: bool,
}
