//! `qcc usage`: tokens and cost per day, by endpoint and model (the default), by model, by
//! client key or by Claude Code session. While a proxy runs it is asked (a request answered a
//! second ago is counted); otherwise the file it writes (`$QCC_HOME/usage.json`) is read.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::prices::{cache_hit_rate, usd, PriceTable};
use crate::store::usage::{Counts, UsageFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Endpoint,
    Model,
    Key,
    Session,
    Cluster,
}

impl By {
    pub fn parse(v: &str) -> Result<By> {
        Ok(match v {
            "endpoint" => By::Endpoint,
            "model" => By::Model,
            "key" => By::Key,
            "session" => By::Session,
            "cluster" => By::Cluster,
            other => return Err(Error::Usage(format!("--by {other}: endpoint, model, key, session or cluster"))),
        })
    }
}

/// The usage as the running proxy counts it, else as its file holds it.
struct Loaded {
    file: UsageFile,
    path: PathBuf,
    source: String,
}

pub fn usage(home: &Path, by: By, json_out: bool, days: usize) -> Result<()> {
    let path = home.join("usage.json");
    let loaded = match super::control::usage_live(home, days) {
        Some(file) => Loaded { file, path, source: "the running proxy".to_string() },
        None => Loaded {
            file: crate::store::usage::read_file(&path)
                .map_err(|problem| Error::BadFile { path: path.clone(), problem })?,
            source: path.display().to_string(),
            path,
        },
    };
    match by {
        By::Endpoint => by_endpoint(&loaded, json_out, days),
        By::Model => by_model(&loaded, json_out, days),
        By::Key => by_key(home, &loaded, json_out, days),
        By::Session => by_session(&loaded, json_out, days),
        By::Cluster => by_cluster(&loaded, json_out, days),
    }
}

fn prices(config: &Result<crate::store::config::ConfigFile>) -> Result<PriceTable> {
    Ok(match config {
        Ok(c) => c.prices()?,
        Err(_) => PriceTable::default(),
    })
}

/// A counts record as `--json` shows it: the counts, `cost_usd` (null: no price) and
/// `cache_hit_rate`.
fn counts_json(c: &Counts, cost: Option<f64>) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    v["cost_usd"] = json!(cost);
    v["cache_hit_rate"] = json!(cache_hit_rate(c));
    v
}

/// The number columns of a table row: requests, the four token counts, hit rate, cost.
fn number_cells(c: &Counts, cost: &str) -> String {
    format!(
        "{:>8} {:>12} {:>12} {:>12} {:>12} {:>6} {:>10}",
        c.requests,
        c.input_tokens,
        c.output_tokens,
        c.cache_creation_input_tokens,
        c.cache_read_input_tokens,
        hit(c),
        cost
    )
}

fn hit(c: &Counts) -> String {
    cache_hit_rate(c).map_or("-".to_string(), |r| format!("{:.0}", r * 100.0))
}

/// `--by model`: each model's counts per day, over all endpoints.
fn by_model(u: &Loaded, json_out: bool, days: usize) -> Result<()> {
    let prices = prices(&crate::store::config::ConfigFile::load_user())?;
    by_group(u, json_out, days, &prices, ("MODEL", 32), |_, model| model)
}

/// `--by cluster`: each cluster's counts per day. Usage is kept by endpoint id; an id is
/// counted for the cluster that has it in the config now (the first, should two share it), and
/// an endpoint since removed shows as "(removed)".
fn by_cluster(u: &Loaded, json_out: bool, days: usize) -> Result<()> {
    let config = crate::store::config::ConfigFile::load_user();
    let prices = prices(&config)?;
    let mut owner = std::collections::BTreeMap::<String, String>::new();
    if let Ok(c) = &config {
        for name in c.profile_names() {
            for ep in c.cluster(&name).map(|c| c.endpoints).unwrap_or_default() {
                owner.entry(ep.id).or_insert_with(|| name.clone());
            }
        }
    }
    by_group(u, json_out, days, &prices, ("CLUSTER", 24), |ep, _| owner.get(ep).map_or("(removed)", String::as_str))
}

/// Each day's counts and cost summed by the group `group_of` puts each (endpoint, model) in,
/// as `--json` (`{"source", "days": {DAY: {GROUP: counts}}}`) or a table headed `heading`.
fn by_group<'a>(
    u: &'a Loaded,
    json_out: bool,
    days: usize,
    prices: &PriceTable,
    (heading, width): (&str, usize),
    group_of: impl Fn(&'a str, &'a str) -> &'a str,
) -> Result<()> {
    // Per day: each group's counts, the cost of its priced models, and whether some model of it
    // has no price (then the cost is a floor, shown with a `+`, as `qcc usage` shows its totals).
    type Day<'a> = std::collections::BTreeMap<&'a str, (Counts, f64, bool)>;
    let mut out: Vec<(&String, Day)> = Vec::new();
    for (day, endpoints) in u.file.days.iter().rev().take(days.max(1)) {
        let mut groups = Day::new();
        for (ep, models) in endpoints {
            for (model, c) in models {
                let entry = groups.entry(group_of(ep, model)).or_insert((Counts::default(), 0.0, false));
                entry.0.add(c);
                match prices.cost(model, c) {
                    Some(x) => entry.1 += x,
                    None => entry.2 = true,
                }
            }
        }
        out.push((day, groups));
    }
    if json_out {
        let days: serde_json::Map<String, Value> = out
            .iter()
            .map(|(day, groups)| {
                let gs = groups
                    .iter()
                    .map(|(n, (c, x, unpriced))| {
                        let mut v = counts_json(c, Some(*x));
                        v["unpriced_models"] = json!(unpriced);
                        (n.to_string(), v)
                    })
                    .collect();
                ((*day).clone(), Value::Object(gs))
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"source": u.source, "days": days})).unwrap_or_default());
        return Ok(());
    }
    if out.is_empty() {
        println!("no usage recorded yet ({})", u.source);
        return Ok(());
    }
    println!(
        "{:<10} {heading:<width$} {:>8} {:>12} {:>12} {:>12} {:>12} {:>6} {:>10}",
        "DAY", "REQUESTS", "INPUT", "OUTPUT", "CACHE_WRITE", "CACHE_READ", "HIT%", "COST"
    );
    for (day, groups) in &out {
        for (n, (c, x, unpriced)) in groups {
            let cost = format!("{}{}", usd(*x), if *unpriced { "+" } else { "" });
            println!("{day:<10} {:<width$} {}", crate::mask::clean(n), number_cells(c, &cost));
        }
    }
    Ok(())
}

/// `--by key`: each client key's requests, tokens and cost per day (key names; never keys),
/// with today's limits beside them.
fn by_key(home: &Path, u: &Loaded, json_out: bool, days: usize) -> Result<()> {
    let keys = crate::store::keys::KeyFile::load(&crate::store::keys::path(home))?;
    let shown: Vec<_> = u.file.keys.iter().rev().take(days.max(1)).collect();
    if json_out {
        let days: serde_json::Map<String, Value> = shown
            .iter()
            .map(|(d, v)| {
                let named: serde_json::Map<String, Value> = v
                    .iter()
                    .map(|(name, k)| {
                        let mut v = serde_json::to_value(k).unwrap_or(Value::Null);
                        v["tokens"] = json!(k.tokens());
                        (name.clone(), v)
                    })
                    .collect();
                ((*d).clone(), Value::Object(named))
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"source": u.source, "keys": days})).unwrap_or_default());
        return Ok(());
    }
    if shown.is_empty() {
        println!("no key usage recorded yet ({}); keys are made with `qcc key add NAME`", u.source);
        return Ok(());
    }
    println!(
        "{:<10} {:<20} {:>8} {:>12} {:>12} {:>12} {:>10}  LIMITS",
        "DAY", "KEY", "REQUESTS", "TOKENS", "OUTPUT", "CACHE_READ", "COST"
    );
    for (day, list) in shown {
        for (name, k) in list {
            let limits = keys.get(name).map(super::keys::limits_text).unwrap_or_default();
            println!(
                "{day:<10} {:<20} {:>8} {:>12} {:>12} {:>12} {:>10}  {limits}",
                name,
                k.counts.requests,
                k.tokens(),
                k.counts.output_tokens,
                k.counts.cache_read_input_tokens,
                usd(k.cost_usd)
            );
        }
    }
    Ok(())
}

/// `--by endpoint` (the default): tokens per day, endpoint and model, the last `days` days,
/// newest first.
fn by_endpoint(u: &Loaded, json_out: bool, days: usize) -> Result<()> {
    let (path, source) = (&u.path, &u.source);
    let shown: Vec<(&String, _)> = u.file.days.iter().rev().take(days.max(1)).collect();
    // Endpoints are shown by name (the usage is kept by id, which survives a rename).
    let config = crate::store::config::ConfigFile::load_user();
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
    let prices = prices(&config)?;
    if json_out {
        // Each counts record gets its `cost_usd` (null: no price for the model) and
        // `cache_hit_rate`; each day its totals.
        let mut days_out = serde_json::Map::new();
        let mut totals = serde_json::Map::new();
        for (day, endpoints) in &shown {
            let mut total = Counts::default();
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
                    ms.insert(model.clone(), counts_json(c, x));
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
    for (day, endpoints) in shown {
        let mut total = Counts::default();
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
                println!("{day:<10} {ep:<16} {model:<28} {}", number_cells(c, &x.map_or("no price".to_string(), usd)));
            }
        }
        let cost = format!("{}{}", usd(cost), if unpriced { "+" } else { "" });
        println!("{day:<10} {:<16} {:<28} {}", "total", "", number_cells(&total, &cost));
    }
    Ok(())
}

/// `--by session`: tokens and cost per Claude Code session (its `x-claude-code-session-id`),
/// per day, the most expensive first.
fn by_session(u: &Loaded, json_out: bool, days: usize) -> Result<()> {
    let source = &u.source;
    let shown: Vec<_> = u.file.sessions.iter().rev().take(days.max(1)).collect();
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
