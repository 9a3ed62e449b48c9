//! Starting Claude Code on a cluster: `qcc`, `qcc use NAME [-- ARGS]` and `qcc env`. A cluster is
//! always used through a proxy (one is started in the background when none serves it), and the
//! proxy's address reaches Claude Code through the environment of that one process or shell,
//! never through the global `settings.json`: no session is left pointing at a stopped proxy.
//! `--direct` keeps the Python qcc's way for a single-endpoint profile, said out loud.

use std::ffi::OsString;
use std::path::Path;

use super::background;
use super::claude::UNSET;
use super::UseArgs;
use crate::error::{Error, Result};
use crate::mask::mask_key;
use crate::store::config::ConfigFile;

/// The variables that point one Claude Code process at the proxy at `base`, as `qcc proxy use`
/// writes them into settings.json: the key the proxy wants (`control::launch_key`), else a
/// placeholder (the proxy puts each endpoint's own key in its place; Claude Code without any key
/// asks to log in instead of calling the proxy), as the bearer token only. Claude Code uses
/// `ANTHROPIC_AUTH_TOKEN` without a question; seeing `ANTHROPIC_API_KEY`, the interactive CLI
/// first asks whether to use that "custom API key" (preselecting No) and the SDK warns when both
/// are set. So `ANTHROPIC_API_KEY` is taken away where qcc points Claude Code at a proxy
/// (`UNSET`).
///
/// A cluster with a pass-through endpoint (`pass_through`) keeps Claude Code's own login: no
/// token is set (and none inherited: `LOGIN_UNSET`), and a key the proxy wants travels beside
/// the login in a header of its own (`ANTHROPIC_CUSTOM_HEADERS: x-qcc-key: KEY`).
fn proxy_env(home: &Path, base: &str, pass_through: bool) -> Vec<(&'static str, String)> {
    let key = super::control::launch_key(home);
    let mut env = vec![("ANTHROPIC_BASE_URL", base.to_string())];
    match (pass_through, key == super::control::PLACEHOLDER) {
        (false, _) => env.push(("ANTHROPIC_AUTH_TOKEN", key)),
        (true, true) => {}
        (true, false) => env.push(("ANTHROPIC_CUSTOM_HEADERS", format!("x-qcc-key: {key}"))),
    }
    env
}

/// What a shell pointed at a pass-through cluster must not carry: either would replace Claude
/// Code's own login.
const LOGIN_UNSET: &str = "ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN";

/// The cluster has an endpoint that forwards the client's own credential (`--pass-through`).
fn passes_through(cluster: &crate::store::cluster::ClusterConfig) -> bool {
    cluster.endpoints.iter().any(|e| e.passes_through())
}

/// The profile `qcc` alone means, or why there is none.
fn launch_profile(config: &ConfigFile) -> Result<String> {
    match config.launch_profile() {
        Some(n) => Ok(n),
        None if config.profile_names().is_empty() => {
            eprintln!(
                "qcc: no profiles yet. Add endpoints (two or more fail over to each other) and launch Claude Code:"
            );
            eprintln!("  qcc endpoint add work --url https://api.example.com --key-file ~/.config/key && qcc use work");
            eprintln!("  (one endpoint alone, as the Python qcc made them: qcc add NAME --url URL --key-file PATH)");
            Err(Error::Silent(1))
        }
        None => Err(Error::Failed("no default profile: pick one with `qcc default NAME` or `qcc use NAME`".into())),
    }
}

/// `qcc use` without a NAME, as the Python qcc did: a numbered list of the profiles on a terminal
/// (Enter takes the one `qcc` alone would); never when stdin is not a terminal.
fn pick_profile(config: &ConfigFile) -> Result<String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage("`qcc use` needs a profile NAME (the pick list is for a terminal)".into()));
    }
    let names = config.profile_names();
    if names.is_empty() {
        return launch_profile(config);
    }
    let usual = config.launch_profile();
    eprintln!("profiles:");
    for (i, n) in names.iter().enumerate() {
        let mark = if usual.as_deref() == Some(n.as_str()) { "  (Enter)" } else { "" };
        eprintln!("  {}) {}{mark}", i + 1, crate::mask::clean(n));
    }
    eprint!("use which? [1-{}] ", names.len());
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    match answer.trim() {
        "" => usual.ok_or_else(|| Error::Failed("no profile picked".into())),
        a => a
            .parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| names.get(i).cloned())
            .ok_or_else(|| Error::Failed(format!("{a:?}: not one of 1 to {}", names.len()))),
    }
}

/// Claude Code's own settings point somewhere else than `base`: settings.json's `env` applies
/// to every session, over the environment qcc passes, so a launch would go there. What to say.
fn settings_elsewhere(base: &str) -> Option<String> {
    let set = super::claude::settings_base_url()?;
    if set.trim_end_matches('/') == base.trim_end_matches('/') {
        return None;
    }
    let alive = super::client::answers(&set);
    Some(format!(
        "{} sets ANTHROPIC_BASE_URL={} ({}), which Claude Code uses over qcc's",
        super::claude::settings_path().display(),
        crate::mask::mask_url(&set),
        if alive { "something answers there" } else { "nothing answers there" }
    ))
}

/// Before Claude Code is launched at `base` for `name`: when its settings send it elsewhere, it
/// would run against the wrong place. On a terminal qcc offers to point them at `base` (`proxy
/// use`, undone with `proxy unuse`); otherwise it refuses, saying how to fix it.
fn settings_agree(home: &Path, name: &str, base: &str, launching: bool) -> Result<()> {
    let Some(said) = settings_elsewhere(base) else { return Ok(()) };
    if !launching {
        eprintln!("qcc: warning: {said}; `qcc proxy use {name}` points them here");
        return Ok(());
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("qcc: {said}.\npoint Claude Code's settings at {base} instead (undo: qcc proxy unuse)? [Y/n] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if matches!(answer.trim(), "" | "y" | "Y" | "yes") {
            let key = super::control::launch_key(home);
            let path = super::claude::write_env(base, &key, super::claude::Credential::BearerOnly)?;
            eprintln!("qcc: {} now points at {base}", path.display());
            return Ok(());
        }
    }
    Err(Error::Failed(format!(
        "{said}: Claude Code would not go through '{name}'. Point it here with `qcc proxy use {name}`, or undo qcc's \
         earlier change with `qcc proxy unuse`"
    )))
}

/// `qcc` and `qcc use NAME [--port P] [--direct] [--no-launch] [--dry-run] [-- ARGS]`.
pub fn use_profile(home: &Path, u: &UseArgs) -> Result<()> {
    let mut config = ConfigFile::load_user()?;
    let name = match &u.name {
        Some(n) => n.clone(),
        None if u.pick => pick_profile(&config)?,
        None => launch_profile(&config)?,
    };
    let cluster = config.cluster(&name)?;
    if cluster.endpoints.is_empty() {
        return Err(Error::Invalid(format!("profile '{name}' has no endpoint")));
    }
    if u.direct {
        return use_direct(&mut config, &name, &cluster, u);
    }
    if !u.dry_run && u.launch && !super::claude::installed() {
        return Err(Error::Failed(
            "claude is not on PATH; install Claude Code with `npm install -g @anthropic-ai/claude-code`".into(),
        ));
    }
    let running = crate::store::pidfile::running(home)?;
    if u.dry_run {
        match running {
            Some(info) if info.cluster.as_deref() == Some(name.as_str()) => {
                println!("would use the running qcc proxy for '{name}' (pid {}, {})", info.pid, info.base_url())
            }
            Some(info) if crate::store::names::check_name(&name).is_ok() => println!(
                "would use the running qcc proxy (pid {}, for '{}'), which serves '{name}' at {}",
                info.pid,
                info.cluster.as_deref().unwrap_or("another cluster"),
                background::named_url(&info.base_url(), &name)
            ),
            Some(info) => println!(
                "would fail: a qcc proxy for another cluster runs here (pid {}, {}); `qcc proxy stop` first",
                info.pid,
                info.base_url()
            ),
            None => println!(
                "would start a qcc proxy for '{name}' in the background on 127.0.0.1:{}",
                u.port.unwrap_or(7860)
            ),
        }
        println!("would run: claude {}", shown_args(&u.claude_args));
        return Ok(());
    }
    let (info, started, base) = background::ensure(home, &name, u.port)?;
    if started {
        eprintln!(
            "qcc: started a proxy for '{name}' in the background (pid {}, {base}); `qcc proxy stop` ends it",
            info.pid
        );
    }
    settings_agree(home, &name, &base, u.launch)?;
    config.touch_last_used(&name)?;
    config.save()?;
    if !u.launch {
        println!("ANTHROPIC_BASE_URL={base}");
        return Ok(());
    }
    eprintln!("qcc: Claude Code on '{name}' through {base}");
    super::claude::launch(&proxy_env(home, &base, passes_through(&cluster)), &u.claude_args)
}

/// `--direct`: the Python qcc's `use` for a single-endpoint profile: its URL and key written into
/// Claude Code's settings.json, no proxy, no failover.
fn use_direct(
    config: &mut ConfigFile,
    name: &str,
    cluster: &crate::store::cluster::ClusterConfig,
    u: &UseArgs,
) -> Result<()> {
    let [ep] = cluster.endpoints.as_slice() else {
        return Err(Error::Usage(format!(
            "--direct is for a single-endpoint profile; '{name}' has {} endpoints (use it through the proxy: `qcc use {name}`)",
            cluster.endpoints.len()
        )));
    };
    let base = ep.url.to_string();
    if u.dry_run {
        println!(
            "would write {} for '{name}': ANTHROPIC_BASE_URL={base}, key {} (directly: no proxy, no failover)",
            super::claude::settings_path().display(),
            mask_key(&ep.api_key)
        );
        println!("would run: claude {}", shown_args(&u.claude_args));
        return Ok(());
    }
    let path = super::claude::write_env(&base, &ep.api_key, super::claude::Credential::Both)?;
    config.touch_last_used(name)?;
    config.save()?;
    println!(
        "Claude Code now uses '{name}' directly, without a proxy and without failover (--direct): {base} ({})",
        path.display()
    );
    if !u.launch {
        return Ok(());
    }
    super::claude::launch(&[], &u.claude_args)
}

fn shown_args(args: &[OsString]) -> String {
    args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

/// `qcc env [--cluster C] [--port P] [--shell sh|fish]`: a proxy for the cluster (started in the
/// background when none runs), and the exports that point this shell's Claude Code at it.
pub fn env(home: &Path, cluster: Option<&str>, port: Option<u16>, fish: bool) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let name = config.cluster_meant(cluster)?;
    let pass_through = config.cluster(&name).is_ok_and(|c| passes_through(&c));
    let (info, started, base) = background::ensure(home, &name, port)?;
    if started {
        eprintln!("qcc: started a proxy for '{name}' in the background (pid {}, {base})", info.pid);
    }
    let unset = if pass_through { LOGIN_UNSET } else { UNSET };
    if fish {
        println!("set -e {unset};");
    } else {
        println!("unset {unset}");
    }
    for (k, v) in proxy_env(home, &base, pass_through) {
        let v = format!("'{}'", v.replace('\'', r"'\''"));
        if fish {
            println!("set -gx {k} {v};");
        } else {
            println!("export {k}={v}");
        }
    }
    Ok(())
}

/// `qcc proxy use CLUSTER [--host H] [--port P]`: point Claude Code's settings.json at the proxy
/// for good (every session), with a key the proxy accepts; and say when nothing serves there.
pub fn proxy_use(home: &Path, cluster: &str, host: Option<String>, port: Option<u16>) -> Result<()> {
    ConfigFile::load_user()?.cluster(cluster)?;
    let host = host.unwrap_or_else(|| "127.0.0.1".into());
    let port = port.unwrap_or(7860);
    let base = if host.contains(':') { format!("http://[{host}]:{port}") } else { format!("http://{host}:{port}") };
    // The key the proxy checks (QCC_CLIENT_KEY, QCC_ACCESS_KEY or $QCC_HOME/access_key), else a
    // placeholder (a loopback proxy without a key takes any).
    let key = super::control::launch_key(home);
    let path = super::claude::write_env(&base, &key, super::claude::Credential::BearerOnly)?;
    println!("Claude Code now uses {base} (cluster '{cluster}'): {}", path.display());
    match super::control::serving(home) {
        Some((info, served)) if served == cluster && info.base_url() == base => {
            println!("a qcc proxy for '{cluster}' already runs there (pid {})", info.pid);
        }
        _ => {
            if !super::client::answers(&base) {
                eprintln!(
                    "qcc: warning: nothing answers at {base} yet: Claude Code would wait and fail until a proxy runs there"
                );
            }
            println!("start the proxy with: qcc proxy start -d --cluster {cluster} --host {host} --port {port}");
            println!("or, always there: qcc service install --cluster {cluster} --port {port}");
        }
    }
    Ok(())
}
