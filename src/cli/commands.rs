//! `qcc endpoint ...` and `qcc config list`: editing and showing the config file.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::mask::mask_key;
use crate::store::cluster::ClusterConfig;
use crate::store::config::{ConfigFile, NewEndpoint};
use crate::store::url::BaseUrl;

/// `qcc endpoint add`: `new` as parsed, a preset's URL, model map and name filling what was not
/// given; checked here before anything is written.
pub fn endpoint_add(home: &std::path::Path, cluster: &str, mut new: NewEndpoint, preset: Option<String>) -> Result<()> {
    let mut prices = None;
    if let Some(name) = preset {
        let p = crate::store::presets::find(home, &name)?;
        prices = p.prices.clone();
        if new.base_url.is_empty() {
            new.base_url = p.base_url.clone();
        }
        if new.model_map.is_empty() {
            new.model_map = p
                .model_map
                .iter()
                .map(|[pattern, model]| {
                    crate::store::models::ModelRule::parse(&format!("{pattern}={model}")).map_err(Error::Invalid)
                })
                .collect::<Result<_>>()?;
        }
        if new.name.is_none() {
            new.name = Some(p.name.clone());
        }
        if new.rules.add.is_empty() {
            new.rules.add = crate::store::rules::Rules::from_json(p.rules.as_ref(), "rules").map_err(Error::Invalid)?;
        }
        if let (Some(example), true) = (&p.needs_model, new.model_map.is_empty()) {
            new.model_map = vec![pick_model(&p.name, &new.base_url, &new.key, example)?];
        }
        if new.format.format.is_none() && p.format != "anthropic" {
            new.format.format = Some(p.format.clone());
        }
    }
    url_hints(&new.check()?, new.format.format.as_deref() == Some("openai"));
    let mut config = ConfigFile::edit_user()?;
    let created = !config.profile_names().iter().any(|n| n == cluster);
    let (id, name) = config.add_endpoint(cluster, &new)?;
    let priced = match &prices {
        Some(p) => config.add_missing_prices(p)?,
        None => 0,
    };
    // The first cluster becomes the default (as `qcc add` does for a profile), so that
    // `qcc proxy start`, `qcc env` and `qcc` alone serve it.
    let default = config.default_profile().is_none();
    if default {
        config.set_default(cluster)?;
    }
    config.save()?;
    println!("{id}");
    eprintln!("added endpoint '{name}' ({id}) to cluster '{cluster}'");
    if priced > 0 {
        eprintln!("the preset's prices of {priced} model(s) went into settings.prices");
    }
    if created {
        // On stderr: stdout stays the id alone. A typo (`wrok`) shows here.
        let note = if default { " (the default cluster)" } else { "" };
        eprintln!("created cluster '{cluster}'{note}");
    }
    apply_live(cluster);
    Ok(())
}

/// `qcc presets [--json]`: the vendors `endpoint add --preset` knows.
pub fn presets(home: &std::path::Path, json_out: bool) -> Result<()> {
    let list = crate::store::presets::all(home)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
        return Ok(());
    }
    println!("{:<14} {:<52} {:<44} {:<10} MODEL MAP", "NAME", "WHAT", "BASE URL", "FORMAT");
    for p in &list {
        let map: Vec<String> = p.model_map.iter().map(|[a, b]| format!("{a}={b}")).collect();
        let map = if map.is_empty() { "-".to_string() } else { map.join(", ") };
        println!("{:<14} {:<52} {:<44} {:<10} {map}", p.name, p.title, p.base_url, p.format);
        if !p.key_url.is_empty() {
            println!("{:<14} keys: {}", "", p.key_url);
        }
        if !p.note.is_empty() {
            println!("{:<14} note: {}", "", p.note);
        }
        if let Ok(rules) = crate::store::rules::Rules::from_json(p.rules.as_ref(), "rules") {
            if !rules.is_empty() {
                println!("{:<14} rules: {} (source: {})", "", rules.describe(), p.rules_source);
            }
        }
    }
    println!(
        "\nadd one: qcc endpoint add CLUSTER --preset NAME --key-file PATH   (keys: `qcc presets --json` says where)"
    );
    println!("yours: {} (the same shape; a name here replaces the built-in)", home.join("presets.json").display());
    Ok(())
}

/// A preset whose provider serves no model by Claude Code's names, added without `--model-map`:
/// on a terminal, a pick from the provider's `/models`; otherwise (or when it has none to show)
/// a refusal naming the flag and an example.
fn pick_model(preset: &str, base: &str, key: &str, example: &str) -> Result<crate::store::models::ModelRule> {
    let refuse = |why: &str| {
        Error::Invalid(format!(
            "preset '{preset}' needs its model named{why}: add --model-map 'claude-*=MODEL', \
             for example --model-map 'claude-*={example}'"
        ))
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !terminal {
        return Err(refuse(""));
    }
    let models = provider_models(base, key).map_err(|e| refuse(&format!(" ({base}/models: {e})")))?;
    if models.is_empty() {
        return Err(refuse(&format!(" ({base}/models lists none)")));
    }
    eprintln!("{base}/models offers:");
    for (i, m) in models.iter().enumerate() {
        eprintln!("  {:>3}  {}", i + 1, crate::mask::clean(m));
    }
    eprint!("Claude Code's requests go to which model? [1-{}] ", models.len());
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    let chosen = answer.trim().parse::<usize>().ok().and_then(|n| models.get(n.wrapping_sub(1)));
    let Some(model) = chosen else { return Err(refuse(" (nothing picked)")) };
    crate::store::models::ModelRule::parse(&format!("claude-*={model}")).map_err(Error::Invalid)
}

/// The model ids an OpenAI-compatible provider lists at `base/models` (at most 50).
fn provider_models(base: &str, key: &str) -> std::result::Result<Vec<String>, String> {
    let url = BaseUrl::parse(base)?;
    let tls = match url.scheme {
        crate::store::url::Scheme::Https => Some(crate::proxy::TlsConfigs::default().get(&[])?),
        crate::store::url::Scheme::Http => None,
    };
    let host = url.host();
    let request = format!(
        "GET {}/models HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
        url.path_prefix
    );
    let target =
        super::client::Target { host: &url.host, port: url.port, tls, timeout: std::time::Duration::from_secs(10) };
    let reply = super::client::send(&target, request.as_bytes(), 4 * 1024 * 1024)?;
    if reply.status != 200 {
        return Err(format!("HTTP {}", reply.status));
    }
    let v: Value = serde_json::from_slice(&reply.body).map_err(|e| format!("not JSON: {e}"))?;
    let list = v["data"].as_array().or(v["models"].as_array()).ok_or("no model list")?;
    Ok(list.iter().filter_map(|m| m["id"].as_str().or(m["name"].as_str())).take(50).map(str::to_string).collect())
}

/// Said about a base URL that is probably not what was meant: one ending in `/v1` (qcc appends
/// `/v1/messages` itself), and plain http to another machine (the key crosses the network in
/// clear text).
/// `openai`: the endpoint speaks Chat Completions (its URL is the base before
/// `/chat/completions`, often ending in /v1).
pub fn url_hints(url: &BaseUrl, openai: bool) {
    if openai && url.path_prefix.ends_with("/chat/completions") {
        eprintln!("qcc: hint: requests go to {url}/chat/completions; give the base URL without /chat/completions");
    } else if openai && url.path_prefix.ends_with("/v1/messages") {
        eprintln!(
            "qcc: hint: {url} is an Anthropic (Messages) path; an OpenAI-compatible endpoint's base usually ends \
             in /v1 (requests go to BASE/chat/completions), or drop --format openai"
        );
    } else if openai && !url.path_prefix.split('/').any(|p| p == "v1" || p.starts_with("v1") || p == "openai") {
        eprintln!(
            "qcc: hint: requests go to {url}/chat/completions; OpenAI-compatible bases usually end in /v1 \
             (like http://127.0.0.1:11434/v1)"
        );
    } else if !openai && url.path_prefix.ends_with("/v1") {
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
    let mut config = ConfigFile::edit_user()?;
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
    let mut config = ConfigFile::edit_user()?;
    let id = config.resolve(cluster, which)?;
    if let Some(url) = change.url.as_deref().and_then(|u| BaseUrl::parse(u).ok()) {
        let openai = match change.format.format.as_deref() {
            Some(f) => f == "openai",
            None => config
                .cluster(cluster)
                .ok()
                .and_then(|c| c.endpoints.into_iter().find(|e| e.id == id))
                .is_some_and(|e| e.format.is_openai()),
        };
        url_hints(&url, openai);
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

/// After an edit of `cluster`: a proxy serving it (started for it, or for a cluster whose
/// routes or fallbacks lead to it) re-reads it at once (health and queue of unchanged endpoints
/// kept), and the command says so in one line — on stderr, so that `id=$(qcc endpoint add ...)`
/// still captures the id alone. With no proxy for it, nothing.
pub(super) fn apply_live(cluster: &str) {
    let home = crate::store::fsutil::qcc_home();
    let Some((info, main)) = super::control::serving(&home) else { return };
    let leads_there = || {
        ConfigFile::load_user()
            .ok()
            .and_then(|f| crate::store::served::served(&f, &main, None).ok())
            .is_some_and(|s| s.clusters.iter().any(|c| c.name == cluster))
    };
    if main != cluster && !leads_there() {
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
                    "api_key": shown_key(&ep.api_key),
                    "pass_through": ep.passes_through(),
                    "priority": ep.priority,
                    "weight": ep.weight,
                    "enabled": ep.enabled,
                    "max_failures": ep.max_failures,
                    "timeout": ep.timeout_secs,
                    "model_map": crate::store::models::to_json(&ep.model_map),
                    "probe_model": ep.probe_model,
                    "format": ep.format.as_str(),
                    "caps": ep.caps.to_json(),
                    "rules": ep.rules.to_json(),
                    "learned_rules": ep.learned.to_json(),
                })
            })
            .collect(),
    )
}

fn print_table(cluster: &ClusterConfig) {
    println!(
        "{:<20} {:<10} {:>4} {:>6} {:<8} {:<9} {:<16} URL",
        "NAME", "ID", "PRIO", "WEIGHT", "ENABLED", "FORMAT", "KEY"
    );
    for ep in &cluster.endpoints {
        println!(
            "{:<20} {:<10} {:>4} {:>6} {:<8} {:<9} {:<16} {}",
            crate::mask::clean(&ep.name),
            crate::mask::clean(&ep.id),
            ep.priority,
            ep.weight,
            if ep.enabled { "yes" } else { "no" },
            ep.format.as_str(),
            shown_key(&ep.api_key),
            crate::mask::clean(&ep.url.to_string())
        );
        // What else shapes what it gets, under its line: its model map, caps, and what it is not
        // sent (by hand or preset, and learned from its refusals).
        if !ep.model_map.is_empty() {
            let map: Vec<String> = ep.model_map.iter().map(|r| format!("{}={}", r.pattern, r.model)).collect();
            println!("{:<20}   model map: {}", "", crate::mask::clean(&map.join(", ")));
        }
        if let Some(caps) = caps_line(&ep.caps) {
            println!("{:<20}   caps: {caps}", "");
        }
        for (what, rules) in [("rules", &ep.rules), ("learned", &ep.learned)] {
            if !rules.is_empty() {
                println!("{:<20}   {what}: {}", "", crate::mask::clean(&rules.describe()));
            }
        }
    }
}

/// An endpoint's key as listings show it: masked, or what a pass-through endpoint forwards.
fn shown_key(key: &str) -> String {
    match key.is_empty() {
        true => "(pass-through)".to_string(),
        false => mask_key(key),
    }
}

/// An endpoint's caps in words (`None`: it has none).
fn caps_line(caps: &crate::store::cluster::Caps) -> Option<String> {
    let parts: Vec<String> = [("rpm", caps.rpm), ("tpm", caps.tpm), ("concurrent", caps.concurrent.map(u64::from))]
        .into_iter()
        .filter_map(|(name, n)| n.map(|n| format!("{name} {n}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A cluster's fallback chain and routes, a line each (the plain listings).
fn print_chain(c: &ClusterConfig) {
    if !c.fallback.is_empty() {
        println!("fallback: {}", c.fallback.join(", then "));
    }
    for (n, r) in c.routes.iter().enumerate() {
        println!("route {}: {} -> {}", n + 1, r.describe(), r.to);
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
    let mut config = ConfigFile::edit_user()?;
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
        print_chain(c);
        print_table(c);
    }
    Ok(())
}

/// `qcc cluster set NAME [--retry-on CODES] [--strategy S] [--fallback C ...|--no-fallback]`:
/// stored in the cluster's profile and applied to a running proxy at once.
pub fn cluster_set(
    name: &str,
    retry_on: Option<&str>,
    strategy: Option<&str>,
    fallback: Option<&[String]>,
) -> Result<()> {
    use crate::store::cluster::Strategy;
    let retry = retry_on
        .map(|r| crate::store::cluster::RetryOn::parse(r).map_err(|e| Error::Invalid(format!("--retry-on: {e}"))))
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
    if retry.is_none() && strategy.is_none() && fallback.is_none() {
        return Err(Error::Usage("give --retry-on CODES, --strategy S and/or --fallback C (or --no-fallback)".into()));
    }
    let mut config = ConfigFile::edit_user()?;
    config.set_cluster(name, retry, strategy)?;
    if let Some(chain) = fallback {
        config.set_fallback(name, chain)?; // refused (nothing written) for an unknown cluster or a cycle
    }
    config.save()?;
    match fallback {
        Some([]) => println!("cluster '{name}' updated: no fallback"),
        Some(chain) => println!("cluster '{name}' updated: falls back to {}", chain.join(", then ")),
        None => println!("cluster '{name}' updated"),
    }
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
                "routes": c.routes.iter().map(|r| r.to_json()).collect::<Vec<_>>(), "fallback": c.fallback,
                "endpoints": endpoints_json(&c)}))
            .unwrap_or_default()
        );
        return Ok(());
    }
    let codes: Vec<String> = c.retry_on.codes().iter().map(u16::to_string).collect();
    println!("cluster '{name}'{}", if config.default_profile() == Some(name) { " (the default)" } else { "" });
    println!("strategy: {strategy}");
    println!("retry on: {}", codes.join(", "));
    print_chain(&c);
    println!();
    print_table(&c);
    Ok(())
}
