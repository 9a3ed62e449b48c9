//! Command-line parsing (pico-args) into raw commands; validation happens in `settings` and
//! the command implementations. Every unknown command or flag, missing value or leftover
//! argument is a usage error (exit 2).

pub mod claude;
pub mod commands;
pub mod control;
pub mod proxy_start;

use std::ffi::OsString;
use std::path::PathBuf;

use pico_args::Arguments;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct ProxyStartArgs {
    pub cluster: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub strategy: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub verify_interval: Option<u64>,
    pub probe_model: Option<String>,
    pub log_level: Option<String>,
    pub max_body: Option<u64>,
    pub max_connections: Option<usize>,
    pub header_timeout: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub drain_timeout: Option<u64>,
    pub stream_idle_timeout: Option<u64>,
    pub access_key: Option<String>,
    pub allow_hosts: Vec<String>,
    pub allow_origins: Vec<String>,
    pub affinity_max: Option<usize>,
    pub affinity_ttl: Option<u64>,
    pub no_affinity: bool,
    pub stream_hold: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum Command {
    Version,
    Help(String),
    EndpointAdd {
        cluster: String,
        url: String,
        key: String,
        priority: u32,
        weight: u32,
        timeout: u64,
        max_failures: u32,
        ca_file: Option<PathBuf>,
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
    QueueStatus {
        json: bool,
    },
    QueueClear,
    HealthStatus {
        json: bool,
    },
}

fn usage(e: pico_args::Error) -> Error {
    Error::Usage(match e {
        pico_args::Error::OptionWithoutAValue(k) => format!("option {k} needs a value"),
        pico_args::Error::Utf8ArgumentParsingFailed { value, cause } => {
            format!("invalid value '{value}': {cause}")
        }
        pico_args::Error::ArgumentParsingFailed { cause } => format!("invalid value: {cause}"),
        other => other.to_string(),
    })
}

fn positional(args: &mut Arguments, what: &str, topic: &str) -> Result<String> {
    match args.opt_free_from_str::<String>().map_err(usage)? {
        Some(v) if !v.starts_with('-') => Ok(v),
        Some(v) => Err(Error::Usage(format!("unknown option '{v}' for `qcc {topic}`"))),
        None => Err(Error::Usage(format!("`qcc {topic}` needs {what}"))),
    }
}

fn finish(args: Arguments, topic: &str) -> Result<()> {
    let rest = args.finish();
    match rest.first() {
        None => Ok(()),
        Some(a) => {
            let a = a.to_string_lossy();
            Err(Error::Usage(if a.starts_with('-') {
                format!("unknown option '{a}' for `qcc {topic}`")
            } else {
                format!("unexpected argument '{a}' for `qcc {topic}`")
            }))
        }
    }
}

/// A secret given as `--key KEY`, `--key -` (first line of stdin) or `--key-file PATH` (first
/// line of the file): exactly one of them. The file and stdin forms keep it out of `ps`.
fn secret_arg(args: &mut Arguments, flag: &'static str, file_flag: &'static str) -> Result<String> {
    let value: Option<String> = args.opt_value_from_str(flag).map_err(usage)?;
    let file: Option<PathBuf> =
        args.opt_value_from_os_str(file_flag, |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?;
    let text = match (value, file) {
        (Some(_), Some(_)) => return Err(Error::Usage(format!("give {flag} or {file_flag}, not both"))),
        (None, None) => return Err(Error::Usage(format!("{flag} KEY, {flag} - or {file_flag} PATH is required"))),
        (Some(v), None) if v == "-" => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| Error::io(format!("{flag} -: cannot read stdin"), e))?;
            line
        }
        (Some(v), None) => v,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| Error::BadFile { path: path.clone(), problem: e.to_string() })?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    };
    let key = text.trim().to_string();
    if key.is_empty() {
        return Err(Error::Invalid(format!("{flag}: the key is empty")));
    }
    Ok(key)
}

/// Parse the arguments after the program name.
pub fn parse(raw: Vec<OsString>) -> Result<Command> {
    let mut args = Arguments::from_vec(raw);
    let help = args.contains(["-h", "--help"]);
    if args.contains(["-V", "--version"]) {
        finish(args, "--version")?;
        return Ok(Command::Version);
    }
    let group = args.subcommand().map_err(usage)?;
    let Some(group) = group else {
        return if help { Ok(Command::Help(String::new())) } else { Err(Error::Usage("missing command".into())) };
    };
    let sub = match group.as_str() {
        "endpoint" | "config" | "proxy" | "queue" | "health" => args.subcommand().map_err(usage)?,
        "help" => {
            let topic: Vec<String> = args.finish().iter().map(|a| a.to_string_lossy().into_owned()).collect();
            return Ok(Command::Help(topic.join(" ")));
        }
        "version" => {
            finish(args, "version")?;
            return Ok(Command::Version);
        }
        "usage" => {
            if help {
                return Ok(Command::Help("usage".into()));
            }
            let json = args.contains("--json");
            let days = args.opt_value_from_str("--days").map_err(usage)?.unwrap_or(7);
            finish(args, "usage")?;
            return Ok(Command::Usage { json, days });
        }
        "default" => {
            if help {
                return Ok(Command::Help("default".into()));
            }
            let name = positional(&mut args, "a profile NAME", "default")?;
            finish(args, "default")?;
            return Ok(Command::Default { name });
        }
        other => return Err(Error::Usage(format!("unknown command '{other}'"))),
    };
    let topic = match &sub {
        Some(s) => format!("{group} {s}"),
        None => group.clone(),
    };
    if help {
        return Ok(Command::Help(topic));
    }
    let Some(sub) = sub else {
        return Err(Error::Usage(format!("`qcc {group}` needs a subcommand")));
    };
    let cmd = match (group.as_str(), sub.as_str()) {
        ("endpoint", "add") => {
            let url = args.value_from_str("--url").map_err(usage)?;
            let key = secret_arg(&mut args, "--key", "--key-file")?;
            let priority = args.opt_value_from_str("--priority").map_err(usage)?.unwrap_or(1);
            let weight = args.opt_value_from_str("--weight").map_err(usage)?.unwrap_or(100);
            let timeout = args.opt_value_from_str("--timeout").map_err(usage)?.unwrap_or(30);
            let max_failures = args.opt_value_from_str("--max-failures").map_err(usage)?.unwrap_or(3);
            let ca_file =
                args.opt_value_from_os_str("--ca-file", |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?;
            let cluster = positional(&mut args, "a CLUSTER name", &topic)?;
            Command::EndpointAdd { cluster, url, key, priority, weight, timeout, max_failures, ca_file }
        }
        ("endpoint", "list") => {
            let json = args.contains("--json");
            Command::EndpointList { cluster: positional(&mut args, "a CLUSTER name", &topic)?, json }
        }
        ("endpoint", "remove") => {
            let cluster = positional(&mut args, "a CLUSTER name", &topic)?;
            Command::EndpointRemove { cluster, id: positional(&mut args, "an endpoint ID", &topic)? }
        }
        ("config", "list") => Command::ConfigList { json: args.contains("--json") },
        ("proxy", "start") => Command::ProxyStart(Box::new(ProxyStartArgs {
            cluster: args.opt_value_from_str("--cluster").map_err(usage)?,
            host: args.opt_value_from_str("--host").map_err(usage)?,
            port: args.opt_value_from_str("--port").map_err(usage)?,
            strategy: args.opt_value_from_str("--strategy").map_err(usage)?,
            ca_file: args.opt_value_from_os_str("--ca-file", |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?,
            verify_interval: args.opt_value_from_str("--verify-interval").map_err(usage)?,
            probe_model: args.opt_value_from_str("--probe-model").map_err(usage)?,
            log_level: args.opt_value_from_str("--log-level").map_err(usage)?,
            max_body: args.opt_value_from_str("--max-body").map_err(usage)?,
            max_connections: args.opt_value_from_str("--max-connections").map_err(usage)?,
            header_timeout: args.opt_value_from_str("--header-timeout").map_err(usage)?,
            idle_timeout: args.opt_value_from_str("--idle-timeout").map_err(usage)?,
            drain_timeout: args.opt_value_from_str("--drain-timeout").map_err(usage)?,
            stream_idle_timeout: args.opt_value_from_str("--stream-idle-timeout").map_err(usage)?,
            access_key: args.opt_value_from_str("--access-key").map_err(usage)?,
            allow_hosts: args.values_from_str("--allow-host").map_err(usage)?,
            allow_origins: args.values_from_str("--allow-origin").map_err(usage)?,
            affinity_max: args.opt_value_from_str("--affinity-max").map_err(usage)?,
            affinity_ttl: args.opt_value_from_str("--affinity-ttl").map_err(usage)?,
            no_affinity: args.contains("--no-affinity"),
            stream_hold: args.opt_value_from_str("--stream-hold").map_err(usage)?,
        })),
        ("proxy", "status") => Command::ProxyStatus { json: args.contains("--json") },
        ("proxy", "stop") => {
            let timeout = args.opt_value_from_str("--timeout").map_err(usage)?.unwrap_or(40);
            if timeout > crate::store::config::MAX_TIMEOUT_SECS {
                return Err(Error::Usage(format!(
                    "--timeout {timeout}: at most {} seconds",
                    crate::store::config::MAX_TIMEOUT_SECS
                )));
            }
            Command::ProxyStop { timeout }
        }
        ("proxy", "logs") => Command::ProxyLogs {
            lines: args.opt_value_from_str(["-n", "--lines"]).map_err(usage)?.unwrap_or(50),
            follow: args.contains(["-f", "--follow"]),
        },
        ("proxy", "use") => {
            let host = args.opt_value_from_str("--host").map_err(usage)?;
            let port = args.opt_value_from_str("--port").map_err(usage)?;
            Command::ProxyUse { cluster: positional(&mut args, "a CLUSTER name", &topic)?, host, port }
        }
        ("queue", "status") => Command::QueueStatus { json: args.contains("--json") },
        ("queue", "clear") => Command::QueueClear,
        ("health", "status") => Command::HealthStatus { json: args.contains("--json") },
        (g, s) => return Err(Error::Usage(format!("unknown command '{g} {s}'"))),
    };
    finish(args, &topic)?;
    Ok(cmd)
}

/// Help for a topic ("" for the overview); `None` for an unknown topic.
pub fn help(topic: &str) -> Option<&'static str> {
    Some(match topic {
        "" => HELP,
        "endpoint" | "endpoint add" | "endpoint list" | "endpoint remove" => HELP_ENDPOINT,
        "config" | "config list" | "default" => HELP_CONFIG,
        "usage" => HELP_USAGE,
        "proxy start" => HELP_PROXY_START,
        "proxy" | "proxy status" | "proxy stop" | "proxy logs" | "proxy use" => HELP_PROXY,
        "queue" | "queue status" | "queue clear" | "health" | "health status" => HELP_QUEUE,
        _ => return None,
    })
}

const HELP: &str = "\
qcc — a failover proxy for Claude Code across several API endpoints

USAGE:
    qcc <COMMAND> [OPTIONS]

COMMANDS:
    endpoint add CLUSTER --url URL --key KEY [...]   add an endpoint (creates the cluster)
    endpoint list CLUSTER [--json]                   list a cluster's endpoints (keys masked)
    endpoint remove CLUSTER ID                       remove an endpoint
    config list [--json]                             profiles and clusters (keys masked)
    default NAME                                     set the default profile
    usage [--json] [--days N]                        tokens per day, endpoint and model
    proxy start [--cluster NAME] [...]               run the proxy in the foreground
    proxy status [--json]                            the running proxy: requests, health, queue
    proxy stop [--timeout SECS]                      stop the running proxy (SIGTERM, drain)
    proxy logs [-n N] [-f]                           show (or follow) the proxy log
    proxy use CLUSTER [--host H] [--port P]          point Claude Code's settings.json at qcc
    queue status [--json]                            the failure queue of the running proxy
    queue clear                                      empty the failure queue
    health status [--json]                           endpoint health of the running proxy

OPTIONS:
    -h, --help       help (also `qcc <command> --help`)
    -V, --version    print the version

FILES:
    $QCC_CONFIG (default ~/.fastcc/cache.json)   profiles and clusters
    $QCC_HOME   (default ~/.qcc)                 proxy.pid, proxy.log, failure_endpoints.json
";

const HELP_ENDPOINT: &str = "\
qcc endpoint — manage the endpoints of a cluster

USAGE:
    qcc endpoint add CLUSTER --url URL (--key-file PATH | --key - | --key KEY) [--priority N]
                             [--weight N] [--timeout SECS] [--max-failures N] [--ca-file PEM]
        Creates CLUSTER if needed; prints the new endpoint id (8 hex characters).
        --url            http:// or https:// base URL, may carry a path prefix
        --key-file PATH  read the endpoint's API key from a file (first line)
        --key -          read it from stdin; both keep the key out of `ps` and shell history
        --key KEY        the key itself (visible to other users in `ps` while qcc runs)
        --priority N     1 = primary, 2 = secondary, ...; lower wins (default 1)
        --weight N       for the weighted strategy (default 100)
        --timeout SECS   time to the response head, and the connect cap (default 30)
        --max-failures N consecutive failures before it is unhealthy (default 3)
        --ca-file PEM    extra trusted CA for a self-hosted relay
    qcc endpoint list CLUSTER [--json]
        --json: [{\"id\", \"base_url\", \"api_key\" (masked), \"priority\", \"weight\", \"enabled\",
                 \"max_failures\", \"timeout\"}]
    qcc endpoint remove CLUSTER ID
";

const HELP_USAGE: &str = "\
qcc usage [--json] [--days N]
    Tokens per day, endpoint and model, as the proxy read them from the responses
    ($QCC_HOME/usage.json, kept 90 days): requests, input, output, cache-creation and
    cache-read tokens, for today and the N-1 days before (default 7).
    --json: {\"file\": PATH, \"days\": {\"YYYY-MM-DD\": {ENDPOINT_ID: {MODEL: {\"requests\",
             \"input_tokens\", \"output_tokens\", \"cache_creation_input_tokens\",
             \"cache_read_input_tokens\"}}}}}
";

const HELP_CONFIG: &str = "\
qcc config list [--json]
    Lists profiles and clusters of $QCC_CONFIG; the default profile is marked.
    --json: {\"config\": PATH, \"default_profile\": NAME|null, \"profiles\": [{\"name\", \"default\",
             \"endpoints\": [ as in `endpoint list --json` ]}]}

qcc default NAME
    Makes NAME the default profile (settings.default_profile), what `proxy start` serves
    without --cluster.
";

const HELP_PROXY_START: &str = "\
qcc proxy start — run the proxy in the foreground (one thread, one event loop)

USAGE:
    qcc proxy start [OPTIONS]

OPTIONS:
    --cluster NAME          cluster to serve (default: the default profile; with nothing
                            configured, https://api.anthropic.com with the client's own key)
    --host ADDR             listen address (default 127.0.0.1; non-loopback needs an access key)
    --port PORT             listen port (default 7860; 0 picks a free one)
    --strategy S            priority_failover (default), weighted, round_robin, random,
                            least_connections
    --ca-file PEM           extra trusted CA for every endpoint
    --verify-interval SECS  how often queued endpoints are probed (default 60)
    --probe-model MODEL     model of the probe request (default claude-3-5-haiku-20241022)
    --log-level LEVEL       error, warn, info (default), debug, trace
    --max-body BYTES        largest request body (default 33554432 = 32 MiB)
    --max-connections N     client connections at once (default 1024)
    --header-timeout SECS   time for a client to send a request head (default 30)
    --idle-timeout SECS     idle keep-alive client connections are closed after (default 60)
    --drain-timeout SECS    on SIGTERM, how long in-flight requests may finish (default 30)
    --stream-idle-timeout SECS
                            an upstream silent this long mid-response has failed (default 60)
    --access-key KEY        clients must send it (x-api-key or Authorization: Bearer);
                            better QCC_ACCESS_KEY or the file $QCC_HOME/access_key (not in `ps`)
    --allow-host NAME       a name clients may put in Host besides the listen address,
                            localhost and loopback IPs (repeatable); off loopback, giving
                            any turns the Host check on
    --stream-hold SECS      hold a 200 event stream until its first content event, at most
                            SECS (default 5; 0 = off): an in-stream error or a death before it
                            is retried on another endpoint, invisibly to the client
    --affinity-max N        Claude Code sessions remembered for affinity (default 10000;
                            least recently used forgotten first)
    --affinity-ttl SECS     a session idle this long may move (default 3600)
    --no-affinity           route every request by --strategy alone
    --allow-origin ORIGIN   a web origin (https://app.example) allowed to call the proxy;
                            other requests with an Origin header get 403 (repeatable)

SIGNALS:
    SIGTERM, SIGINT   stop accepting, drain, persist, exit 0
    SIGHUP            re-read the cluster from the config file
";

const HELP_PROXY: &str = "\
qcc proxy — run and control the proxy

USAGE:
    qcc proxy start [OPTIONS]          (see `qcc proxy start --help`)
    qcc proxy status [--json]          the running proxy (found via $QCC_HOME/proxy.pid)
    qcc proxy stop [--timeout SECS]    SIGTERM, then wait up to SECS (default 40) for the exit
    qcc proxy logs [-n N] [-f]         last N lines (default 50) of $QCC_HOME/proxy.log;
                                       -f follows until Ctrl-C
    qcc proxy use CLUSTER [--host H] [--port P]
                                       write Claude Code's settings.json ($CLAUDE_CONFIG_DIR or
                                       ~/.claude) to use the proxy, keeping every other key
Exit codes: 0 ok, 1 failure, 2 usage or bad file, 3 proxy not running.
";

const HELP_QUEUE: &str = "\
qcc queue / qcc health — the running proxy's failure queue and endpoint health

USAGE:
    qcc queue status [--json]    queued endpoints and counters (total_failed, total_verified,
                                 total_recovered, total_still_failed)
    qcc queue clear              empty the running proxy's queue (or the file when none runs)
    qcc health status [--json]   per endpoint: status, consecutive failures, requests, failed,
                                 success rate, average response time, in flight
Exit code 3 when no proxy is running (except queue clear).
";
