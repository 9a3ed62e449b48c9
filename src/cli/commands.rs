//! `qcc endpoint ...` and `qcc config list`: editing and showing the config file.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::mask::mask_key;
use crate::store::config::{ClusterConfig, ConfigFile, NewEndpoint};
use crate::store::url::BaseUrl;

#[allow(clippy::too_many_arguments)]
pub fn endpoint_add(
    cluster: &str,
    url: &str,
    key: &str,
    priority: u32,
    weight: u32,
    timeout: u64,
    max_failures: u32,
    ca_file: Option<std::path::PathBuf>,
    name: Option<String>,
) -> Result<()> {
    let parsed = BaseUrl::parse(url).map_err(Error::Invalid)?;
    url_hints(&parsed);
    if key.trim().is_empty() {
        return Err(Error::Invalid("--key must not be empty".into()));
    }
    if timeout == 0 || max_failures == 0 {
        return Err(Error::Invalid("--timeout and --max-failures must be at least 1".into()));
    }
    if timeout > crate::store::config::MAX_TIMEOUT_SECS {
        return Err(Error::Invalid(format!(
            "--timeout {timeout}: at most {} seconds",
            crate::store::config::MAX_TIMEOUT_SECS
        )));
    }
    if let Some(ca) = &ca_file {
        if !ca.is_file() {
            return Err(Error::Invalid(format!("--ca-file {}: no such file", ca.display())));
        }
    }
    let mut config = ConfigFile::load_user()?;
    let new = NewEndpoint {
        base_url: url.trim_end_matches('/').to_string(),
        key: key.to_string(),
        priority,
        weight,
        timeout,
        max_failures,
        ca_file,
        name,
    };
    let created = !config.profile_names().iter().any(|n| n == cluster);
    let (id, name) = config.add_endpoint(cluster, &new)?;
    // The first cluster becomes the default (as `qcc add` does for a profile), so that
    // `qcc proxy start`, `qcc env` and `qcc` alone serve it.
    let default = config.default_profile().is_none();
    if default {
        config.set_default(cluster)?;
    }
    config.save()?;
    println!("{id}");
    eprintln!("added endpoint '{name}' ({id}) to cluster '{cluster}'");
    if created {
        // On stderr: stdout stays the id alone. A typo (`wrok`) shows here.
        let note = if default { " (the default cluster)" } else { "" };
        eprintln!("created cluster '{cluster}'{note}");
    }
    apply_live(cluster);
    Ok(())
}

/// Said about a base URL that is probably not what was meant: one ending in `/v1` (qcc appends
/// `/v1/messages` itself), and plain http to another machine (the key crosses the network in
/// clear text).
pub fn url_hints(url: &BaseUrl) {
    if url.path_prefix.ends_with("/v1") {
        eprintln!(
            "qcc: hint: the base URL ends in /v1, and requests go to {}/v1/messages; \
             without the /v1 if the API lives at .../v1/messages",
            url
        );
    }
    let local = url.host == "localhost" || url.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if url.scheme == crate::store::url::Scheme::Http && !local {
        eprintln!("qcc: warning: http:// to {} sends the API key over the network unencrypted; use https://", url.host);
    }
}

pub fn endpoint_remove(cluster: &str, which: &str) -> Result<()> {
    let mut config = ConfigFile::load_user()?;
    let id = config.resolve(cluster, which)?;
    let label = label_of(&config, cluster, &id);
    config.remove_endpoint(cluster, &id)?;
    config.save()?;
    println!("removed endpoint {label} from cluster '{cluster}'");
    apply_live(cluster);
    Ok(())
}

/// `qcc endpoint enable|disable|set`.
pub fn endpoint_edit(cluster: &str, which: &str, change: &crate::store::profiles::EndpointChange) -> Result<()> {
    let mut config = ConfigFile::load_user()?;
    let id = config.resolve(cluster, which)?;
    if let Some(url) = change.url.as_deref().and_then(|u| BaseUrl::parse(u).ok()) {
        url_hints(&url);
    }
    config.update_endpoint(cluster, &id, change)?;
    config.save()?;
    let label = label_of(&config, cluster, &id);
    let what = match change.enabled {
        Some(true) => "enabled".to_string(),
        Some(false) => "disabled".to_string(),
        None => "updated".to_string(),
    };
    println!("endpoint {label} of cluster '{cluster}' {what}");
    apply_live(cluster);
    Ok(())
}

/// After an edit of `cluster`: a proxy serving it re-reads it at once (health and queue of
/// unchanged endpoints kept), and the command says so in one line — on stderr, so that
/// `id=$(qcc endpoint add ...)` still captures the id alone. With no proxy for it, nothing.
fn apply_live(cluster: &str) {
    let home = crate::store::fsutil::qcc_home();
    let Some((info, served)) = super::control::serving(&home) else { return };
    if served != cluster {
        return;
    }
    match super::control::reload(&home) {
        Ok(summary) => eprintln!("applied to the running proxy (pid {}): {summary}", info.pid),
        Err(e) => eprintln!("qcc: the running proxy (pid {}) did not take the change: {e}", info.pid),
    }
}

/// `name (id)` of endpoint `id` as the config has it now.
fn label_of(config: &ConfigFile, cluster: &str, id: &str) -> String {
    config
        .cluster(cluster)
        .ok()
        .and_then(|c| c.endpoints.into_iter().find(|e| e.id == id))
        .map_or_else(|| id.to_string(), |e| crate::mask::clean(&e.label()).into_owned())
}

fn endpoints_json(cluster: &ClusterConfig) -> Value {
    Value::Array(
        cluster
            .endpoints
            .iter()
            .map(|ep| {
                json!({
                    "name": ep.name,
                    "id": ep.id,
                    "base_url": ep.url.to_string(),
                    "api_key": mask_key(&ep.api_key),
                    "priority": ep.priority,
                    "weight": ep.weight,
                    "enabled": ep.enabled,
                    "max_failures": ep.max_failures,
                    "timeout": ep.timeout_secs,
                })
            })
            .collect(),
    )
}

fn print_table(cluster: &ClusterConfig) {
    println!("{:<20} {:<10} {:>4} {:>6} {:<8} {:<16} URL", "NAME", "ID", "PRIO", "WEIGHT", "ENABLED", "KEY");
    for ep in &cluster.endpoints {
        println!(
            "{:<20} {:<10} {:>4} {:>6} {:<8} {:<16} {}",
            crate::mask::clean(&ep.name),
            crate::mask::clean(&ep.id),
            ep.priority,
            ep.weight,
            if ep.enabled { "yes" } else { "no" },
            mask_key(&ep.api_key),
            crate::mask::clean(&ep.url.to_string())
        );
    }
}

pub fn endpoint_list(cluster: &str, json_out: bool) -> Result<()> {
    let c = ConfigFile::load_user()?.cluster(cluster)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&endpoints_json(&c)).unwrap_or_default());
    } else {
        print_table(&c);
    }
    Ok(())
}

/// `qcc default NAME`: set `settings.default_profile` (the profile must exist).
pub fn set_default(name: &str) -> Result<()> {
    let mut config = ConfigFile::load_user()?;
    config.set_default(name)?;
    config.save()?;
    println!("default profile: {name}");
    Ok(())
}

pub fn config_list(json_out: bool) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let default = config.default_profile().map(str::to_string);
    let mut profiles = Vec::new();
    for name in config.profile_names() {
        let cluster = config.cluster(&name)?;
        profiles.push((name, cluster));
    }
    if json_out {
        let list: Vec<Value> = profiles
            .iter()
            .map(|(name, c)| json!({"name": name, "default": Some(name) == default.as_ref(), "endpoints": endpoints_json(c)}))
            .collect();
        let out = json!({"config": config.path().display().to_string(), "default_profile": default, "profiles": list});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    println!("config: {}", config.path().display());
    if profiles.is_empty() {
        println!("no profiles yet: add one with `qcc endpoint add CLUSTER --url URL --key KEY`");
    }
    for (name, c) in &profiles {
        let mark = if Some(name) == default.as_ref() { " (default)" } else { "" };
        println!("\n{name}{mark}: {} endpoint(s)", c.endpoints.len());
        print_table(c);
    }
    Ok(())
}

/// `qcc usage`: tokens per day, endpoint and model, the last `days` days, newest first. While a
/// proxy runs it is asked (a request answered a second ago is counted); otherwise the file it
/// writes is read.
pub fn usage(home: &std::path::Path, json_out: bool, days: usize) -> Result<()> {
    let path = home.join("usage.json");
    let (all, source) = match super::control::usage_live(home, days) {
        Some(live) => (live, "the running proxy".to_string()),
        None => (
            crate::store::usage::read(&path).map_err(|problem| Error::BadFile { path: path.clone(), problem })?,
            path.display().to_string(),
        ),
    };
    let shown: Vec<(&String, _)> = all.iter().rev().take(days.max(1)).collect();
    // Endpoints are shown by name (the usage is kept by id, which survives a rename).
    let names: std::collections::BTreeMap<String, String> = ConfigFile::load_user()
        .map(|c| {
            c.profile_names()
                .iter()
                .filter_map(|n| c.cluster(n).ok())
                .flat_map(|c| c.endpoints)
                .map(|e| (e.id, e.name))
                .collect()
        })
        .unwrap_or_default();
    if json_out {
        let days: serde_json::Map<String, Value> =
            shown.iter().map(|(d, v)| ((*d).clone(), serde_json::to_value(v).unwrap_or(Value::Null))).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"file": path.display().to_string(), "source": source,
                                                  "days": days, "names": names}))
            .unwrap_or_default()
        );
        return Ok(());
    }
    if shown.is_empty() {
        println!("no usage recorded yet ({source})");
        return Ok(());
    }
    println!(
        "{:<10} {:<10} {:<28} {:>8} {:>12} {:>12} {:>12} {:>12}",
        "DAY", "ENDPOINT", "MODEL", "REQUESTS", "INPUT", "OUTPUT", "CACHE_WRITE", "CACHE_READ"
    );
    for (day, endpoints) in shown {
        let mut total = crate::store::usage::Counts::default();
        for (ep, models) in endpoints {
            // Model names are the upstream's: shown with control characters escaped.
            let ep = crate::mask::clean(names.get(ep).unwrap_or(ep)).into_owned();
            for (model, c) in models {
                let model = crate::mask::clean(model);
                total.add(c);
                println!(
                    "{day:<10} {ep:<10} {model:<28} {:>8} {:>12} {:>12} {:>12} {:>12}",
                    c.requests,
                    c.input_tokens,
                    c.output_tokens,
                    c.cache_creation_input_tokens,
                    c.cache_read_input_tokens
                );
            }
        }
        println!(
            "{day:<10} {:<10} {:<28} {:>8} {:>12} {:>12} {:>12} {:>12}",
            "total",
            "",
            total.requests,
            total.input_tokens,
            total.output_tokens,
            total.cache_creation_input_tokens,
            total.cache_read_input_tokens
        );
    }
    Ok(())
}
