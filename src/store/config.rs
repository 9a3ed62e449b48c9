//! The user's config file (`~/.fastcc/cache.json`, shape of the Python qcc): profiles and clusters.
//!
//! The file is kept as a `serde_json::Value` so that a rewrite keeps every field qcc does not know.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::store::cluster::{name_endpoints, unique_name};
use crate::store::cluster::{parse_endpoint, single_endpoint};
use crate::store::cluster::{ClusterConfig, MAX_TIMEOUT_SECS};
use crate::store::names::{check_name, fnv_id, fresh_id, host_of};
use crate::store::url::BaseUrl;

/// What `qcc endpoint add` asks for.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub base_url: String,
    pub key: String,
    pub priority: u32,
    pub weight: u32,
    pub timeout: u64,
    pub max_failures: u32,
    pub ca_file: Option<PathBuf>,
    /// `--name`; derived from the URL's host when absent.
    pub name: Option<String>,
    /// `--model-map` rules.
    pub model_map: Vec<super::models::ModelRule>,
    /// `--probe-model`.
    pub probe_model: Option<String>,
    /// `--format` and what goes with it.
    pub format: super::cluster::FormatChange,
    /// `--rpm`, `--tpm`, `--concurrent`.
    pub caps: super::cluster::CapsChange,
    /// `--drop-field`, `--drop-beta`, `--adaptive-thinking`, `--drop-effort` (and a preset's rules).
    pub rules: super::rules::RulesChange,
}

impl NewEndpoint {
    /// What `endpoint add` (and the dashboard's add) use when a field is not given.
    pub const DEFAULT_PRIORITY: u32 = 1;
    pub const DEFAULT_WEIGHT: u32 = 100;
    pub const DEFAULT_TIMEOUT: u64 = 30;
    pub const DEFAULT_MAX_FAILURES: u32 = 3;

    /// What an endpoint must be before it is written (the CLI and the dashboard alike): a base
    /// URL qcc can use, a key, timeouts in range, a CA file that exists.
    pub fn check(&self) -> Result<BaseUrl> {
        let url = BaseUrl::parse(&self.base_url).map_err(Error::Invalid)?;
        if self.key.trim().is_empty() && !self.key.is_empty() {
            return Err(Error::Invalid("--key must not be empty (--pass-through: the client's own credential)".into()));
        }
        if self.timeout == 0 || self.max_failures == 0 {
            return Err(Error::Invalid("--timeout and --max-failures must be at least 1".into()));
        }
        if self.timeout > MAX_TIMEOUT_SECS {
            return Err(Error::Invalid(format!("--timeout {}: at most {MAX_TIMEOUT_SECS} seconds", self.timeout)));
        }
        if let Some(ca) = &self.ca_file {
            if !ca.is_file() {
                return Err(Error::Invalid(format!("--ca-file {}: no such file", ca.display())));
            }
        }
        Ok(url)
    }
}

pub struct ConfigFile {
    pub(super) path: PathBuf,
    pub(super) root: Value,
    /// Held from the read to the write when loaded for an edit (`edit_user`, `edit`).
    _lock: Option<super::fsutil::EditLock>,
}

impl ConfigFile {
    /// The user's config file (`fsutil::config_path()`), as `load` reads it.
    pub fn load_user() -> Result<ConfigFile> {
        ConfigFile::load(&super::fsutil::config_path())
    }

    /// The user's config file, locked until this value is dropped: for a read-change-write.
    pub fn edit_user() -> Result<ConfigFile> {
        ConfigFile::edit(&super::fsutil::config_path())
    }

    /// `load`, holding the file's edit lock (`fsutil::EditLock`) until this value is dropped.
    pub fn edit(path: &Path) -> Result<ConfigFile> {
        let lock = super::fsutil::EditLock::take(path)
            .map_err(|e| Error::io(format!("cannot lock {} for an edit", path.display()), e))?;
        Ok(ConfigFile { _lock: Some(lock), ..ConfigFile::load(path)? })
    }

    /// A missing file is an empty config; an unreadable or corrupt one is `Error::BadFile`.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let bad = |problem: String| Error::BadFile { path: path.to_path_buf(), problem };
        let root = match super::fsutil::read_file(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => json!({}),
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(e) => return Err(bad(e.to_string())),
        };
        if !root.is_object() {
            return Err(bad("not a JSON object".into()));
        }
        if root.get("profiles").is_some_and(|p| !p.is_object()) {
            return Err(bad("\"profiles\" is not a JSON object".into()));
        }
        Ok(ConfigFile { path: path.to_path_buf(), root, _lock: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole document, as read (every field kept).
    pub fn document(&self) -> &Value {
        &self.root
    }

    /// This file with `root` as its document (checked as `load` checks a file; not yet saved).
    pub fn with_document(&self, root: Value) -> Result<ConfigFile> {
        let bad = |problem: &str| Error::BadFile { path: self.path.clone(), problem: problem.into() };
        if !root.is_object() {
            return Err(bad("not a JSON object"));
        }
        if root.get("profiles").is_some_and(|p| !p.is_object()) {
            return Err(bad("\"profiles\" is not a JSON object"));
        }
        Ok(ConfigFile { path: self.path.clone(), root, _lock: None })
    }

    pub(super) fn profiles(&self) -> Option<&Map<String, Value>> {
        self.root.get("profiles").and_then(Value::as_object)
    }

    /// Profile names in file order.
    pub fn profile_names(&self) -> Vec<String> {
        self.profiles().map(|p| p.keys().cloned().collect()).unwrap_or_default()
    }

    /// `settings.default_profile`, when set and present.
    pub fn default_profile(&self) -> Option<&str> {
        let name = self.root.pointer("/settings/default_profile")?.as_str()?;
        self.profiles()?.contains_key(name).then_some(name)
    }

    /// The prices in force (`settings.prices` over the built-in table); an error names the file.
    pub fn prices(&self) -> Result<super::prices::PriceTable> {
        super::prices::PriceTable::from_config(self.root.pointer("/settings/prices"))
            .map_err(|problem| Error::BadFile { path: self.path.clone(), problem })
    }

    /// `settings.notify_urls`: where alerts are posted (each checked; an error names the file).
    pub fn notify_urls(&self) -> Result<Vec<String>> {
        let bad = |problem: String| Error::BadFile { path: self.path.clone(), problem };
        let Some(v) = self.root.pointer("/settings/notify_urls") else { return Ok(Vec::new()) };
        let list = v.as_array().ok_or_else(|| bad("settings.notify_urls must be a list of URLs".into()))?;
        list.iter()
            .map(|u| {
                let u = u.as_str().ok_or_else(|| bad("settings.notify_urls must be a list of URLs".into()))?;
                super::url::WebhookUrl::parse(u).map_err(|e| bad(format!("settings.notify_urls: {e}")))?;
                Ok(u.to_string())
            })
            .collect()
    }

    /// `settings.test_model`, the Python qcc's probe model, when set.
    pub fn test_model(&self) -> Option<&str> {
        self.root.pointer("/settings/test_model")?.as_str().filter(|m| super::models::check_probe_model(m).is_ok())
    }

    /// The cluster meant when none is named: the default profile, else the only one there is.
    pub fn implied_cluster(&self) -> Option<String> {
        if let Some(d) = self.default_profile() {
            return Some(d.to_string());
        }
        match self.profile_names().as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        }
    }

    /// The cluster a command means: `given`, else the implied one; else an error that says
    /// which clusters exist (or how to make one).
    pub fn cluster_meant(&self, given: Option<&str>) -> Result<String> {
        if let Some(c) = given.map(str::to_string).or_else(|| self.implied_cluster()) {
            self.cluster(&c)?;
            return Ok(c);
        }
        let known = self.profile_names();
        Err(Error::Usage(if known.is_empty() {
            "no clusters yet: add one with `qcc endpoint add CLUSTER --url URL --key-file PATH`".into()
        } else {
            format!("no default cluster: give --cluster (one of: {})", known.join(", "))
        }))
    }

    /// `Error::Invalid` for a `kind` ("cluster", "profile") name that is not in the file: the
    /// names that are, or, when there are none, the file and `hint`.
    pub(super) fn unknown(&self, kind: &str, name: &str, hint: &str) -> Error {
        let known = self.profile_names();
        Error::Invalid(if known.is_empty() {
            format!("unknown {kind} '{name}': {} has no profiles{hint}", self.path.display())
        } else {
            format!("unknown {kind} '{name}' (known: {})", known.join(", "))
        })
    }

    /// The named profile as a cluster; unknown name is `Error::Invalid` naming it.
    pub fn cluster(&self, name: &str) -> Result<ClusterConfig> {
        let profile = self.profiles().and_then(|p| p.get(name)).ok_or_else(|| self.unknown("cluster", name, ""))?;
        let bad = |problem: String| Error::BadFile { path: self.path.clone(), problem };
        let Some(profile) = profile.as_object() else {
            return Err(bad(format!("profile '{name}' is not a JSON object")));
        };
        let mut endpoints = Vec::new();
        match profile.get("endpoints") {
            // The Python package treats an empty list like a missing one (`if data['endpoints']`).
            Some(Value::Array(list)) if !list.is_empty() => {
                let mut seen = std::collections::HashSet::new();
                for (i, ep) in list.iter().enumerate() {
                    let ep =
                        parse_endpoint(ep).map_err(|e| bad(format!("profile '{name}', endpoint {}: {e}", i + 1)))?;
                    if !seen.insert(ep.id.clone()) {
                        return Err(bad(format!(
                            "profile '{name}': endpoint id {} appears twice (ids must be unique in a cluster)",
                            ep.id
                        )));
                    }
                    endpoints.push(ep);
                }
            }
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                if let Some(ep) = single_endpoint(name, profile).map_err(|e| bad(format!("profile '{name}': {e}")))? {
                    endpoints.push(ep);
                }
            }
            Some(_) => return Err(bad(format!("profile '{name}': \"endpoints\" is not a list"))),
        }
        name_endpoints(&mut endpoints).map_err(|e| bad(format!("profile '{name}': {e}")))?;
        let retry_on = match profile.get("retry_on") {
            None | Some(Value::Null) => crate::store::cluster::RetryOn::default(),
            Some(Value::Array(codes)) => {
                let codes: Option<Vec<u16>> =
                    codes.iter().map(|c| c.as_u64().and_then(|c| u16::try_from(c).ok())).collect();
                let codes =
                    codes.ok_or_else(|| bad(format!("profile '{name}': \"retry_on\" holds something not a status")))?;
                crate::store::cluster::RetryOn::from_codes(&codes)
                    .map_err(|e| bad(format!("profile '{name}': \"retry_on\": {e}")))?
            }
            Some(_) => return Err(bad(format!("profile '{name}': \"retry_on\" is not a list of statuses"))),
        };
        // (A profile's `strategy` may be anything the Python qcc wrote there; only ours count.)
        let strategy = profile.get("strategy").and_then(Value::as_str).and_then(crate::store::cluster::Strategy::parse);
        let routes = super::routes::routes_of(profile).map_err(|e| bad(format!("profile '{name}': {e}")))?;
        let fallback = super::routes::fallback_of(profile).map_err(|e| bad(format!("profile '{name}': {e}")))?;
        Ok(ClusterConfig { name: name.to_string(), endpoints, retry_on, strategy, routes, fallback })
    }

    /// The id of the endpoint of `cluster` that `which` names (its id or its name).
    pub fn resolve(&self, cluster: &str, which: &str) -> Result<String> {
        let c = self.cluster(cluster)?;
        if let Some(ep) =
            c.endpoints.iter().find(|e| e.id == which).or_else(|| c.endpoints.iter().find(|e| e.name == which))
        {
            return Ok(ep.id.clone());
        }
        let known: Vec<String> = c.endpoints.iter().map(|e| e.label()).collect();
        Err(Error::Invalid(format!(
            "unknown endpoint '{}' in cluster '{cluster}' (known: {})",
            crate::mask::clean(which),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )))
    }

    /// Add to `settings.prices` the models of `prices` (the same shape) it does not price yet;
    /// how many were added.
    pub fn add_missing_prices(&mut self, prices: &Value) -> Result<usize> {
        let Some(given) = prices.as_object() else { return Ok(0) };
        let root = self.root_object()?;
        let settings = root.entry("settings").or_insert_with(|| json!({}));
        let Some(settings) = settings.as_object_mut() else {
            return Err(self.not_object("settings"));
        };
        let table = settings.entry("prices").or_insert_with(|| json!({}));
        let Some(table) = table.as_object_mut() else {
            return Err(self.not_object("settings.prices"));
        };
        let mut added = 0;
        for (model, price) in given {
            if !table.contains_key(model) {
                table.insert(model.clone(), price.clone());
                added += 1;
            }
        }
        Ok(added)
    }

    /// Set `settings.default_profile` to an existing profile, keeping every other setting.
    pub fn set_default(&mut self, name: &str) -> Result<()> {
        if !self.profiles().is_some_and(|p| p.contains_key(name)) {
            return Err(Error::Invalid(format!(
                "unknown profile '{name}' (known: {})",
                self.profile_names().join(", ")
            )));
        }
        let root = self.root_object()?;
        let settings = root.entry("settings").or_insert_with(|| json!({}));
        let Some(settings) = settings.as_object_mut() else {
            return Err(self.not_object("settings"));
        };
        settings.insert("default_profile".into(), Value::String(name.to_string()));
        Ok(())
    }

    /// Add an endpoint (creating the cluster profile if needed); returns the new id and name.
    pub fn add_endpoint(&mut self, cluster: &str, new: &NewEndpoint) -> Result<(String, String)> {
        new.check()?;
        let existing: Vec<String> = self.all_endpoint_ids();
        let id = fresh_id(&existing);
        let others = match self.profiles().is_some_and(|p| p.contains_key(cluster)) {
            true => self.cluster(cluster)?.endpoints,
            false => Vec::new(),
        };
        let name = match &new.name {
            Some(n) => {
                check_name(n).map_err(Error::Invalid)?;
                if others.iter().any(|e| e.name == *n || e.id == *n) {
                    return Err(Error::Invalid(format!(
                        "--name {n}: cluster '{cluster}' has an endpoint called that already"
                    )));
                }
                n.clone()
            }
            None => unique_name(&host_of(&new.base_url), &others),
        };
        let now = crate::store::timefmt::iso(SystemTime::now());
        let endpoint = json!({
            "id": id,
            "base_url": new.base_url,
            "api_key": new.key,
            "weight": new.weight,
            "priority": new.priority,
            "enabled": true,
            "max_failures": new.max_failures,
            "timeout": new.timeout,
            "source_profile": null,
            "metadata": {"name": name},
            "created_at": now,
            "health_status": {"status": "unknown", "last_check": null, "consecutive_failures": 0,
                              "total_requests": 0, "failed_requests": 0, "success_rate": 100.0,
                              "avg_response_time": 0}
        });
        let mut endpoint = endpoint;
        if let (Some(ca), Some(obj)) = (&new.ca_file, endpoint.as_object_mut()) {
            obj.insert("ca_file".into(), Value::String(ca.display().to_string()));
        }
        if !new.model_map.is_empty() {
            endpoint["metadata"]["model_map"] = super::models::to_json(&new.model_map);
        }
        if let Some(m) = &new.probe_model {
            endpoint["metadata"]["probe_model"] = json!(m);
        }
        if let Some(meta) = endpoint["metadata"].as_object_mut() {
            new.format.apply(meta);
            new.caps.apply(meta);
            new.rules.apply(meta).map_err(Error::Invalid)?;
        }
        let root = self.root_object()?;
        let profiles = root.entry("profiles").or_insert_with(|| json!({}));
        let Some(profiles) = profiles.as_object_mut() else {
            return Err(self.not_object("profiles"));
        };
        let profile = profiles.entry(cluster).or_insert_with(|| {
            json!({"name": cluster, "description": "", "priority": "primary", "enabled": true,
                   "created_at": now, "last_used": null, "base_url": "", "api_key": ""})
        });
        let Some(profile) = profile.as_object_mut() else {
            return Err(Error::BadFile {
                path: self.path.clone(),
                problem: format!("profile '{cluster}' is not a JSON object"),
            });
        };
        if !profile.contains_key("endpoints") {
            // A single-endpoint profile becomes a cluster: its own endpoint comes first.
            let mut list = Vec::new();
            if let Some(url) = profile.get("base_url").and_then(Value::as_str).filter(|u| !u.is_empty()) {
                list.push(json!({"id": fnv_id(cluster), "base_url": url,
                                 "api_key": profile.get("api_key").cloned().unwrap_or(json!("")),
                                 "weight": 100, "priority": 1, "enabled": true, "max_failures": 3, "timeout": 30,
                                 "source_profile": cluster, "metadata": {}, "created_at": now}));
            }
            profile.insert("endpoints".into(), Value::Array(list));
        }
        match profile.get_mut("endpoints") {
            Some(Value::Array(list)) => list.push(endpoint),
            _ => {
                return Err(Error::BadFile {
                    path: self.path.clone(),
                    problem: format!("profile '{cluster}': \"endpoints\" is not a list"),
                })
            }
        }
        mirror_first(profile);
        Ok((id, name))
    }

    /// Remove endpoint `id` from `cluster`.
    pub fn remove_endpoint(&mut self, cluster: &str, id: &str) -> Result<()> {
        self.cluster(cluster)?;
        let path = self.path.clone();
        let profile = self
            .root
            .pointer_mut(&format!("/profiles/{}", cluster.replace('~', "~0").replace('/', "~1")))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| Error::Invalid(format!("unknown cluster '{cluster}'")))?;
        let Some(Value::Array(list)) = profile.get_mut("endpoints") else {
            return Err(Error::Invalid(format!("cluster '{cluster}' has no endpoint list; nothing to remove")));
        };
        let before = list.len();
        list.retain(|ep| ep.get("id").and_then(Value::as_str) != Some(id));
        if list.len() == before {
            return Err(Error::Invalid(format!(
                "unknown endpoint id '{id}' in cluster '{cluster}' ({})",
                path.display()
            )));
        }
        mirror_first(profile);
        Ok(())
    }

    /// Write the file back atomically (mode 0600), every unknown field kept.
    pub fn save(&self) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&self.root).map_err(|e| Error::Failed(e.to_string()))?;
        bytes.push(b'\n');
        crate::store::fsutil::atomic_write(&self.path, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", self.path.display()), e))
    }

    fn all_endpoint_ids(&self) -> Vec<String> {
        self.profiles()
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(|p| p.get("endpoints").and_then(Value::as_array))
            .flatten()
            .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    pub(super) fn root_object(&mut self) -> Result<&mut Map<String, Value>> {
        let path = self.path.clone();
        self.root.as_object_mut().ok_or(Error::BadFile { path, problem: "not a JSON object".into() })
    }

    pub(super) fn not_object(&self, what: &str) -> Error {
        Error::BadFile { path: self.path.clone(), problem: format!("\"{what}\" is not a JSON object") }
    }
}

/// The profile's top-level base_url/api_key mirror its first endpoint (the Python shape).
pub(crate) fn mirror_first(profile: &mut Map<String, Value>) {
    let first = profile.get("endpoints").and_then(Value::as_array).and_then(|l| l.first()).cloned();
    let (url, key) = match first {
        Some(ep) => (ep.get("base_url").cloned().unwrap_or(json!("")), ep.get("api_key").cloned().unwrap_or(json!(""))),
        None => (json!(""), json!("")),
    };
    profile.insert("base_url".into(), url);
    profile.insert("api_key".into(), key);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON_SHAPED: &str = r#"{
      "user_id": "local:alice",
      "settings": {"default_profile": "my-cluster", "auto_sync": false},
      "profiles": {
        "my-cluster": {
          "name": "my-cluster", "description": "", "priority": "primary", "enabled": true,
          "created_at": "2025-10-17T10:00:00.000000", "last_used": null,
          "base_url": "https://api.example.com", "api_key": "sk-1",
          "endpoints": [
            {"id": "3f2a9c1d", "base_url": "https://api.example.com", "api_key": "sk-1",
             "weight": 100, "priority": 1, "enabled": true, "max_failures": 3, "timeout": 30,
             "source_profile": null, "metadata": {"team": "x"}, "created_at": "2025-10-17T10:00:00.000000",
             "health_status": {"status": "unknown"}}
          ]
        },
        "solo": {"name": "solo", "base_url": "http://127.0.0.1:9000/p", "api_key": "sk-solo"}
      }
    }"#;

    fn load_str(text: &str) -> ConfigFile {
        ConfigFile {
            path: PathBuf::from("/nonexistent/cache.json"),
            root: serde_json::from_str(text).unwrap(),
            _lock: None,
        }
    }

    #[test]
    fn reads_the_python_shape() {
        let c = load_str(PYTHON_SHAPED);
        assert_eq!(c.default_profile(), Some("my-cluster"));
        let cl = c.cluster("my-cluster").unwrap();
        assert_eq!(cl.endpoints.len(), 1);
        let ep = &cl.endpoints[0];
        assert_eq!((ep.id.as_str(), ep.priority, ep.max_failures, ep.timeout_secs), ("3f2a9c1d", 1, 3, 30));
        let solo = c.cluster("solo").unwrap();
        assert_eq!(solo.endpoints[0].url.path_prefix, "/p");
        assert_eq!(solo.endpoints[0].id, c.cluster("solo").unwrap().endpoints[0].id, "stable id");
        assert!(matches!(c.cluster("nope"), Err(Error::Invalid(_))));
    }

    #[test]
    fn add_and_remove_keep_unknown_fields_and_mirror_first() {
        let mut c = load_str(PYTHON_SHAPED);
        let new = NewEndpoint {
            base_url: "https://b.example.com".into(),
            key: "sk-2".into(),
            priority: 2,
            weight: 50,
            timeout: 10,
            max_failures: 5,
            ca_file: None,
            name: None,
            model_map: Vec::new(),
            probe_model: None,
            format: Default::default(),
            caps: Default::default(),
            rules: Default::default(),
        };
        let (id, name) = c.add_endpoint("my-cluster", &new).unwrap();
        assert_eq!(name, "b.example.com", "named after its host");
        assert_eq!(id.len(), 8);
        assert!(id.chars().all(|ch| ch.is_ascii_hexdigit()));
        assert_eq!(c.cluster("my-cluster").unwrap().endpoints.len(), 2);
        assert_eq!(c.root["user_id"], "local:alice");
        assert_eq!(c.root.pointer("/profiles/my-cluster/endpoints/0/metadata/team"), Some(&json!("x")));
        c.remove_endpoint("my-cluster", "3f2a9c1d").unwrap();
        assert_eq!(c.root.pointer("/profiles/my-cluster/base_url"), Some(&json!("https://b.example.com")));
        assert!(matches!(c.remove_endpoint("my-cluster", "ffffffff"), Err(Error::Invalid(_))));
        // A new cluster gets the Python profile shape.
        c.add_endpoint("fresh", &new).unwrap();
        assert_eq!(c.root.pointer("/profiles/fresh/priority"), Some(&json!("primary")));
        // A single-endpoint profile keeps its endpoint when it becomes a cluster.
        c.add_endpoint("solo", &new).unwrap();
        assert_eq!(c.cluster("solo").unwrap().endpoints.len(), 2);
    }

    #[test]
    fn names_are_derived_unique_resolvable_and_checked() {
        let mut c = load_str(PYTHON_SHAPED);
        let new = |name: Option<&str>| NewEndpoint {
            base_url: "https://relay.example.com/v1".into(),
            key: "sk-2".into(),
            priority: 2,
            weight: 50,
            timeout: 10,
            max_failures: 5,
            ca_file: None,
            name: name.map(str::to_string),
            model_map: Vec::new(),
            probe_model: None,
            format: Default::default(),
            caps: Default::default(),
            rules: Default::default(),
        };
        let (a, na) = c.add_endpoint("my-cluster", &new(None)).unwrap();
        let (_, nb) = c.add_endpoint("my-cluster", &new(None)).unwrap();
        assert_eq!((na.as_str(), nb.as_str()), ("relay.example.com", "relay.example.com-2"));
        let (_, nc) = c.add_endpoint("my-cluster", &new(Some("night"))).unwrap();
        assert_eq!(nc, "night");
        assert!(c.add_endpoint("my-cluster", &new(Some("night"))).is_err(), "unique in the cluster");
        assert!(c.add_endpoint("my-cluster", &new(Some("a b"))).is_err(), "checked");
        assert_eq!(c.resolve("my-cluster", "relay.example.com").unwrap(), a);
        assert_eq!(c.resolve("my-cluster", &a).unwrap(), a);
        assert!(c.resolve("my-cluster", "nope").is_err());
        // The Python endpoint without a stored name is called after its host; the name is stored
        // in `metadata`, which the Python qcc keeps.
        let cl = c.cluster("my-cluster").unwrap();
        assert!(cl.endpoints.iter().all(|e| !e.name.is_empty()));
        assert_eq!(c.root.pointer("/profiles/my-cluster/endpoints/3/metadata/name"), Some(&json!("night")));
        // Two endpoints of one name in a hand-edited file: one line naming the problem.
        let twice = load_str(
            r#"{"profiles": {"x": {"endpoints": [
                {"id": "aaaaaaaa", "base_url": "https://a.example", "metadata": {"name": "n"}},
                {"id": "bbbbbbbb", "base_url": "https://b.example", "metadata": {"name": "n"}}]}}}"#,
        );
        assert!(twice.cluster("x").unwrap_err().to_string().contains("two endpoints are called 'n'"));
    }

    #[test]
    fn bad_endpoint_names_the_profile() {
        let c = load_str(r#"{"profiles": {"x": {"endpoints": [{"id": "aaaaaaaa", "base_url": "ftp://no"}]}}}"#);
        let e = c.cluster("x").unwrap_err().to_string();
        assert!(e.contains("profile 'x'") && e.contains("aaaaaaaa"), "{e}");
    }
}
