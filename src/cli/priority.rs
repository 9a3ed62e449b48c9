//! `qcc priority set|list|switch|history|policy`: the Python qcc's profile priorities
//! (`store/priority.rs`). A proxy started without `--cluster` serves the profile they point at
//! (`proxy_start.rs`).

use std::path::Path;

use serde_json::json;

use crate::error::{Error, Result};
use crate::store::config::ConfigFile;
use crate::store::priority::{PolicyChange, Priorities, LEVELS};

fn known(profile: &str) -> Result<()> {
    let config = ConfigFile::load_user()?;
    if !config.profile_names().iter().any(|n| n == profile) {
        return Err(Error::Invalid(format!("no profile or cluster '{profile}' (qcc list shows them)")));
    }
    Ok(())
}

pub fn set(home: &Path, profile: &str, level: &str) -> Result<()> {
    known(profile)?;
    let mut p = Priorities::edit(home)?;
    p.set(profile, level)?;
    p.save()?;
    drop(p);
    println!("'{profile}' is the {level} profile");
    apply_live(home);
    Ok(())
}

pub fn switch(home: &Path, profile: &str) -> Result<()> {
    known(profile)?;
    let mut p = Priorities::edit(home)?;
    p.switch(profile, "Manual switch", "manual")?;
    p.save()?;
    drop(p);
    println!("switched to '{profile}' (a proxy started without --cluster serves it)");
    apply_live(home);
    Ok(())
}

/// A proxy of this state dir that serves by the priorities takes an edit at once: reloaded
/// (its chain read again) while it still serves the same profile, restarted (checked first)
/// when the edit made another profile the one to serve. Said on stderr; a failure leaves the
/// edit made and the proxy as it was.
fn apply_live(home: &Path) {
    let Ok(Some(info)) = crate::store::pidfile::running(home) else { return };
    if !info.by_priority {
        return;
    }
    let now = Priorities::load(home).ok().and_then(|p| p.serving().map(str::to_string));
    let serves =
        ConfigFile::load_user().ok().is_some_and(|c| now.as_ref().is_some_and(|n| c.profile_names().contains(n)));
    if !serves || now == info.cluster {
        match super::control::reload(home) {
            Ok(summary) => eprintln!("applied to the running proxy (pid {}): {summary}", info.pid),
            Err(e) => eprintln!("qcc: the running proxy (pid {}) did not take the change: {e}", info.pid),
        }
        return;
    }
    let now = now.unwrap_or_default();
    eprintln!(
        "the running proxy (pid {}) serves '{}': restarting it to serve '{now}'",
        info.pid,
        info.cluster.as_deref().unwrap_or("?")
    );
    if let Err(e) = super::background::restart(home) {
        eprintln!("qcc: {e}");
    }
}

pub fn list(home: &Path, json_out: bool) -> Result<()> {
    let p = Priorities::load(home)?;
    if json_out {
        let rows: Vec<_> = LEVELS
            .iter()
            .map(|l| json!({"level": l, "profile": p.at(l), "active": p.at(l).is_some() && p.at(l) == p.active()}))
            .collect();
        let out = json!({"levels": rows, "active_profile": p.active(), "policy": p.policy()});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    for l in LEVELS {
        let profile = p.at(l);
        let mark = if profile.is_some() && profile == p.active() { "  (active)" } else { "" };
        println!("{l:<10} {}{mark}", crate::mask::clean(profile.unwrap_or("-")));
    }
    Ok(())
}

pub fn history(home: &Path, json_out: bool, n: usize) -> Result<()> {
    let p = Priorities::load(home)?;
    let h = p.history();
    let last = &h[h.len().saturating_sub(n)..];
    if json_out {
        println!("{}", serde_json::to_string_pretty(last).unwrap_or_default());
        return Ok(());
    }
    let s = |v: &serde_json::Value| crate::mask::clean(v.as_str().unwrap_or("-")).into_owned();
    for e in last {
        println!(
            "{}  {} -> {}  [{}] {}",
            s(&e["timestamp"]),
            s(&e["from"]),
            s(&e["to"]),
            s(&e["type"]),
            s(&e["reason"])
        );
    }
    Ok(())
}

pub fn policy(home: &Path, change: &PolicyChange) -> Result<()> {
    let mut p = Priorities::edit(home)?;
    let changed = *change != PolicyChange::default();
    if changed {
        p.set_policy(change);
        p.save()?;
    }
    println!("{}", serde_json::to_string_pretty(p.policy()).unwrap_or_default());
    if change.auto_recovery == Some(false) {
        // Kept in the file for the Python qcc; qcc itself always goes back (docs/routing.md).
        eprintln!(
            "note: auto_recovery is kept off in priority.json for the Python qcc; qcc itself always sends a \
             request to the first profile as soon as it answers again (its probe succeeded): a request is \
             never held on a worse profile while a better one answers"
        );
    }
    drop(p);
    if changed {
        apply_live(home);
    }
    Ok(())
}
