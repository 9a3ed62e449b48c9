//! The commands as parsed, before any is run: what `main` dispatches. Raw values; what they
//! mean is checked where each is carried out (and for `proxy start`, in `proxy_start.rs`).

use std::ffi::OsString;
use std::path::PathBuf;

pub use super::proxy_start::ProxyStartArgs;
use super::{logs, service, sync, usage};

/// `qcc` and `qcc use NAME`: which profile, and how Claude Code is started.
#[derive(Debug, Clone, Default)]
pub struct UseArgs {
    pub name: Option<String>,
    pub launch: bool,
    pub dry_run: bool,
    /// `--port`: where a proxy the launcher starts listens.
    pub port: Option<u16>,
    /// `--direct`: a single-endpoint profile without a proxy, written into settings.json.
    pub direct: bool,
    /// Everything after `--`, for `claude`.
    pub claude_args: Vec<OsString>,
    /// `qcc use` without a NAME: pick one from a numbered list (on a terminal only).
    pub pick: bool,
}

#[derive(Debug, Clone)]
pub enum Command {
    Version,
    Help(String),
    /// `qcc presets [--json]`.
    Presets {
        json: bool,
    },
    /// `qcc statusline [--install|--uninstall]`.
    Statusline {
        install: bool,
        uninstall: bool,
    },
    /// `qcc dashboard [--open]`.
    Dashboard {
        open: bool,
    },
    EndpointAdd {
        cluster: String,
        new: crate::store::config::NewEndpoint,
        /// `--preset NAME`: a vendor's URL and model map where not given (`store/presets.rs`).
        preset: Option<String>,
    },
    EndpointList {
        cluster: String,
        json: bool,
    },
    EndpointRemove {
        cluster: String,
        id: String,
    },
    ConfigList {
        json: bool,
    },
    Default {
        name: String,
    },
    Usage {
        json: bool,
        days: usize,
        by: usage::By,
    },
    KeyAdd {
        name: String,
        change: crate::store::keys::KeyChange,
    },
    KeySet {
        name: String,
        change: crate::store::keys::KeyChange,
    },
    KeyList {
        json: bool,
    },
    PrioritySet {
        profile: String,
        level: String,
    },
    PriorityList {
        json: bool,
    },
    PrioritySwitch {
        profile: String,
    },
    PriorityHistory {
        json: bool,
        n: usize,
    },
    PriorityPolicy(crate::store::priority::PolicyChange),
    KeyRevoke {
        name: String,
    },
    Logs(Box<logs::LogsArgs>),
    SyncPush(Box<sync::SyncArgs>),
    SyncPull(Box<sync::SyncArgs>),
    SyncStatus(Box<sync::SyncArgs>),
    Init,
    Add {
        name: String,
        url: String,
        key: String,
        description: String,
    },
    List {
        json: bool,
    },
    /// `qcc use NAME`, or `qcc` alone (`name: None`).
    Use(Box<UseArgs>),
    Env {
        cluster: Option<String>,
        port: Option<u16>,
        fish: bool,
    },
    ServiceInstall(Box<service::InstallArgs>),
    ServiceUninstall {
        dir: Option<PathBuf>,
        os: Option<String>,
    },
    ServiceStatus {
        os: Option<String>,
    },
    Doctor {
        json: bool,
    },
    ClusterSet {
        name: String,
        retry_on: Option<String>,
        strategy: Option<String>,
        /// `--fallback C` (repeated, in order); `Some(empty)`: `--no-fallback`.
        fallback: Option<Vec<String>>,
    },
    /// `qcc route add CLUSTER (--model GLOB | --when X) --to C2`.
    RouteAdd {
        cluster: String,
        model: Option<String>,
        when: Option<String>,
        to: String,
    },
    RouteList {
        cluster: String,
        json: bool,
    },
    RouteRemove {
        cluster: String,
        n: String,
    },
    ClusterShow {
        name: String,
        json: bool,
    },
    /// `qcc uninstall [--yes]`: this machine's config removed.
    Uninstall {
        yes: bool,
    },
    /// `qcc remove NAME --yes [--force]`: refused while a route, a fallback chain or
    /// priority.json names the cluster, unless `force` removes those references too.
    Remove {
        name: String,
        yes: bool,
        force: bool,
    },
    Status {
        json: bool,
    },
    ConfigSet {
        key: String,
        value: String,
    },
    EndpointEdit {
        cluster: String,
        id: String,
        change: crate::store::profiles::EndpointChange,
    },
    ProxyReload,
    /// Stop the running proxy (draining it) and start it again the same way.
    ProxyRestart,
    HealthTest {
        cluster: Option<String>,
        id: Option<String>,
        json: bool,
        model: Option<String>,
    },
    HealthCheck {
        json: bool,
    },
    HealthMetrics {
        id: Option<String>,
        json: bool,
    },
    HealthHistory {
        id: Option<String>,
        n: usize,
        json: bool,
    },
    HealthConfig {
        json: bool,
    },
    QueueList {
        json: bool,
    },
    QueueRetry {
        id: Option<String>,
    },
    Completions {
        shell: String,
    },
    ProxyStart(Box<ProxyStartArgs>),
    ProxyStatus {
        json: bool,
    },
    ProxyStop {
        timeout: u64,
    },
    ProxyLogs {
        lines: usize,
        follow: bool,
    },
    ProxyUse {
        cluster: String,
        host: Option<String>,
        port: Option<u16>,
    },
    /// `qcc proxy unuse`: Claude Code's settings.json put back as it was before qcc changed it.
    ProxyUnuse,
    QueueStatus {
        json: bool,
    },
    QueueClear,
    HealthStatus {
        json: bool,
    },
}
