//! `qcc doctor`: one screen that answers "why doesn't Claude Code work?". Is a proxy running
//! (pid, port, cluster, uptime); do Claude Code's `settings.json` and this shell's
//! `ANTHROPIC_BASE_URL` point at it, or past it, or at something dead; does the config hold
//! together (every cluster the proxy serves, the routes and fallbacks that name a cluster that is
//! gone, what `priority.json` names); can each endpoint of every served cluster be reached and
//! does its key work (one tiny real request each, as `health test`); is the service installed
//! and active (not installed is a note); is `claude` installed. Each problem comes with the one
//! command that fixes it; the exit code is 0 only when all is well.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::config::ConfigFile;

/// The checks as they are made: printed as a screen, or kept for `--json`.
struct Report {
    checks: Vec<Value>,
    problems: usize,
    json: bool,
}

impl Report {
    fn ok(&mut self, what: &str, detail: String) {
        if !self.json {
            println!("  ok       {what}: {}", crate::mask::clean(&detail));
        }
        self.checks.push(json!({"check": what, "ok": true, "detail": detail}));
    }
    /// Worth knowing, nothing wrong (an uninstalled service while a proxy runs anyway, say).
    fn note(&mut self, what: &str, detail: String) {
        if !self.json {
            println!("  note     {what}: {}", crate::mask::clean(&detail));
        }
        self.checks.push(json!({"check": what, "ok": true, "note": true, "detail": detail}));
    }
    fn problem(&mut self, what: &str, detail: String, fix: String) {
        self.problems += 1;
        if !self.json {
            println!("  PROBLEM  {what}: {}", crate::mask::clean(&detail));
            println!("           fix: {fix}");
        }
        self.checks.push(json!({"check": what, "ok": false, "detail": detail, "fix": fix}));
    }
}

/// Where Claude Code is pointed (`settings.json`, this shell), against where the proxy runs.
fn check_pointer(r: &mut Report, what: &str, set: Option<String>, proxy: Option<&str>, fix_to: &str) {
    let Some(set) = set else {
        r.ok(what, "not set".into());
        return;
    };
    let shown = crate::mask::mask_url(&set);
    let same = proxy.is_some_and(|p| p.trim_end_matches('/') == set.trim_end_matches('/'));
    if same {
        r.ok(what, format!("{shown}: the running proxy"));
    } else if let (Some(p), true) = (proxy, super::client::answers(&set)) {
        // Claude Code goes past the running proxy: no failover, no limits, none of its endpoints.
        r.problem(
            what,
            format!("{shown}: Claude Code goes there, not to the running qcc proxy ({})", crate::mask::mask_url(p)),
            fix_to.to_string(),
        );
    } else if super::client::answers(&set) {
        r.ok(what, format!("{shown}: something answers there (not a qcc proxy of this machine)"));
    } else {
        r.problem(what, format!("{shown}: nothing answers there; Claude Code would wait and fail"), fix_to.to_string());
    }
}

/// `qcc doctor [--json]`.
pub fn run(home: &Path, json_out: bool) -> Result<()> {
    let mut r = Report { checks: Vec::new(), problems: 0, json: json_out };
    if !json_out {
        println!("qcc doctor");
    }
    let config = ConfigFile::load_user();
    let running = crate::store::pidfile::running(home)?;
    let cluster = running
        .as_ref()
        .and_then(|i| i.cluster.clone())
        .or_else(|| config.as_ref().ok().and_then(ConfigFile::implied_cluster));
    // The port the fixes name: the running proxy's, else where Claude Code's settings or this
    // shell point on this machine (a proxy started there is what they wait for).
    let loopback_port = |url: Option<String>| {
        let u = crate::store::url::BaseUrl::parse(url?.trim_end_matches('/')).ok()?;
        let local = u.host == "localhost" || u.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        local.then_some(u.port)
    };
    let port = running
        .as_ref()
        .map(|i| i.port)
        .or_else(|| loopback_port(super::claude::settings_base_url()))
        .or_else(|| loopback_port(std::env::var("ANTHROPIC_BASE_URL").ok().filter(|v| !v.is_empty())));
    let port_arg = port.filter(|p| *p != 7860).map(|p| format!(" --port {p}")).unwrap_or_default();
    let start_fix = match &cluster {
        Some(c) => format!(
            "qcc proxy start -d --cluster {c}{port_arg}   (or for good: qcc service install --cluster {c}{port_arg})"
        ),
        None => format!(
            "qcc endpoint add CLUSTER --url URL --key-file PATH, then qcc proxy start -d --cluster CLUSTER{port_arg}"
        ),
    };
    let proxy = match &running {
        Some(info) => {
            let uptime = super::control::uptime(home).map(|s| format!(", up {s}s")).unwrap_or_default();
            let c = info.cluster.as_deref().map(|c| format!(", cluster '{c}'")).unwrap_or_default();
            r.ok("proxy", format!("running: pid {}, {}{c}{uptime}", info.pid, info.base_url()));
            Some(info.base_url())
        }
        None => {
            r.problem("proxy", format!("no qcc proxy runs for {}", home.display()), start_fix.clone());
            None
        }
    };
    let point_fix = match (&proxy, &cluster) {
        (Some(_), Some(c)) => format!("qcc proxy use {c}{port_arg}   (points it at the running proxy)"),
        _ => format!("start the proxy it points at: {start_fix}"),
    };
    check_pointer(&mut r, "settings.json", super::claude::settings_base_url(), proxy.as_deref(), &point_fix);
    let shell_fix = match &cluster {
        Some(c) => format!("eval \"$(qcc env --cluster {c}{port_arg})\""),
        None => "unset ANTHROPIC_BASE_URL".into(),
    };
    check_pointer(
        &mut r,
        "this shell's ANTHROPIC_BASE_URL",
        std::env::var("ANTHROPIC_BASE_URL").ok().filter(|v| !v.is_empty()),
        proxy.as_deref(),
        &shell_fix,
    );
    match (&config, &cluster) {
        (Err(e), _) => r.problem("config", e.to_string(), "fix the file named above (it is never overwritten)".into()),
        (Ok(_), None) => r.problem(
            "endpoints",
            "no cluster to check (no proxy runs and no default profile)".into(),
            "qcc endpoint add CLUSTER --url URL --key-file PATH".into(),
        ),
        (Ok(cfg), Some(c)) => {
            // Every cluster the proxy serves (its routes' and fallbacks', or the profile
            // priorities'), and every reference the config has to one that is gone.
            let priorities = crate::store::priority::Priorities::load(home).ok();
            let chain = running
                .as_ref()
                .filter(|i| i.by_priority)
                .and(priorities.as_ref())
                .map(|p| p.chain_after(c, &cfg.profile_names()));
            let served = crate::store::served::served(cfg, c, chain.as_deref());
            if let Some(p) = &priorities {
                for level in crate::store::priority::LEVELS {
                    if let Some(name) = p.at(level).filter(|n| !cfg.profile_names().iter().any(|x| x == n)) {
                        r.problem(
                            "priority.json",
                            format!("its {level} profile '{name}' is not in the config"),
                            format!("qcc priority set PROFILE {level}   (a profile of: qcc list)"),
                        );
                    }
                }
            }
            let clusters = match served {
                Err(e) => {
                    r.problem("clusters", e.to_string(), format!("qcc route list {c}; qcc cluster show {c}"));
                    Vec::new()
                }
                Ok(s) => {
                    for why in &s.skipped {
                        r.problem(
                            "clusters",
                            why.clone(),
                            format!("qcc route list {c}; qcc cluster show NAME (remove the reference)"),
                        );
                    }
                    s.clusters
                }
            };
            for cl in clusters {
                let c = cl.name.as_str();
                {
                    let mut eps = cl.endpoints.clone();
                    for ep in &mut eps {
                        ep.timeout_secs = ep.timeout_secs.min(10); // a doctor does not wait 30 s
                    }
                    let verdicts = super::probe::probe_all(&eps, super::probe::DEFAULT_PROBE_MODEL);
                    for (ep, v) in eps.iter().zip(&verdicts) {
                        let what = format!("endpoint {} ({})", ep.name, crate::mask::mask_url(&ep.url.to_string()));
                        if v.ok() {
                            r.ok(&what, format!("answered in {} ms", v.latency_ms));
                        } else {
                            let fix = match v.status {
                            _ if super::probe::model_unknown(v) => format!(
                                "qcc endpoint set {c} {} --model-map 'claude-*=MODEL'   (it does not know the model; tried {})",
                                ep.name,
                                crate::mask::mask_url(&super::probe::probe_url(ep))
                            ),
                            Some(401 | 403) => format!("qcc endpoint set {c} {} --key-file PATH   (the key was refused)", ep.name),
                            Some(_) => format!("qcc health test {c} {}   (the endpoint answered an error; check its URL and model)", ep.name),
                            None => format!("qcc endpoint set {c} {} --url URL   (it cannot be reached)", ep.name),
                        };
                            r.problem(&what, v.reason.clone(), fix);
                        }
                    }
                }
            }
        }
    }
    match super::service::state(None) {
        Ok((true, true, said)) => r.ok("service", said),
        Ok((true, false, said)) => {
            r.problem("service", said, "qcc service install   (again: writes and enables it)".into())
        }
        // Not installed: a way to run the proxy, not a fault (it may run by hand, or not be needed).
        Ok((false, _, said)) => r.note(
            "service",
            format!(
                "{said}{}; to keep a proxy running: qcc service install{}",
                if running.is_some() { " (a proxy runs anyway)" } else { "" },
                cluster.as_deref().map(|c| format!(" --cluster {c}")).unwrap_or_default()
            ),
        ),
        Err(e) => r.problem("service", e.to_string(), "qcc service status".into()),
    }
    if super::claude::installed() {
        r.ok("claude", "on PATH".into());
    } else {
        r.problem("claude", "not on PATH".into(), "npm install -g @anthropic-ai/claude-code".into());
    }
    if json_out {
        let doc = json!({"ok": r.problems == 0, "problems": r.problems, "checks": r.checks});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if r.problems == 0 {
        println!("all is well");
    } else {
        println!("{} problem(s)", r.problems);
    }
    if r.problems == 0 {
        Ok(())
    } else {
        Err(Error::Silent(1))
    }
}
