//! `qcc proxy start`: its raw arguments, the config file and the environment become the proxy's
//! `Settings`, with every default decided here and nowhere else.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use pico_args::Arguments;

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::store::cluster::ClusterConfig;
use crate::store::cluster::Strategy;

/// Set by a background start for the process it starts: that process leaves its terminal's
/// output once it listens (`Settings::detached`).
pub const DETACHED_ENV: &str = "QCC_DETACHED";

/// One `proxy start` flag. This table is the only list of them: parsing, `--help` and the shell
/// completions all read it.
pub struct Flag {
    pub name: &'static str,
    /// A one-letter form (`-d`).
    pub short: Option<&'static str>,
    /// The value's placeholder; `None` for a switch.
    pub value: Option<&'static str>,
    /// May be given more than once.
    pub repeat: bool,
    pub help: &'static str,
}

const fn flag(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag { name, short: None, value: Some(value), repeat: false, help }
}

pub const FLAGS: &[Flag] = &[
    flag(
        "--cluster",
        "NAME",
        "cluster to serve (default: the default profile; with nothing configured, \
         https://api.anthropic.com with the client's own key)",
    ),
    flag("--host", "ADDR", "listen address (default 127.0.0.1; non-loopback needs an access key of 16+ characters)"),
    flag("--port", "PORT", "listen port (default 7860; 0 picks a free one)"),
    flag("--strategy", "S", "priority_failover (default), weighted, round_robin, random, least_connections"),
    flag("--ca-file", "PEM", "extra trusted CA for every endpoint"),
    flag("--verify-interval", "SECS", "how often queued endpoints are probed (default 60)"),
    flag(
        "--probe-model",
        "MODEL",
        "model of the probe request when an endpoint names none (its own --probe-model), maps none, and \
         served none yet (default: the config's settings.test_model, else claude-haiku-4-5)",
    ),
    flag("--log-level", "LEVEL", "error, warn, info (default), debug, trace"),
    flag("--max-body", "BYTES", "largest request body (default 33554432 = 32 MiB)"),
    flag("--max-connections", "N", "client connections at once (default 1024)"),
    flag("--header-timeout", "SECS", "time for a client to send a request head (default 30)"),
    flag("--idle-timeout", "SECS", "idle keep-alive client connections are closed after (default 60)"),
    flag("--drain-timeout", "SECS", "on SIGTERM, how long in-flight requests may finish (default 30)"),
    flag("--stream-idle-timeout", "SECS", "an upstream silent this long mid-response has failed (default 60)"),
    flag(
        "--stream-hold",
        "SECS",
        "hold a 200 event stream until its first content event, at most SECS (default 5; 0 = off): \
         an in-stream error or a death before it is retried on another endpoint, invisibly to the client",
    ),
    flag(
        "--access-key",
        "KEY",
        "clients must send it (x-api-key or Authorization: Bearer); better QCC_ACCESS_KEY or the file \
         $QCC_HOME/access_key (not in `ps`)",
    ),
    Flag {
        name: "--allow-host",
        short: None,
        value: Some("NAME"),
        repeat: true,
        help: "a name clients may put in Host besides the listen address, localhost and loopback IPs \
               (repeatable); off loopback, giving any turns the Host check on",
    },
    Flag {
        name: "--allow-origin",
        short: None,
        value: Some("ORIGIN"),
        repeat: true,
        help: "a web origin (https://app.example) allowed to call the proxy; other requests with an \
               Origin header get 403 (repeatable)",
    },
    flag(
        "--affinity-max",
        "N",
        "Claude Code sessions remembered for affinity (default 10000; least recently used forgotten first)",
    ),
    flag("--affinity-ttl", "SECS", "a session idle this long may move (default 3600)"),
    Flag {
        name: "--no-affinity",
        short: None,
        value: None,
        repeat: false,
        help: "route every request by --strategy alone",
    },
    flag(
        "--access-log",
        "PATH",
        "the request history: one JSON line per request (default $QCC_HOME/access.jsonl, rotated at \
         64 MiB, 4 kept; - for stderr); reopened on SIGHUP",
    ),
    Flag {
        name: "--no-access-log",
        short: None,
        value: None,
        repeat: false,
        help: "keep no request history (qcc logs and the dashboard's history then have none)",
    },
    flag(
        "--log-bodies",
        "DIR",
        "debug: write each request's bodies to DIR (what the client sent, what each endpoint was sent and \
         answered, as received and translated), credentials masked, 1 MiB a part, the last 100 requests",
    ),
    Flag {
        name: "--no-learn",
        short: None,
        value: None,
        repeat: false,
        help: "never learn request rules from a vendor's 400 (by default a refusal that names a field, an \
               anthropic-beta value or the thinking type is retried at once without it and remembered)",
    },
    Flag {
        name: "--notify-url",
        short: None,
        value: Some("URL"),
        repeat: true,
        help: "POST a JSON alert here when an endpoint goes down or comes back, when none is left, and \
               when a client key reaches a limit (repeatable; also settings.notify_urls in the config)",
    },
    Flag {
        name: "--background",
        short: Some("-d"),
        value: None,
        repeat: false,
        help: "run in the background: return once the proxy listens (the same ANTHROPIC_BASE_URL= \
               line), log to $QCC_HOME/proxy.log; `qcc proxy stop` ends it",
    },
];

/// `proxy start`'s arguments as given, by flag name (checked against `FLAGS`).
#[derive(Debug, Clone, Default)]
pub struct ProxyStartArgs(Vec<(&'static str, OsString)>);

impl ProxyStartArgs {
    /// Take every `FLAGS` entry out of `args` (what is left is reported by the caller).
    pub fn parse(args: &mut Arguments) -> Result<ProxyStartArgs> {
        let mut given = Vec::new();
        for f in FLAGS {
            if f.value.is_none() {
                let on = match f.short {
                    Some(short) => args.contains([short, f.name]),
                    None => args.contains(f.name),
                };
                if on {
                    given.push((f.name, OsString::new()));
                }
                continue;
            }
            let values: Vec<OsString> = args
                .values_from_os_str(f.name, |s| Ok::<_, String>(s.to_os_string()))
                .map_err(|e| Error::Usage(format!("{}: {e}", f.name)))?;
            if values.len() > 1 && !f.repeat {
                return Err(Error::Usage(format!("{} given more than once", f.name)));
            }
            given.extend(values.into_iter().map(|v| (f.name, v)));
        }
        Ok(ProxyStartArgs(given))
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a OsString> + 'a {
        debug_assert!(FLAGS.iter().any(|f| f.name == name), "{name} is not in FLAGS");
        self.0.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Result<Option<String>> {
        match self.values(name).next() {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| Error::Usage(format!("{name}: the value is not valid UTF-8"))),
        }
    }

    fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.text(name)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| Error::Usage(format!("{name} {v}: not a valid number"))),
        }
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.values(name).next().map(PathBuf::from)
    }

    fn all(&self, name: &str) -> Result<Vec<String>> {
        self.values(name)
            .map(|v| v.to_str().map(str::to_string).ok_or_else(|| Error::Usage(format!("{name}: not UTF-8"))))
            .collect()
    }

    fn on(&self, name: &str) -> bool {
        self.values(name).next().is_some()
    }

    /// Whether `--cluster` was given (the launcher passes its own).
    pub fn cluster(&self) -> Result<Option<String>> {
        self.text("--cluster")
    }

    /// `--background` (`-d`).
    pub fn background(&self) -> bool {
        self.on("--background")
    }

    /// The same arguments for a `qcc proxy start` run in the foreground: what a background
    /// start hands to the process it starts.
    pub fn foreground_argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec!["proxy".into(), "start".into()];
        for (name, value) in self.0.iter().filter(|(n, _)| *n != "--background") {
            argv.push((*name).into());
            if FLAGS.iter().any(|f| f.name == *name && f.value.is_some()) {
                argv.push(value.clone());
            }
        }
        argv
    }

    /// The flags to remember for this cluster (`store/proxy_flags.rs`): all but the cluster, the
    /// background switch, the access key and `skip` (the service leaves the address to its socket).
    pub fn flags_to_keep(&self, skip: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let kept = |n: &&str| !crate::store::proxy_flags::NOT_KEPT.contains(n) && !skip.contains(n);
        for (name, value) in self.0.iter().filter(|(n, _)| kept(n)) {
            out.push((*name).to_string());
            if FLAGS.iter().any(|f| f.name == *name && f.value.is_some()) {
                out.push(value.to_string_lossy().into_owned());
            }
        }
        out
    }

    /// Arguments for a proxy the CLI starts itself (`qcc env`, the launcher, `qcc proxy
    /// restart`): the flags this cluster's proxy was last started with (`remembered`), then the
    /// cluster, and `port` over a remembered one. A remembered flag this build no longer knows is
    /// left out.
    pub fn for_cluster(cluster: &str, port: Option<u16>, remembered: &[String]) -> ProxyStartArgs {
        ProxyStartArgs::made(Some(cluster), port, remembered)
    }

    /// The same for a proxy that serves by the profile priorities (no `--cluster`): `qcc proxy
    /// restart` of one started that way.
    pub fn for_priorities(port: Option<u16>, remembered: &[String]) -> ProxyStartArgs {
        ProxyStartArgs::made(None, port, remembered)
    }

    fn made(cluster: Option<&str>, port: Option<u16>, remembered: &[String]) -> ProxyStartArgs {
        let mut given: Vec<(&'static str, OsString)> = Vec::new();
        let mut words = remembered.iter();
        while let Some(w) = words.next() {
            let Some(f) = FLAGS.iter().find(|f| f.name == w.as_str()) else { continue };
            let value = if f.value.is_some() { words.next().map(OsString::from) } else { Some(OsString::new()) };
            match value {
                Some(_) if f.name == "--port" && port.is_some() => {}
                Some(v) if !crate::store::proxy_flags::NOT_KEPT.contains(&f.name) => given.push((f.name, v)),
                _ => {}
            }
        }
        if let Some(cluster) = cluster {
            given.push(("--cluster", OsString::from(cluster)));
        }
        given.push(("--background", OsString::new()));
        if let Some(p) = port {
            given.push(("--port", OsString::from(p.to_string())));
        }
        ProxyStartArgs(given)
    }
}

/// The `--help` text of `proxy start`, from `FLAGS`.
pub fn help() -> String {
    let mut out = String::from(
        "qcc proxy start — run the proxy (one thread, one event loop), in the foreground or with -d in \
         the background\n\n\
         USAGE:\n    qcc proxy start [OPTIONS]\n\nOPTIONS:\n",
    );
    for f in FLAGS {
        let name = match f.short {
            Some(short) => format!("{short}, {}", f.name),
            None => f.name.to_string(),
        };
        let left = match f.value {
            Some(v) => format!("{name} {v}"),
            None => name,
        };
        let mut lines = wrap(f.help, 64);
        if left.len() < 24 {
            out.push_str(&format!("    {left:<24}{}\n", lines.remove(0)));
        } else {
            out.push_str(&format!("    {left}\n"));
        }
        for l in lines {
            out.push_str(&format!("    {:<24}{l}\n", ""));
        }
    }
    out.push_str(
        "\nSIGNALS:\n    SIGTERM, SIGINT   stop accepting, drain, persist, exit 0\n\
         \x20   SIGHUP            re-read the cluster from the config file, reopen the logs\n",
    );
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Validate `proxy start` arguments against the config file and environment.
pub fn settings(args: ProxyStartArgs) -> Result<Settings> {
    let home = crate::store::fsutil::qcc_home();
    let config_path = crate::store::fsutil::config_path();
    let config = crate::store::config::ConfigFile::load(&config_path)?;
    // Without --cluster: the profile the Python qcc's priorities point at (`qcc priority`), when
    // they are set and it exists; else the default.
    let priorities = crate::store::priority::Priorities::load(&home)?;
    let given = args.cluster()?;
    let prioritised = match given {
        Some(_) => None,
        None => priorities.serving().filter(|p| config.profile_names().iter().any(|n| n == p)).map(str::to_string),
    };
    // Served that way, its secondary and fallback profiles are its fallback chain (unless the
    // priorities' policy turned auto-failover off).
    let chain = prioritised.as_ref().map(|p| priorities.chain_after(p, &config.profile_names()));
    let (clusters, builtin_default) = match given.or(prioritised).or_else(|| config.implied_cluster()) {
        Some(name) => {
            let served = crate::store::served::served(&config, &name, chain.as_deref())?;
            for why in &served.skipped {
                eprintln!("qcc: warning: {why}");
            }
            (served.clusters, false)
        }
        None if !config.profile_names().is_empty() => {
            return Err(Error::Usage(format!(
                "no default cluster: give --cluster (one of: {}), or set one with `qcc default NAME`",
                config.profile_names().join(", ")
            )))
        }
        None => (vec![builtin_cluster()], true),
    };
    let host = args.text("--host")?.unwrap_or_else(|| "127.0.0.1".to_string());
    let host = host.as_str();
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| Error::Invalid(format!("--host {host}: not an IP address")))?,
    };
    let listen = SocketAddr::new(ip, args.number("--port")?.unwrap_or(7860));
    let strategy_pinned = args.text("--strategy")?.is_some();
    let strategy = match args.text("--strategy")?.as_deref() {
        None => clusters[0].strategy.unwrap_or(Strategy::PriorityFailover),
        Some(s) => Strategy::parse(s).ok_or_else(|| {
            Error::Invalid(format!(
                "--strategy {s}: unknown (one of priority_failover, weighted, round_robin, random, least_connections)"
            ))
        })?,
    };
    let log_level = match args.text("--log-level")?.as_deref() {
        None => log::LevelFilter::Info,
        Some(l) => {
            l.parse().map_err(|_| Error::Invalid(format!("--log-level {l}: use error, warn, info, debug or trace")))?
        }
    };
    let key_file = home.join("access_key");
    let access_key = args
        .text("--access-key")?
        .or_else(|| std::env::var("QCC_ACCESS_KEY").ok())
        .or_else(|| crate::store::fsutil::read_text(&key_file).ok())
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    // Files holding keys that other users of the machine can read: said, not refused (the
    // Python qcc wrote its config with the default umask).
    // (A background proxy's starter has said it already.)
    let detached = std::env::var_os(DETACHED_ENV).is_some();
    for path in [&config_path, &key_file].into_iter().filter(|_| !detached) {
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
            n if n > crate::store::cluster::MAX_TIMEOUT_SECS => {
                Err(Error::Invalid(format!("{flag} {n}: at most {} seconds", crate::store::cluster::MAX_TIMEOUT_SECS)))
            }
            n => Ok(Duration::from_secs(n)),
        }
    };
    let ca_file = args.path("--ca-file");
    if let Some(ca) = &ca_file {
        if !ca.is_file() {
            return Err(Error::Invalid(format!("--ca-file {}: no such file", ca.display())));
        }
    }
    // The request history is on by default: `qcc logs` and the dashboard work for a proxy that
    // `qcc use`, `qcc env` or the service started.
    let access_log = match (args.path("--access-log"), args.on("--no-access-log")) {
        (Some(_), true) => return Err(Error::Usage("give --access-log PATH or --no-access-log, not both".into())),
        (Some(p), false) => Some(p),
        (None, true) => None,
        (None, false) => Some(home.join("access.jsonl")),
    };
    let notify_urls = args.all("--notify-url")?;
    for u in &notify_urls {
        crate::store::url::WebhookUrl::parse(u).map_err(|e| Error::Invalid(format!("--notify-url: {e}")))?;
    }
    Ok(Settings {
        notify_urls,
        config_notify_urls: config.notify_urls()?,
        clusters,
        chain,
        builtin_default,
        listen,
        strategy,
        strategy_pinned,
        ca_file,
        verify_interval: secs(args.number("--verify-interval")?, 60, "--verify-interval")?,
        prices: config.prices()?,
        probe_model: args
            .text("--probe-model")?
            .or_else(|| config.test_model().map(str::to_string))
            .unwrap_or_else(|| super::probe::DEFAULT_PROBE_MODEL.to_string()),
        home,
        config_path,
        log_level,
        max_body: args.number("--max-body")?.unwrap_or(32 * 1024 * 1024),
        max_connections: args.number("--max-connections")?.unwrap_or(1024).max(1),
        header_timeout: secs(args.number("--header-timeout")?, 30, "--header-timeout")?,
        idle_timeout: secs(args.number("--idle-timeout")?, 60, "--idle-timeout")?,
        drain_timeout: secs(args.number("--drain-timeout")?, 30, "--drain-timeout")?,
        stream_idle_timeout: secs(args.number("--stream-idle-timeout")?, 60, "--stream-idle-timeout")?,
        access_key,
        allow_hosts: args.all("--allow-host")?,
        allow_origins: args.all("--allow-origin")?,
        stream_hold: match args.number("--stream-hold")? {
            Some(0) => Duration::ZERO,
            other => secs(other, 5, "--stream-hold")?,
        },
        access_log,
        learn: !args.on("--no-learn"),
        log_bodies: match args.path("--log-bodies") {
            Some(dir) => {
                crate::store::fsutil::ensure_dir(&dir)
                    .map_err(|e| Error::Invalid(format!("--log-bodies {}: {e}", dir.display())))?;
                Some(dir)
            }
            None => None,
        },
        search_limit: Duration::from_millis(
            std::env::var("QCC_SEARCH_LIMIT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000),
        ),
        detached,
        affinity_max: if args.on("--no-affinity") { 0 } else { args.number("--affinity-max")?.unwrap_or(10_000) },
        affinity_ttl: secs(args.number("--affinity-ttl")?, 3600, "--affinity-ttl")?,
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
        retry_on: Default::default(),
        strategy: None,
        routes: Vec::new(),
        fallback: Vec::new(),
        name: "default".to_string(),
        endpoints: vec![crate::store::cluster::EndpointConfig::new("a0000000".to_string(), url, "")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_parses_and_is_in_the_help() {
        let help = help();
        let mut argv: Vec<OsString> = Vec::new();
        for f in FLAGS {
            assert!(help.contains(f.name), "{} missing from --help", f.name);
            argv.push(f.name.into());
            if f.value.is_some() {
                argv.push("7".into());
            }
        }
        let mut args = Arguments::from_vec(argv);
        let parsed = ProxyStartArgs::parse(&mut args).unwrap();
        assert!(args.finish().is_empty(), "every flag taken");
        assert_eq!(parsed.number::<u16>("--port").unwrap(), Some(7));
        assert!(parsed.on("--no-affinity"));
        let mut twice = Arguments::from_vec(vec!["--allow-host".into(), "a".into(), "--allow-host".into(), "b".into()]);
        assert_eq!(ProxyStartArgs::parse(&mut twice).unwrap().all("--allow-host").unwrap(), ["a", "b"]);
    }
}
