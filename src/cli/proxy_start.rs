//! `qcc proxy start`: its raw arguments, the config file and the environment become the proxy's
//! `Settings`, with every default decided here and nowhere else.

use std::net::SocketAddr;
use std::time::Duration;

use super::ProxyStartArgs;
use crate::error::{Error, Result};
use crate::policy::balancer::Strategy;
use crate::settings::Settings;
use crate::store::config::ClusterConfig;

/// Validate `proxy start` arguments against the config file and environment.
pub fn settings(args: ProxyStartArgs) -> Result<Settings> {
    let home = crate::store::fsutil::qcc_home();
    let config_path = crate::store::fsutil::config_path();
    let config = crate::store::config::ConfigFile::load(&config_path)?;
    let (cluster, builtin_default) = match args.cluster.as_deref().or(config.default_profile()) {
        Some(name) => (config.cluster(name)?, false),
        None => (builtin_cluster(), true),
    };
    let host = args.host.as_deref().unwrap_or("127.0.0.1");
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| Error::Invalid(format!("--host {host}: not an IP address")))?,
    };
    let listen = SocketAddr::new(ip, args.port.unwrap_or(7860));
    let strategy = match args.strategy.as_deref() {
        None => Strategy::PriorityFailover,
        Some(s) => Strategy::parse(s).ok_or_else(|| {
            Error::Invalid(format!(
                "--strategy {s}: unknown (one of priority_failover, weighted, round_robin, random, least_connections)"
            ))
        })?,
    };
    let log_level = match args.log_level.as_deref() {
        None => log::LevelFilter::Info,
        Some(l) => {
            l.parse().map_err(|_| Error::Invalid(format!("--log-level {l}: use error, warn, info, debug or trace")))?
        }
    };
    let key_file = home.join("access_key");
    let access_key = args
        .access_key
        .or_else(|| std::env::var("QCC_ACCESS_KEY").ok())
        .or_else(|| crate::store::fsutil::read_text(&key_file).ok())
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    // Files holding keys that other users of the machine can read: said, not refused (the
    // Python qcc wrote its config with the default umask).
    for path in [&config_path, &key_file] {
        if let Some(mode) = crate::store::fsutil::open_to_others(path) {
            eprintln!(
                "qcc: warning: {} holds keys and is open to other users (mode {mode:04o}); fix with: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
    }
    let secs = |v: Option<u64>, default: u64, flag: &str| -> crate::error::Result<Duration> {
        match v.unwrap_or(default) {
            0 => Err(Error::Invalid(format!("{flag} must be at least 1 second"))),
            n if n > crate::store::config::MAX_TIMEOUT_SECS => {
                Err(Error::Invalid(format!("{flag} {n}: at most {} seconds", crate::store::config::MAX_TIMEOUT_SECS)))
            }
            n => Ok(Duration::from_secs(n)),
        }
    };
    if let Some(ca) = &args.ca_file {
        if !ca.is_file() {
            return Err(Error::Invalid(format!("--ca-file {}: no such file", ca.display())));
        }
    }
    Ok(Settings {
        cluster,
        builtin_default,
        listen,
        strategy,
        ca_file: args.ca_file,
        verify_interval: secs(args.verify_interval, 60, "--verify-interval")?,
        probe_model: args.probe_model.unwrap_or_else(|| "claude-3-5-haiku-20241022".to_string()),
        home,
        config_path,
        log_level,
        max_body: args.max_body.unwrap_or(32 * 1024 * 1024),
        max_connections: args.max_connections.unwrap_or(1024).max(1),
        header_timeout: secs(args.header_timeout, 30, "--header-timeout")?,
        idle_timeout: secs(args.idle_timeout, 60, "--idle-timeout")?,
        drain_timeout: secs(args.drain_timeout, 30, "--drain-timeout")?,
        stream_idle_timeout: secs(args.stream_idle_timeout, 60, "--stream-idle-timeout")?,
        access_key,
        allow_hosts: args.allow_hosts,
        allow_origins: args.allow_origins,
        stream_hold: match args.stream_hold {
            Some(0) => Duration::ZERO,
            other => secs(other, 5, "--stream-hold")?,
        },
        access_log: args.access_log,
        affinity_max: if args.no_affinity { 0 } else { args.affinity_max.unwrap_or(10_000) },
        affinity_ttl: secs(args.affinity_ttl, 3600, "--affinity-ttl")?,
    })
}

/// Nothing configured: one endpoint, the Anthropic API, forwarding each client's own key.
fn builtin_cluster() -> ClusterConfig {
    let url = crate::store::url::BaseUrl {
        scheme: crate::store::url::Scheme::Https,
        host: "api.anthropic.com".to_string(),
        port: 443,
        path_prefix: String::new(),
    };
    ClusterConfig {
        name: "default".to_string(),
        endpoints: vec![crate::store::config::EndpointConfig::new("a0000000".to_string(), url, "")],
    }
}
