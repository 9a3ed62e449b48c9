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

/// The clusters a proxy for `main` serves, `main` first: it, the clusters its routes name, and
/// every cluster in their fallback chains. `chain`, when given, replaces `main`'s own fallback
/// (the profile priorities' secondary and fallback profiles). An unknown cluster, a fallback
/// cycle or a route to `main` itself is an error that names it.
pub fn served(file: &ConfigFile, main: &str, chain: Option<&[String]>) -> Result<Vec<ClusterConfig>> {
    let mut first = file.cluster(main)?;
    if let Some(chain) = chain {
        first.fallback = chain.iter().filter(|c| c.as_str() != main).cloned().collect();
    }
    for r in &first.routes {
        if r.to == main {
            return Err(Error::Invalid(format!("cluster '{main}': route {} goes to '{main}' itself", r.describe())));
        }
    }
    let mut out = vec![first];
    let mut i = 0;
    while i < out.len() {
        let mut next: Vec<String> = out[i].fallback.clone();
        if i == 0 {
            next.extend(out[0].routes.iter().map(|r| r.to.clone()));
        }
        for name in next {
            if out.iter().any(|c| c.name == name) {
                continue;
            }
            let c = file.cluster(&name).map_err(|e| match e {
                Error::Invalid(_) => Error::Invalid(format!(
                    "cluster '{}' names cluster '{name}' (a route or fallback), which is not in {}",
                    out[i].name,
                    file.path().display()
                )),
                e => e,
            })?;
            out.push(c);
        }
        i += 1;
    }
    if out.len() > MAX_SERVED {
        return Err(Error::Invalid(format!("cluster '{main}' needs {} clusters; at most {MAX_SERVED}", out.len())));
    }
    if let Some(cycle) = fallback_cycle(&out) {
        return Err(Error::Invalid(format!("fallback cycle: {}", cycle.join(" -> "))));
    }
    Ok(out)
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

    /// What a proxy for `cluster` would serve is valid (an edit is refused before it is written).
    fn check_served(&self, cluster: &str) -> Result<()> {
        served(self, cluster, None).map(|_| ())
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
        let names: Vec<String> = served(&f, "main", None).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["main", "glm", "cheap", "big", "local"]);
        let c = f.cluster("main").unwrap();
        assert_eq!(c.routes[0].rule, Rule::Model("claude-*haiku*".into()));
        assert_eq!(c.routes[1].rule, Rule::When(When::Thinking));
        // A chain given (priorities) replaces the main cluster's own.
        let names: Vec<String> =
            served(&f, "main", Some(&["big".to_string()])).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["main", "big", "cheap", "local"]);

        let mut a = one("https://a.example");
        a["fallback"] = json!(["b"]);
        let mut b = one("https://b.example");
        b["fallback"] = json!(["a"]);
        let e = served(&file(json!({"a": a, "b": b})), "a", None).unwrap_err().to_string();
        assert!(e.contains("fallback cycle: a -> b -> a"), "{e}");

        let mut a = one("https://a.example");
        a["routes"] = json!([{"model": "x*", "to": "nope"}]);
        let e = served(&file(json!({"a": a})), "a", None).unwrap_err().to_string();
        assert!(e.contains("'nope'"), "{e}");

        let mut a = one("https://a.example");
        a["routes"] = json!([{"when": "colour", "to": "a"}]);
        let e = file(json!({"a": a})).cluster("a").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }
}
