//! `qcc key add|list|set|revoke`: named client keys (`store/keys.rs`). A new key is printed once,
//! alone on stdout (so `KEY=$(qcc key add bob)` works); everything else goes to stderr. A running
//! proxy sees each change by itself (it watches the file); each command returns once it has
//! (`control::keys_taken`), so a script's next request meets the change.

use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::keys::{self, KeyChange, KeyEntry, KeyFile};

fn today() -> i64 {
    crate::store::timefmt::day_number(SystemTime::now())
}

pub fn add(home: &Path, name: &str, change: &KeyChange) -> Result<()> {
    check_cluster(change)?;
    let path = keys::path(home);
    let (mut file, _lock) = KeyFile::edit(&path)?;
    let key = file.add(name, change, SystemTime::now())?;
    file.save(&path)?;
    let want = file.get(name).map(entry_row);
    drop(_lock);
    applied(home, name, want);
    println!("{key}");
    let entry = file.get(name).map(limits_text).unwrap_or_default();
    eprintln!("key '{name}' added ({entry}); this is the only time it is shown.");
    eprintln!("Clients send it as `Authorization: Bearer` or x-api-key, e.g. ANTHROPIC_AUTH_TOKEN={}…", &key[..8]);
    Ok(())
}

pub fn set(home: &Path, name: &str, change: &KeyChange) -> Result<()> {
    check_cluster(change)?;
    let path = keys::path(home);
    let (mut file, _lock) = KeyFile::edit(&path)?;
    file.set(name, change)?;
    file.save(&path)?;
    let want = file.get(name).map(entry_row);
    drop(_lock);
    applied(home, name, want);
    eprintln!("key '{name}': {}", file.get(name).map(limits_text).unwrap_or_default());
    Ok(())
}

pub fn revoke(home: &Path, name: &str) -> Result<()> {
    let path = keys::path(home);
    let (mut file, _lock) = KeyFile::edit(&path)?;
    if file.revoke(name, SystemTime::now())? {
        file.save(&path)?;
        let want = file.get(name).map(entry_row);
        drop(_lock);
        applied(home, name, want);
        eprintln!("key '{name}' revoked: a running proxy refuses it now");
    } else {
        eprintln!("key '{name}' was already revoked");
    }
    Ok(())
}

/// What a running proxy's status says of a key, as far as an edit decides it.
fn entry_row(k: &KeyEntry) -> Value {
    json!({"status": k.status(today()), "limits": k.limits, "cluster": k.cluster, "expires": k.expires})
}

/// Wait until a running proxy has key `name` as `want` says (bounded); a proxy that has not
/// by then is said on stderr (it takes the change within a second by itself).
fn applied(home: &Path, name: &str, want: Option<Value>) {
    let Some(want) = want else { return };
    let taken = super::control::keys_taken(home, |rows| {
        rows.iter().any(|r| {
            r["name"] == name && ["status", "limits", "cluster", "expires"].iter().all(|f| r.get(*f) == want.get(*f))
        })
    });
    if !taken {
        eprintln!("qcc: note: the running proxy has not taken the change yet (it will within a second)");
    }
}

pub fn list(home: &Path, json_out: bool) -> Result<()> {
    let path = keys::path(home);
    let file = KeyFile::load(&path)?;
    if json_out {
        let list: Vec<Value> = file.keys.iter().map(entry_json).collect();
        let out = json!({"file": path.display().to_string(), "keys": list});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    if file.keys.is_empty() {
        println!("no client keys yet ({}): make one with `qcc key add NAME`", path.display());
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:<8} {:<11} {:<12} {:<10} LIMITS",
        "NAME", "KEY", "STATUS", "CREATED", "EXPIRES", "CLUSTER"
    );
    let today = today();
    for k in &file.keys {
        println!(
            "{:<20} {:<10} {:<8} {:<11} {:<12} {:<10} {}",
            k.name,
            format!("{}…", k.prefix),
            k.status(today),
            k.created_at.get(..10).unwrap_or("-"),
            k.expires.as_deref().unwrap_or("-"),
            k.cluster.as_deref().unwrap_or("any"),
            limits_text(k)
        );
    }
    Ok(())
}

/// A key as `key list --json` shows it: everything but its hash (and never the key).
pub fn entry_json(k: &KeyEntry) -> Value {
    let mut v = serde_json::to_value(k).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("sha256");
        o.insert("status".into(), json!(k.status(today())));
    }
    v
}

/// `2,000,000 tokens/day, $5.00/day, 30 rpm, 4 at once, admin` (or `no limits`).
pub fn limits_text(k: &KeyEntry) -> String {
    let l = &k.limits;
    let mut parts = Vec::new();
    if let Some(n) = l.daily_tokens {
        parts.push(format!("{n} tokens/day"));
    }
    if let Some(x) = l.daily_usd {
        parts.push(format!("${x:.2}/day"));
    }
    if let Some(n) = l.rpm {
        parts.push(format!("{n} rpm"));
    }
    if let Some(n) = l.concurrent {
        parts.push(format!("{n} at once"));
    }
    if parts.is_empty() {
        parts.push("no limits".into());
    }
    if k.admin {
        parts.push("admin".into());
    }
    parts.join(", ")
}

/// A key pinned to a cluster must name one the config has.
fn check_cluster(change: &KeyChange) -> Result<()> {
    let Some(Some(name)) = &change.cluster else { return Ok(()) };
    let config = crate::store::config::ConfigFile::load_user()?;
    if !config.profile_names().iter().any(|n| n == name) {
        return Err(Error::Invalid(format!("--cluster {name}: no such cluster (see `qcc config list`)")));
    }
    Ok(())
}
