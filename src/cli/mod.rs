//! Command-line parsing (pico-args) into raw commands; validation happens in `settings` and
//! the command implementations. Every unknown command or flag, missing value or leftover
//! argument is a usage error (exit 2).

mod args;
pub mod background;
pub mod claude;
pub mod client;
mod command;
pub mod commands;
pub mod completions;
pub mod control;
pub mod dashboard;
pub mod doctor;
pub mod help;
pub mod keys;
pub mod launch;
pub mod logs;
pub mod priority;
pub mod probe;
pub mod profiles;
pub mod proxy_start;
pub mod routes;
pub mod service;
pub mod statusline;
pub mod sync;
pub mod uninstall;
pub mod usage;

use std::ffi::OsString;
use std::path::PathBuf;

use pico_args::Arguments;

use crate::error::{Error, Result};

use args::*;
pub use command::{Command, ProxyStartArgs, UseArgs};

/// The commands without a subcommand (`qcc add`, `qcc use` ...); `None` for a group.
fn parse_single(group: &str, help: bool, args: &mut Arguments) -> Result<Option<Command>> {
    let singles = [
        "init",
        "add",
        "list",
        "use",
        "remove",
        "status",
        "default",
        "usage",
        "completions",
        "env",
        "doctor",
        "logs",
        "uninstall",
        "presets",
        "dashboard",
        "statusline",
    ];
    if !singles.contains(&group) {
        return Ok(None);
    }
    if help {
        return Ok(Some(Command::Help(group.to_string())));
    }
    Ok(Some(match group {
        "init" => Command::Init,
        "add" => {
            let url = args.value_from_str("--url").map_err(usage)?;
            let key = secret_arg(args, "--key", "--key-file")?;
            let description = args.opt_value_from_str("--description").map_err(usage)?.unwrap_or_default();
            Command::Add { name: positional(args, "a profile NAME", group)?, url, key, description }
        }
        "list" => Command::List { json: args.contains("--json") },
        "use" => {
            let launch = !args.contains("--no-launch");
            let direct = args.contains("--direct");
            let port = args.opt_value_from_str("--port").map_err(usage)?;
            // No NAME: a pick list on a terminal (`launch.rs`), else the usual "needs a NAME".
            let name = match args.opt_free_from_str::<String>().map_err(usage)? {
                Some(v) if v.starts_with('-') => {
                    let hint = completions::did_you_mean(&v, None, Some("use"));
                    return Err(Error::Usage(format!("unknown option '{v}' for `qcc use`{hint}")));
                }
                other => other,
            };
            let pick = name.is_none();
            Command::Use(Box::new(UseArgs { name, launch, port, direct, pick, ..UseArgs::default() }))
        }
        "env" => {
            let cluster = args.opt_value_from_str("--cluster").map_err(usage)?;
            let port = args.opt_value_from_str("--port").map_err(usage)?;
            let shell: Option<String> = args.opt_value_from_str("--shell").map_err(usage)?;
            let fish = match shell.as_deref() {
                None | Some("sh" | "bash" | "zsh") => false,
                Some("fish") => true,
                Some(other) => return Err(Error::Usage(format!("--shell {other}: use sh or fish"))),
            };
            Command::Env { cluster, port, fish }
        }
        "doctor" => Command::Doctor { json: args.contains("--json") },
        "logs" => {
            use crate::store::requestlog::{Filter, FIELDS};
            const FLAGS: [&str; FIELDS.len()] =
                ["--endpoint", "--key", "--status", "--session", "--model", "--since", "--until", "--cluster"];
            debug_assert!(FLAGS.iter().zip(FIELDS).all(|(f, n)| &f[2..] == n));
            let mut given = Vec::new();
            for flag in FLAGS {
                if let Some(v) = args.opt_value_from_str::<_, String>(flag).map_err(usage)? {
                    given.push((&flag[2..], v));
                }
            }
            let get = |name: &str| given.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
            let filter = Filter::from_fields(get, "--", std::time::SystemTime::now()).map_err(Error::Usage)?;
            Command::Logs(Box::new(logs::LogsArgs {
                filter,
                file: args.opt_value_from_os_str("--file", |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?,
                n: args.opt_value_from_str(["-n", "--lines"]).map_err(usage)?.unwrap_or(20),
                json: args.contains("--json"),
            }))
        }
        "remove" => {
            let yes = args.contains(["-y", "--yes"]);
            let force = args.contains("--force");
            Command::Remove { name: positional(args, "a profile NAME", group)?, yes, force }
        }
        "status" => Command::Status { json: args.contains("--json") },
        "uninstall" => Command::Uninstall { yes: args.contains(["-y", "--yes"]) },
        "presets" => Command::Presets { json: args.contains("--json") },
        "dashboard" => Command::Dashboard { open: args.contains("--open") },
        "statusline" => {
            Command::Statusline { install: args.contains("--install"), uninstall: args.contains("--uninstall") }
        }
        "default" => Command::Default { name: positional(args, "a profile NAME", group)? },
        "usage" => {
            let json = args.contains("--json");
            let by: Option<String> = args.opt_value_from_str("--by").map_err(usage)?;
            let by = by.as_deref().map_or(Ok(usage::By::Endpoint), usage::By::parse)?;
            Command::Usage { json, days: args.opt_value_from_str("--days").map_err(usage)?.unwrap_or(7), by }
        }
        _ => Command::Completions { shell: positional(args, "a shell (bash, zsh or fish)", group)? },
    }))
}

/// Parse the arguments after the program name.
pub fn parse(mut raw: Vec<OsString>) -> Result<Command> {
    // Everything after `--` goes to `claude` unchanged (`qcc use work -- -c`).
    let claude_args = match raw.iter().position(|a| a == "--") {
        Some(i) => {
            let rest = raw.split_off(i + 1);
            raw.pop();
            Some(rest)
        }
        None => None,
    };
    let cmd = parse_args(raw)?;
    match (cmd, claude_args) {
        (Command::Use(mut u), Some(rest)) => {
            u.claude_args = rest;
            Ok(Command::Use(u))
        }
        (_, Some(_)) => {
            Err(Error::Usage("arguments after `--` are for claude: only `qcc` and `qcc use` take them".into()))
        }
        (cmd, None) => Ok(cmd),
    }
}

fn parse_args(raw: Vec<OsString>) -> Result<Command> {
    let mut args = Arguments::from_vec(raw);
    let help = args.contains(["-h", "--help"]);
    if args.contains(["-V", "--version"]) {
        finish(args, "--version")?;
        return Ok(Command::Version);
    }
    let dry_run = args.contains("--dry-run");
    let group = args.subcommand().map_err(usage)?;
    let Some(group) = group else {
        if help {
            return Ok(Command::Help(String::new()));
        }
        let port = args.opt_value_from_str("--port").map_err(usage)?;
        finish(args, "")?;
        return Ok(Command::Use(Box::new(UseArgs { launch: true, dry_run, port, ..UseArgs::default() })));
    };
    if dry_run && group != "use" {
        return Err(Error::Usage(format!("--dry-run is for `qcc` and `qcc use`, not `qcc {group}`")));
    }
    if let Some(cmd) = parse_single(&group, help, &mut args)? {
        finish(args, &group)?;
        return Ok(match cmd {
            Command::Use(mut u) => {
                u.dry_run = dry_run;
                Command::Use(u)
            }
            other => other,
        });
    }
    let sub = match group.as_str() {
        "endpoint" | "config" | "proxy" | "queue" | "health" | "service" | "cluster" | "key" | "sync" | "priority"
        | "route" => args.subcommand().map_err(usage)?,
        "help" => {
            let topic: Vec<String> = args.finish().iter().map(|a| a.to_string_lossy().into_owned()).collect();
            return Ok(Command::Help(topic.join(" ")));
        }
        "version" => {
            finish(args, "version")?;
            return Ok(Command::Version);
        }
        other => {
            let hint = completions::did_you_mean(other, None, None);
            return Err(Error::Usage(format!("unknown command '{other}'{hint} (see `qcc --help`)")));
        }
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
            let preset: Option<String> = args.opt_value_from_str("--preset").map_err(usage)?;
            let base_url: String = match (args.opt_value_from_str("--url").map_err(usage)?, &preset) {
                (Some(u), _) => u,
                (None, Some(_)) => String::new(), // the preset's (`commands::endpoint_add`)
                (None, None) => return Err(Error::Usage("`qcc endpoint add` needs --url URL or --preset NAME".into())),
            };
            use crate::store::config::NewEndpoint;
            let new = NewEndpoint {
                base_url: base_url.trim_end_matches('/').to_string(),
                key: match args.contains("--pass-through") {
                    // The client's own credential goes through: the endpoint has no key here.
                    true => match opt_secret_arg(&mut args, "--key", "--key-file")? {
                        Some(_) => {
                            return Err(Error::Usage(
                                "--pass-through forwards the client's own credential: give no --key".into(),
                            ))
                        }
                        None => String::new(),
                    },
                    false => secret_arg(&mut args, "--key", "--key-file")?,
                },
                priority: args
                    .opt_value_from_str("--priority")
                    .map_err(usage)?
                    .unwrap_or(NewEndpoint::DEFAULT_PRIORITY),
                weight: args.opt_value_from_str("--weight").map_err(usage)?.unwrap_or(NewEndpoint::DEFAULT_WEIGHT),
                timeout: args.opt_value_from_str("--timeout").map_err(usage)?.unwrap_or(NewEndpoint::DEFAULT_TIMEOUT),
                max_failures: args
                    .opt_value_from_str("--max-failures")
                    .map_err(usage)?
                    .unwrap_or(NewEndpoint::DEFAULT_MAX_FAILURES),
                ca_file: args
                    .opt_value_from_os_str("--ca-file", |s| Ok::<_, String>(PathBuf::from(s)))
                    .map_err(usage)?,
                name: args.opt_value_from_str("--name").map_err(usage)?,
                model_map: model_map_arg(&mut args)?.unwrap_or_default(),
                probe_model: probe_model_arg(&mut args)?.filter(|m| !m.is_empty()),
                format: format_arg(&mut args)?,
                caps: caps_arg(&mut args)?,
                rules: rules_arg(&mut args, false)?,
            };
            let cluster = positional(&mut args, "a CLUSTER name", &topic)?;
            Command::EndpointAdd { cluster, new, preset }
        }
        ("endpoint", "list") => {
            let json = args.contains("--json");
            Command::EndpointList { cluster: positional(&mut args, "a CLUSTER name", &topic)?, json }
        }
        ("endpoint", "remove") => {
            let cluster = positional(&mut args, "a CLUSTER name", &topic)?;
            Command::EndpointRemove { cluster, id: positional(&mut args, "an endpoint ID or NAME", &topic)? }
        }
        ("config", "list") => Command::ConfigList { json: args.contains("--json") },
        ("config", "set") => {
            let key = positional(&mut args, "a settings KEY", &topic)?;
            Command::ConfigSet { key, value: positional(&mut args, "a VALUE", &topic)? }
        }
        ("endpoint", "enable" | "disable" | "set") => {
            let mut change = crate::store::profiles::EndpointChange::default();
            if sub == "set" {
                change.url = args.opt_value_from_str("--url").map_err(usage)?;
                change.priority = args.opt_value_from_str("--priority").map_err(usage)?;
                change.weight = args.opt_value_from_str("--weight").map_err(usage)?;
                change.timeout = args.opt_value_from_str("--timeout").map_err(usage)?;
                change.max_failures = args.opt_value_from_str("--max-failures").map_err(usage)?;
                change.key = opt_secret_arg(&mut args, "--key", "--key-file")?;
                change.name = args.opt_value_from_str("--name").map_err(usage)?;
                change.model_map = model_map_arg(&mut args)?;
                change.probe_model = probe_model_arg(&mut args)?;
                change.format = format_arg(&mut args)?;
                change.caps = caps_arg(&mut args)?;
                change.rules = rules_arg(&mut args, true)?;
            } else {
                change.enabled = Some(sub == "enable");
            }
            let cluster = positional(&mut args, "a CLUSTER name", &topic)?;
            Command::EndpointEdit { cluster, id: positional(&mut args, "an endpoint ID or NAME", &topic)?, change }
        }
        ("proxy", "reload") => Command::ProxyReload,
        ("proxy", "restart") => Command::ProxyRestart,
        ("proxy", "unuse") => Command::ProxyUnuse,
        ("health", "test") => {
            let json = args.contains("--json");
            let model = args.opt_value_from_str("--probe-model").map_err(usage)?;
            let cluster = args.opt_free_from_str().map_err(usage)?;
            Command::HealthTest { cluster, id: args.opt_free_from_str().map_err(usage)?, json, model }
        }
        ("health", "check") => Command::HealthCheck { json: args.contains("--json") },
        ("health", "metrics") => {
            let json = args.contains("--json");
            Command::HealthMetrics { json, id: args.opt_free_from_str().map_err(usage)? }
        }
        ("health", "history") => {
            let json = args.contains("--json");
            let n = args.opt_value_from_str(["-n", "--lines"]).map_err(usage)?.unwrap_or(20);
            Command::HealthHistory { json, n, id: args.opt_free_from_str().map_err(usage)? }
        }
        ("health", "config") => Command::HealthConfig { json: args.contains("--json") },
        ("queue", "list") => Command::QueueList { json: args.contains("--json") },
        ("queue", "retry") => Command::QueueRetry { id: Some(positional(&mut args, "an endpoint ID", &topic)?) },
        ("queue", "retry-all") => Command::QueueRetry { id: None },
        ("proxy", "start") => Command::ProxyStart(Box::new(ProxyStartArgs::parse(&mut args)?)),
        ("proxy", "status") => Command::ProxyStatus { json: args.contains("--json") },
        ("proxy", "stop") => {
            let timeout = args.opt_value_from_str("--timeout").map_err(usage)?.unwrap_or(40);
            if timeout > crate::store::cluster::MAX_TIMEOUT_SECS {
                return Err(Error::Usage(format!(
                    "--timeout {timeout}: at most {} seconds",
                    crate::store::cluster::MAX_TIMEOUT_SECS
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
        ("service", "install") => Command::ServiceInstall(Box::new(service::InstallArgs {
            cluster: args.opt_value_from_str("--cluster").map_err(usage)?,
            port: args.opt_value_from_str("--port").map_err(usage)?,
            dir: args.opt_value_from_os_str("--dir", |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?,
            os: args.opt_value_from_str("--os").map_err(usage)?,
        })),
        ("service", "uninstall") => Command::ServiceUninstall {
            dir: args.opt_value_from_os_str("--dir", |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?,
            os: args.opt_value_from_str("--os").map_err(usage)?,
        },
        ("cluster", "set") => {
            let retry_on = args.opt_value_from_str("--retry-on").map_err(usage)?;
            let strategy = args.opt_value_from_str("--strategy").map_err(usage)?;
            let mut fallback: Vec<String> = args.values_from_str("--fallback").map_err(usage)?;
            let fallback = match (args.contains("--no-fallback"), fallback.is_empty()) {
                (true, false) => return Err(Error::Usage("give --fallback C or --no-fallback, not both".into())),
                (true, true) => Some(Vec::new()),
                (false, true) => None,
                (false, false) => Some(std::mem::take(&mut fallback)),
            };
            let name = positional(&mut args, "a CLUSTER name", &topic)?;
            Command::ClusterSet { name, retry_on, strategy, fallback }
        }
        ("route", "add") => {
            let model = args.opt_value_from_str("--model").map_err(usage)?;
            let when = args.opt_value_from_str("--when").map_err(usage)?;
            let to = args
                .opt_value_from_str("--to")
                .map_err(usage)?
                .ok_or_else(|| Error::Usage("give --to CLUSTER: where the matching requests go".into()))?;
            Command::RouteAdd { cluster: positional(&mut args, "a CLUSTER name", &topic)?, model, when, to }
        }
        ("route", "list") => {
            let json = args.contains("--json");
            Command::RouteList { cluster: positional(&mut args, "a CLUSTER name", &topic)?, json }
        }
        ("route", "remove") => {
            let cluster = positional(&mut args, "a CLUSTER name", &topic)?;
            Command::RouteRemove { cluster, n: positional(&mut args, "a route number N (see qcc route list)", &topic)? }
        }
        ("cluster", "show") => {
            let json = args.contains("--json");
            Command::ClusterShow { name: positional(&mut args, "a CLUSTER name", &topic)?, json }
        }
        ("service", "status") => Command::ServiceStatus { os: args.opt_value_from_str("--os").map_err(usage)? },
        ("key", "add") => {
            let change = key_change(&mut args, false)?;
            Command::KeyAdd { name: positional(&mut args, "a key NAME", &topic)?, change }
        }
        ("key", "set") => {
            let change = key_change(&mut args, true)?;
            if change.is_empty() {
                return Err(Error::Usage(
                    "`qcc key set NAME` needs something to change (see `qcc key set --help`)".into(),
                ));
            }
            Command::KeySet { name: positional(&mut args, "a key NAME", &topic)?, change }
        }
        ("sync", sub @ ("push" | "pull" | "status")) => {
            let a = Box::new(sync::SyncArgs {
                dir: args.opt_value_from_os_str("--dir", |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?,
                passphrase_file: args
                    .opt_value_from_os_str("--passphrase-file", |s| Ok::<_, String>(PathBuf::from(s)))
                    .map_err(usage)?,
                plaintext: sub != "status" && args.contains("--plaintext"),
                admin_keys: sub == "pull" && args.contains("--admin-keys"),
                theirs: sub == "pull" && args.contains("--theirs"),
                ours: sub == "pull" && args.contains("--ours"),
                json: sub == "status" && args.contains("--json"),
            });
            if a.theirs && a.ours {
                return Err(Error::Usage("give --theirs or --ours, not both".into()));
            }
            match sub {
                "push" => Command::SyncPush(a),
                "pull" => Command::SyncPull(a),
                _ => Command::SyncStatus(a),
            }
        }
        ("key", "list") => Command::KeyList { json: args.contains("--json") },
        ("priority", "set") => {
            let profile = positional(&mut args, "a PROFILE", &topic)?;
            Command::PrioritySet {
                profile,
                level: positional(&mut args, "a LEVEL (primary, secondary, fallback)", &topic)?,
            }
        }
        ("priority", "list") => Command::PriorityList { json: args.contains("--json") },
        ("priority", "switch") => Command::PrioritySwitch { profile: positional(&mut args, "a PROFILE", &topic)? },
        ("priority", "history") => {
            let json = args.contains("--json");
            Command::PriorityHistory { json, n: args.opt_value_from_str("-n").map_err(usage)?.unwrap_or(10) }
        }
        ("priority", "policy") => {
            let pair = |args: &mut Arguments, on: &'static str, off: &'static str| match (
                args.contains(on),
                args.contains(off),
            ) {
                (true, true) => Err(Error::Usage(format!("give {on} or {off}, not both"))),
                (a, b) => Ok((a || b).then_some(a)),
            };
            Command::PriorityPolicy(crate::store::priority::PolicyChange {
                auto_failover: pair(&mut args, "--auto-failover", "--no-auto-failover")?,
                auto_recovery: pair(&mut args, "--auto-recovery", "--no-auto-recovery")?,
                failure_threshold: args.opt_value_from_str("--failure-threshold").map_err(usage)?,
                cooldown_period: args.opt_value_from_str("--cooldown").map_err(usage)?,
            })
        }
        ("key", "revoke") => Command::KeyRevoke { name: positional(&mut args, "a key NAME", &topic)? },
        (g, s) => {
            let hint = completions::did_you_mean(s, Some(g), None);
            return Err(Error::Usage(format!("unknown command '{g} {s}'{hint}")));
        }
    };
    finish(args, &topic)?;
    Ok(cmd)
}
