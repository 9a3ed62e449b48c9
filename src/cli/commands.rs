//! `qcc endpoint ...` and `qcc config list`: editing and showing the config file.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::mask::mask_key;
use crate::store::config::{ClusterConfig, ConfigFile, NewEndpoint};
use crate::store::url::BaseUrl;

/// `qcc endpoint add`: `new` as parsed; checked here before anything is written.
pub fn endpoint_add(cluster: &str, new: NewEndpoint) -> Result<()> {
    let parsed = BaseUrl::parse(&new.base_url).map_err(Error::Invalid)?;
    url_hints(&parsed);
    if new.key.trim().is_empty() {
        return Err(Error::Invalid("--key must not be empty".into()));
    }
    if new.timeout == 0 || new.max_failures == 0 {
        return Err(Error::Invalid("--timeout and --max-failures must be at least 1".into()));
    }
    if new.timeout > crate::store::config::MAX_TIMEOUT_SECS {
        return Err(Error::Invalid(format!(
            "--timeout {}: at most {} seconds",
            new.timeout,
            crate::store::config::MAX_TIMEOUT_SECS
        )));
    }
    if let Some(ca) = &new.ca_file {
        if !ca.is_file() {
            return Err(Error::Invalid(format!("--ca-file {}: no such file", ca.display())));
        }
    }
    let mut config = ConfigFile::load_user()?;
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
                    "model_map": crate::store::models::to_json(&ep.model_map),
                    "probe_model": ep.probe_model,
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
    let config = ConfigFile::load_user();
    let names: std::collections::BTreeMap<String, String> = config
        .as_ref()
        .map(|c| {
            c.profile_names()
                .iter()
                .filter_map(|n| c.cluster(n).ok())
                .flat_map(|c| c.endpoints)
                .map(|e| (e.id, e.name))
                .collect()
        })
        .unwrap_or_default();
    let prices = match &config {
        Ok(c) => c.prices()?,
        Err(_) => crate::store::prices::PriceTable::default(),
    };
    use crate::store::prices::{cache_hit_rate, usd};
    if json_out {
        // Each counts record gets its `cost_usd` (null: no price for the model) and
        // `cache_hit_rate`; each day its totals.
        let mut days_out = serde_json::Map::new();
        let mut totals = serde_json::Map::new();
        for (day, endpoints) in &shown {
            let mut total = crate::store::usage::Counts::default();
            let mut cost = 0.0;
            let mut unpriced = false;
            let mut eps = serde_json::Map::new();
            for (ep, models) in endpoints.iter() {
                let mut ms = serde_json::Map::new();
                for (model, c) in models {
                    total.add(c);
                    let x = prices.cost(model, c);
                    cost += x.unwrap_or(0.0);
                    unpriced |= x.is_none();
                    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                    v["cost_usd"] = json!(x);
                    v["cache_hit_rate"] = json!(cache_hit_rate(c));
                    ms.insert(model.clone(), v);
                }
                eps.insert(ep.clone(), Value::Object(ms));
            }
            let mut t = serde_json::to_value(total).unwrap_or(Value::Null);
            t["cost_usd"] = json!(cost);
            t["unpriced_models"] = json!(unpriced);
            t["cache_hit_rate"] = json!(cache_hit_rate(&total));
            days_out.insert((*day).clone(), Value::Object(eps));
            totals.insert((*day).clone(), t);
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"file": path.display().to_string(), "source": source,
                                                  "days": days_out, "totals": totals, "names": names}))
            .unwrap_or_default()
        );
        return Ok(());
    }
    if shown.is_empty() {
        println!("no usage recorded yet ({source})");
        return Ok(());
    }
    println!(
        "{:<10} {:<16} {:<28} {:>8} {:>12} {:>12} {:>12} {:>12} {:>6} {:>10}",
        "DAY", "ENDPOINT", "MODEL", "REQUESTS", "INPUT", "OUTPUT", "CACHE_WRITE", "CACHE_READ", "HIT%", "COST"
    );
    let hit =
        |c: &crate::store::usage::Counts| cache_hit_rate(c).map_or("-".to_string(), |r| format!("{:.0}", r * 100.0));
    for (day, endpoints) in shown {
        let mut total = crate::store::usage::Counts::default();
        let (mut cost, mut unpriced) = (0.0, false);
        for (ep, models) in endpoints {
            // Model names are the upstream's: shown with control characters escaped.
            let ep = crate::mask::clean(names.get(ep).unwrap_or(ep)).into_owned();
            for (model, c) in models {
                let x = prices.cost(model, c);
                cost += x.unwrap_or(0.0);
                unpriced |= x.is_none();
                let model = crate::mask::clean(model);
                total.add(c);
                println!(
                    "{day:<10} {ep:<16} {model:<28} {:>8} {:>12} {:>12} {:>12} {:>12} {:>6} {:>10}",
                    c.requests,
                    c.input_tokens,
                    c.output_tokens,
                    c.cache_creation_input_tokens,
                    c.cache_read_input_tokens,
                    hit(c),
                    x.map_or("no price".to_string(), usd)
                );
            }
        }
        println!(
            "{day:<10} {:<16} {:<28} {:>8} {:>12} {:>12} {:>12} {:>12} {:>6} {:>10}",
            "total",
            "",
            total.requests,
            total.input_tokens,
            total.output_tokens,
            total.cache_creation_input_tokens,
            total.cache_read_input_tokens,
            hit(&total),
            format!("{}{}", usd(cost), if unpriced { "+" } else { "" })
        );
    }
    Ok(())
}

/// `qcc cluster set NAME [--retry-on CODES] [--strategy S]`: stored in the cluster's profile and
/// applied to a running proxy at once.
pub fn cluster_set(name: &str, retry_on: Option<&str>, strategy: Option<&str>) -> Result<()> {
    use crate::policy::balancer::Strategy;
    let retry = retry_on
        .map(|r| crate::policy::retry::RetryOn::parse(r).map_err(|e| Error::Invalid(format!("--retry-on: {e}"))))
        .transpose()?;
    let strategy = strategy
        .map(|s| {
            Strategy::parse(s).ok_or_else(|| {
                Error::Invalid(format!(
                    "--strategy {s}: unknown (one of priority_failover, weighted, round_robin, random, least_connections)"
                ))
            })
        })
        .transpose()?;
    if retry.is_none() && strategy.is_none() {
        return Err(Error::Usage("give --retry-on CODES and/or --strategy S".into()));
    }
    let mut config = ConfigFile::load_user()?;
    config.set_cluster(name, retry, strategy)?;
    config.save()?;
    println!("cluster '{name}' updated");
    apply_live(name);
    Ok(())
}

/// `qcc cluster show NAME [--json]`: the cluster's settings and endpoints.
pub fn cluster_show(name: &str, json_out: bool) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let c = config.cluster(name)?;
    let strategy = c.strategy.map_or("priority_failover (default)", |s| s.as_str());
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"name": c.name, "default": config.default_profile() == Some(name),
                "strategy": c.strategy.map(|s| s.as_str()), "retry_on": c.retry_on.codes(),
                "endpoints": endpoints_json(&c)}))
            .unwrap_or_default()
        );
        return Ok(());
    }
    let codes: Vec<String> = c.retry_on.codes().iter().map(u16::to_string).collect();
    println!("cluster '{name}'{}", if config.default_profile() == Some(name) { " (the default)" } else { "" });
    println!("strategy: {strategy}");
    println!("retry on: {}", codes.join(", "));
    println!();
    print_table(&c);
    Ok(())
}

/// `qcc usage --by session`: tokens and cost per Claude Code session (its
/// `x-claude-code-session-id`), per day, the most expensive first; live while a proxy runs.
pub fn usage_by_session(home: &std::path::Path, json_out: bool, days: usize) -> Result<()> {
    let path = home.join("usage.json");
    let (sessions, source) = match super::control::sessions_live(home, days) {
        Some(s) => (s, "the running proxy".to_string()),
        None => (
            crate::store::usage::read_all(&path).map_err(|problem| Error::BadFile { path: path.clone(), problem })?.1,
            path.display().to_string(),
        ),
    };
    let shown: Vec<_> = sessions.iter().rev().take(days.max(1)).collect();
    if json_out {
        let days: serde_json::Map<String, Value> =
            shown.iter().map(|(d, v)| ((*d).clone(), serde_json::to_value(v).unwrap_or(Value::Null))).collect();
        println!("{}", serde_json::to_string_pretty(&json!({"source": source, "sessions": days})).unwrap_or_default());
        return Ok(());
    }
    if shown.is_empty() {
        println!("no session usage recorded yet ({source})");
        return Ok(());
    }
    println!(
        "{:<10} {:<38} {:>8} {:>12} {:>12} {:>12} {:>10}",
        "DAY", "SESSION", "REQUESTS", "INPUT", "OUTPUT", "CACHE_READ", "COST"
    );
    for (day, list) in shown {
        let mut rows: Vec<_> = list.iter().collect();
        rows.sort_by(|a, b| {
            b.1.cost_usd.total_cmp(&a.1.cost_usd).then(b.1.counts.output_tokens.cmp(&a.1.counts.output_tokens))
        });
        for (id, s) in rows {
            let c = &s.counts;
            println!(
                "{day:<10} {:<38} {:>8} {:>12} {:>12} {:>12} {:>10}",
                crate::mask::clean(crate::mask::clip(id, 38)),
                c.requests,
                c.input_tokens + c.cache_creation_input_tokens,
                c.output_tokens,
                c.cache_read_input_tokens,
                crate::store::prices::usd(s.cost_usd)
            );
        }
    }
    Ok(())
}
