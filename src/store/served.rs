//! The clusters a proxy serves (`served`): the one it is started for, every cluster its routes
//! name, and their fallbacks, checked before anything runs (no unknown cluster, no cycle, at
//! most `MAX_SERVED`); and the edits of a cluster's routes and fallback chain, each checked the
//! same way before it is written.

use serde_json::{json, Value};

use super::cluster::ClusterConfig;
use super::config::ConfigFile;
use super::routes::Route;
use crate::error::{Error, Result};

/// At most this many clusters served by one proxy (a request's chain is a bit mask).
pub const MAX_SERVED: usize = 64;

/// What a proxy for a cluster serves, and what it had to leave out.
#[derive(Debug)]
pub struct Served {
    /// The started cluster first.
    pub clusters: Vec<ClusterConfig>,
    /// A route or fallback that names a cluster the file does not have, skipped: one line each,
    /// naming where the reference is (a route, a fallback chain, priority.json).
    pub skipped: Vec<String>,
}

/// The clusters a proxy for `main` serves, `main` first: it, the clusters its routes name, and
/// every cluster in their fallback chains. `chain`, when given, replaces `main`'s own fallback
/// (the profile priorities' secondary and fallback profiles, from priority.json). A route or
/// fallback to a cluster the file does not have is skipped and said in `skipped` (a removed
/// cluster never stops a proxy from starting or reloading); a fallback cycle or a route to
/// `main` itself is an error that names it. Edits are held to more: `check_served`.
pub fn served(file: &ConfigFile, main: &str, chain: Option<&[String]>) -> Result<Served> {
    let mut first = file.cluster(main)?;
    let mut skipped = Vec::new();
    let from_priorities = chain.is_some();
    if let Some(chain) = chain {
        first.fallback = chain.iter().filter(|c| c.as_str() != main).cloned().collect();
    }
    for r in &first.routes {
        if r.to == main {
            return Err(Error::Invalid(format!("cluster '{main}': route {} goes to '{main}' itself", r.describe())));
        }
    }
    let exists = |name: &str| file.profile_names().iter().any(|n| n == name);
    let path = file.path().display().to_string();
    let mut n = 0;
    first.routes.retain(|r| {
        n += 1;
        let keep = exists(&r.to);
        if !keep {
            skipped.push(format!(
                "cluster '{main}': route {n} ({}) goes to cluster '{}', which is not in {path}: the route is skipped",
                r.describe(),
                r.to
            ));
        }
        keep
    });
    let mut out = vec![first];
    let mut i = 0;
    while i < out.len() {
        let owner = out[i].name.clone();
        out[i].fallback.retain(|f| {
            let keep = exists(f);
            if !keep {
                skipped.push(match (i, from_priorities) {
                    (0, true) => format!("priority.json names profile '{f}', which is not in {path}: it is skipped"),
                    _ => format!("cluster '{owner}': its fallback '{f}' is not in {path}: it is skipped"),
                });
            }
            keep
        });
        let mut next: Vec<String> = out[i].fallback.clone();
        if i == 0 {
            next.extend(out[0].routes.iter().map(|r| r.to.clone()));
        }
        for name in next {
            if out.iter().any(|c| c.name == name) {
                continue;
            }
            out.push(file.cluster(&name)?);
        }
        i += 1;
    }
    if out.len() > MAX_SERVED {
        return Err(Error::Invalid(format!("cluster '{main}' needs {} clusters; at most {MAX_SERVED}", out.len())));
    }
    if let Some(cycle) = fallback_cycle(&out) {
        return Err(Error::Invalid(format!("fallback cycle: {}", cycle.join(" -> "))));
    }
    Ok(Served { clusters: out, skipped })
}

/// A reference to a cluster from another's routes or fallback chain (what `qcc remove` finds).
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// Route `n` (1-based) of `cluster`, described.
    Route {
        cluster: String,
        n: usize,
        rule: String,
    },
    Fallback {
        cluster: String,
    },
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Reference::Route { cluster, n, rule } => write!(f, "route {n} of '{cluster}' ({rule})"),
            Reference::Fallback { cluster } => write!(f, "the fallback chain of '{cluster}'"),
        }
    }
}

/// A cycle in the fallback chains of `clusters` (names, the first repeated at the end).
pub fn fallback_cycle(clusters: &[ClusterConfig]) -> Option<Vec<String>> {
    let find = |n: &str| clusters.iter().position(|c| c.name == n);
    // Depth-first from each cluster along its fallbacks; `path` is the current walk.
    fn walk(
        at: usize,
        clusters: &[ClusterConfig],
        find: &dyn Fn(&str) -> Option<usize>,
        path: &mut Vec<usize>,
        done: &mut [bool],
    ) -> Option<Vec<String>> {
        if let Some(p) = path.iter().position(|&x| x == at) {
            let mut names: Vec<String> = path[p..].iter().map(|&x| clusters[x].name.clone()).collect();
            names.push(clusters[at].name.clone());
            return Some(names);
        }
        if done[at] {
            return None;
        }
        path.push(at);
        for f in &clusters[at].fallback {
            if let Some(next) = find(f) {
                if let Some(c) = walk(next, clusters, find, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        done[at] = true;
        None
    }
    let mut done = vec![false; clusters.len()];
    (0..clusters.len()).find_map(|i| walk(i, clusters, &find, &mut Vec::new(), &mut done))
}

impl ConfigFile {
    /// Add `route` to `cluster`'s routes (at the end); checked as a proxy would serve it.
    pub fn add_route(&mut self, cluster: &str, route: Route) -> Result<usize> {
        let mut list = self.cluster(cluster)?.routes;
        list.push(route);
        self.put_routes(cluster, &list)?;
        Ok(list.len())
    }

    /// Remove route `n` (1-based, as `qcc route list` numbers them) of `cluster`.
    pub fn remove_route(&mut self, cluster: &str, n: usize) -> Result<Route> {
        let mut list = self.cluster(cluster)?.routes;
        if n == 0 || n > list.len() {
            return Err(Error::Invalid(format!("cluster '{cluster}' has {} route(s); no route {n}", list.len())));
        }
        let gone = list.remove(n - 1);
        self.put_routes(cluster, &list)?;
        Ok(gone)
    }

    /// Set `cluster`'s fallback chain (empty: none).
    pub fn set_fallback(&mut self, cluster: &str, chain: &[String]) -> Result<()> {
        self.cluster(cluster)?;
        let profile = self.profile_mut(cluster)?;
        match chain.is_empty() {
            true => profile.remove("fallback"),
            false => profile.insert("fallback".into(), json!(chain)),
        };
        self.check_served(cluster)
    }

    fn put_routes(&mut self, cluster: &str, list: &[Route]) -> Result<()> {
        let profile = self.profile_mut(cluster)?;
        match list.is_empty() {
            true => profile.remove("routes"),
            false => profile.insert("routes".into(), Value::Array(list.iter().map(Route::to_json).collect())),
        };
        self.check_served(cluster)
    }

    /// What a proxy for `cluster` would serve is valid, and names no cluster the file does not
    /// have (an edit is refused before it is written).
    fn check_served(&self, cluster: &str) -> Result<()> {
        match served(self, cluster, None)?.skipped.into_iter().next() {
            Some(first) => {
                Err(Error::Invalid(first.replace(": the route is skipped", "").replace(": it is skipped", "")))
            }
            None => Ok(()),
        }
    }

    /// Every route and fallback chain of another cluster that names `name`.
    pub fn references_to(&self, name: &str) -> Vec<Reference> {
        let mut found = Vec::new();
        for other in self.profile_names().into_iter().filter(|o| o != name) {
            let Ok(c) = self.cluster(&other) else { continue };
            for (i, r) in c.routes.iter().enumerate().filter(|(_, r)| r.to == name) {
                found.push(Reference::Route { cluster: other.clone(), n: i + 1, rule: r.describe() });
            }
            if c.fallback.iter().any(|f| f == name) {
                found.push(Reference::Fallback { cluster: other.clone() });
            }
        }
        found
    }

    /// Take out every route to `name` and every mention of it in a fallback chain (`qcc remove
    /// --force`), without checking what is left: `name` is about to go.
    pub fn drop_references_to(&mut self, name: &str) -> Result<()> {
        for other in self.profile_names().into_iter().filter(|o| o != name) {
            let Ok(c) = self.cluster(&other) else { continue };
            if c.routes.iter().any(|r| r.to == name) {
                let routes: Vec<Route> = c.routes.into_iter().filter(|r| r.to != name).collect();
                let profile = self.profile_mut(&other)?;
                match routes.is_empty() {
                    true => profile.remove("routes"),
                    false => profile.insert("routes".into(), Value::Array(routes.iter().map(Route::to_json).collect())),
                };
            }
            if c.fallback.iter().any(|f| f == name) {
                let chain: Vec<&String> = c.fallback.iter().filter(|f| *f != name).collect();
                let profile = self.profile_mut(&other)?;
                match chain.is_empty() {
                    true => profile.remove("fallback"),
                    false => profile.insert("fallback".into(), json!(chain)),
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::routes::{Rule, When};

    fn file(profiles: Value) -> ConfigFile {
        let empty = ConfigFile::load(std::path::Path::new("/nonexistent/cache.json")).unwrap();
        empty.with_document(json!({"profiles": profiles})).unwrap()
    }

    fn one(url: &str) -> Value {
        json!({"base_url": url, "api_key": "sk-x"})
    }

    #[test]
    fn served_follows_routes_and_fallbacks_and_refuses_cycles_and_unknowns() {
        let mut main = one("https://a.example");
        main["routes"] = json!([{"model": "claude-*haiku*", "to": "cheap"}, {"when": "thinking", "to": "big"}]);
        main["fallback"] = json!(["glm"]);
        let mut cheap = one("https://b.example");
        cheap["fallback"] = json!(["local"]);
        let f = file(json!({"main": main, "cheap": cheap, "big": one("https://c.example"),
            "glm": one("https://d.example"), "local": one("http://127.0.0.1:9")}));
        let names: Vec<String> = served(&f, "main", None).unwrap().clusters.into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["main", "glm", "cheap", "big", "local"]);
        let c = f.cluster("main").unwrap();
        assert_eq!(c.routes[0].rule, Rule::Model("claude-*haiku*".into()));
        assert_eq!(c.routes[1].rule, Rule::When(When::Thinking));
        // A chain given (priorities) replaces the main cluster's own.
        let names: Vec<String> =
            served(&f, "main", Some(&["big".to_string()])).unwrap().clusters.into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["main", "big", "cheap", "local"]);

        let mut a = one("https://a.example");
        a["fallback"] = json!(["b"]);
        let mut b = one("https://b.example");
        b["fallback"] = json!(["a"]);
        let e = served(&file(json!({"a": a, "b": b})), "a", None).unwrap_err().to_string();
        assert!(e.contains("fallback cycle: a -> b -> a"), "{e}");

        // A route or fallback to a cluster that is gone is skipped, said where it is; an edit
        // that would make one is refused.
        let mut a = one("https://a.example");
        a["routes"] = json!([{"model": "x*", "to": "nope"}]);
        a["fallback"] = json!(["gone", "b"]);
        let s = served(&file(json!({"a": a, "b": one("https://b.example")})), "a", None).unwrap();
        assert_eq!(s.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(s.clusters[0].routes.is_empty());
        assert!(s.skipped[0].contains("route 1 (model x*) goes to cluster 'nope'"), "{:?}", s.skipped);
        assert!(s.skipped[1].contains("cluster 'a': its fallback 'gone'"), "{:?}", s.skipped);
        let s = served(&file(json!({"a": one("https://a.example")})), "a", Some(&["old".to_string()])).unwrap();
        assert!(s.skipped[0].starts_with("priority.json names profile 'old'"), "{:?}", s.skipped);
        let mut f = file(json!({"a": one("https://a.example")}));
        let e = f.set_fallback("a", &["nope".to_string()]).unwrap_err().to_string();
        assert!(e.contains("'nope'") && !e.contains("skipped"), "{e}");

        let mut a = one("https://a.example");
        a["routes"] = json!([{"when": "colour", "to": "a"}]);
        let e = file(json!({"a": a})).cluster("a").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }
}
