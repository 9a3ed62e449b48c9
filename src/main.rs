//! qcc: the command-line entry point. A thin shell around `run()`.

mod cli;
mod error;
mod http;
mod logging;
mod mask;
mod policy;
mod proxy;
mod sdnotify;
mod settings;
mod store;
mod translate;

use std::process::ExitCode;
use std::time::Duration;

use cli::{commands, control, Command};
use error::{Error, Result};
use store::fsutil;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Silent(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("qcc: error: {e}");
            if matches!(e, Error::Usage(_)) {
                eprintln!("run `qcc --help` for usage");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command whose output goes to a pipe that closes (`qcc logs | head`) ends there, quietly,
/// as `cat` does: SIGPIPE back to its default. (Rust ignores it, so a closed stdout would make
/// every `println!` panic.) Sockets are unaffected: std sends with `MSG_NOSIGNAL` (Linux) or
/// sets `SO_NOSIGPIPE` (macOS). Not for the proxy itself: a closed terminal must not stop it.
fn pipe_ends_quietly() {
    // SAFETY: setting a standard signal's disposition to its default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run() -> Result<()> {
    let command = cli::parse(std::env::args_os().skip(1).collect())?;
    if !matches!(&command, Command::ProxyStart(a) if !a.background()) {
        pipe_ends_quietly();
    }
    let home = fsutil::qcc_home();
    match command {
        Command::Version => println!("QCC version {}", env!("CARGO_PKG_VERSION")),
        Command::Help(topic) => match cli::help::help(&topic) {
            Some(text) => print!("{text}"),
            None => return Err(Error::Usage(format!("no help for '{topic}'"))),
        },
        Command::EndpointAdd { cluster, new, preset } => commands::endpoint_add(&home, &cluster, new, preset)?,
        Command::Presets { json } => commands::presets(&home, json)?,
        Command::EndpointList { cluster, json } => commands::endpoint_list(&cluster, json)?,
        Command::EndpointRemove { cluster, id } => commands::endpoint_remove(&cluster, &id)?,
        Command::ConfigList { json } => commands::config_list(json)?,
        Command::Default { name } => commands::set_default(&name)?,
        Command::Usage { json, days, by } => cli::usage::usage(&home, by, json, days)?,
        Command::KeyAdd { name, change } => cli::keys::add(&home, &name, &change)?,
        Command::KeySet { name, change } => cli::keys::set(&home, &name, &change)?,
        Command::KeyList { json } => cli::keys::list(&home, json)?,
        Command::PrioritySet { profile, level } => cli::priority::set(&home, &profile, &level)?,
        Command::PriorityList { json } => cli::priority::list(&home, json)?,
        Command::PrioritySwitch { profile } => cli::priority::switch(&home, &profile)?,
        Command::PriorityHistory { json, n } => cli::priority::history(&home, json, n)?,
        Command::PriorityPolicy(change) => cli::priority::policy(&home, &change)?,
        Command::KeyRevoke { name } => cli::keys::revoke(&home, &name)?,
        Command::Logs(a) => cli::logs::run(&home, &a)?,
        Command::SyncPush(a) => cli::sync::push(&home, &a)?,
        Command::SyncPull(a) => cli::sync::pull(&home, &a)?,
        Command::SyncStatus(a) => cli::sync::status(&home, &a)?,
        Command::Init => cli::profiles::init()?,
        Command::Add { name, url, key, description } => cli::profiles::add(&name, &url, &key, &description)?,
        Command::List { json } => cli::profiles::list(json)?,
        Command::Use(u) => cli::launch::use_profile(&home, &u)?,
        Command::Env { cluster, port, fish } => cli::launch::env(&home, cluster.as_deref(), port, fish)?,
        Command::ServiceInstall(args) => cli::service::install(&home, &args)?,
        Command::ServiceUninstall { dir, os } => cli::service::uninstall(dir.as_deref(), os.as_deref())?,
        Command::ServiceStatus { os } => cli::service::status(os.as_deref())?,
        Command::Doctor { json } => cli::doctor::run(&home, json)?,
        Command::ClusterSet { name, retry_on, strategy, fallback } => {
            commands::cluster_set(&name, retry_on.as_deref(), strategy.as_deref(), fallback.as_deref())?
        }
        Command::RouteAdd { cluster, model, when, to } => {
            cli::routes::add(&cluster, model.as_deref(), when.as_deref(), &to)?
        }
        Command::RouteList { cluster, json } => cli::routes::list(&cluster, json)?,
        Command::RouteRemove { cluster, n } => cli::routes::remove(&cluster, &n)?,
        Command::ClusterShow { name, json } => commands::cluster_show(&name, json)?,
        Command::Remove { name, yes, force } => cli::profiles::remove(&name, yes, force)?,
        Command::Uninstall { yes } => cli::uninstall::run(&home, yes)?,
        Command::Status { json } => cli::profiles::status(&home, json)?,
        Command::ConfigSet { key, value } => cli::profiles::config_set(&key, &value)?,
        Command::EndpointEdit { cluster, id, change } => commands::endpoint_edit(&cluster, &id, &change)?,
        Command::ProxyReload => control::proxy_reload(&home)?,
        Command::ProxyRestart => cli::background::restart(&home)?,
        Command::HealthTest { cluster, id, json, model } => {
            cli::probe::health_test(cluster.as_deref(), id.as_deref(), json, model.as_deref())?
        }
        Command::HealthCheck { json } => control::health_check(&home, json)?,
        Command::HealthMetrics { id, json } => control::health_metrics(&home, id.as_deref(), json)?,
        Command::HealthHistory { id, n, json } => control::health_history(&home, id.as_deref(), n, json)?,
        Command::HealthConfig { json } => control::health_config(&home, json)?,
        Command::QueueList { json } => control::queue_list(&home, json)?,
        Command::QueueRetry { id } => control::queue_retry(&home, id.as_deref())?,
        Command::Completions { shell } => cli::completions::print(&shell)?,
        Command::ProxyStart(args) if args.background() => {
            let (lines, _) = cli::background::start(&home, &args)?;
            for line in lines {
                println!("{line}");
            }
            println!(
                "(in the background; logs in {}; stop it with `qcc proxy stop`)",
                logging::log_path(&home).display()
            );
        }
        Command::ProxyStart(args) => {
            let keep = args.flags_to_keep(&[]);
            let settings = cli::proxy_start::settings(*args)?;
            // Remembered for this cluster: `qcc use`, `qcc env`, `qcc proxy restart` and the
            // service start its proxy the same way (`store/proxy_flags.rs`).
            if !settings.builtin_default {
                if let Err(e) = store::proxy_flags::remember(&home, &settings.main().name, keep) {
                    eprintln!("qcc: note: cannot remember this proxy's flags: {e}");
                }
            }
            proxy::run(settings)?
        }
        Command::ProxyStatus { json } => control::proxy_status(&home, json)?,
        Command::Dashboard { open } => cli::dashboard::run(&home, open)?,
        Command::Statusline { install, uninstall } => cli::statusline::run(&home, install, uninstall)?,
        Command::ProxyStop { timeout } => control::proxy_stop(&home, Duration::from_secs(timeout))?,
        Command::ProxyLogs { lines, follow } => control::proxy_logs(&home, lines, follow)?,
        Command::ProxyUse { cluster, host, port } => cli::launch::proxy_use(&home, &cluster, host, port)?,
        Command::ProxyUnuse => cli::claude::unuse()?,
        Command::QueueStatus { json } => control::queue_status(&home, json)?,
        Command::QueueClear => control::queue_clear(&home)?,
        Command::HealthStatus { json } => control::health_status(&home, json)?,
    }
    Ok(())
}
