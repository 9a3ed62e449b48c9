//! `qcc route add|list|remove`: a cluster's routes (`store/routes.rs`), applied to a running
//! proxy at once.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::config::ConfigFile;
use crate::store::routes::Route;

/// `qcc route add CLUSTER (--model GLOB | --when X) --to C2`.
pub fn add(cluster: &str, model: Option<&str>, when: Option<&str>, to: &str) -> Result<()> {
    let route = Route::from_args(model, when, to).map_err(Error::Usage)?;
    let mut config = ConfigFile::edit_user()?;
    if to == cluster {
        return Err(Error::Invalid(format!("--to {to}: a route goes to another cluster than its own")));
    }
    config.cluster(to).map_err(|_| {
        Error::Invalid(format!("--to {to}: no such cluster (known: {})", config.profile_names().join(", ")))
    })?;
    let describe = route.describe();
    let n = config.add_route(cluster, route)?; // checked as a proxy would serve it; else nothing written
    config.save()?;
    println!("route {n} of cluster '{cluster}': {describe} -> {to}");
    super::commands::apply_live(cluster);
    Ok(())
}

/// `qcc route list CLUSTER [--json]`.
pub fn list(cluster: &str, json_out: bool) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let c = config.cluster(cluster)?;
    if json_out {
        let routes: Vec<Value> = c
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut v = r.to_json();
                v["n"] = json!(i + 1);
                v
            })
            .collect();
        let out = json!({"cluster": cluster, "routes": routes, "fallback": c.fallback});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    if c.routes.is_empty() {
        println!("cluster '{cluster}' has no routes: every request stays in it");
    }
    for (i, r) in c.routes.iter().enumerate() {
        println!("{:>3}  {:<36} -> {}", i + 1, r.describe(), r.to);
    }
    if !c.routes.is_empty() {
        println!("     (anything else)                      -> {cluster}");
    }
    if !c.fallback.is_empty() {
        println!("fallback: {}", c.fallback.join(", then "));
    }
    Ok(())
}

/// `qcc route remove CLUSTER N` (N as `route list` numbers them).
pub fn remove(cluster: &str, n: &str) -> Result<()> {
    let n: usize = n.parse().map_err(|_| {
        Error::Usage(format!("route {:?}: give its number, as `qcc route list {cluster}` shows", crate::mask::clean(n)))
    })?;
    let mut config = ConfigFile::edit_user()?;
    let gone = config.remove_route(cluster, n)?;
    config.save()?;
    println!("removed route {n} of cluster '{cluster}': {} -> {}", gone.describe(), gone.to);
    super::commands::apply_live(cluster);
    Ok(())
}
