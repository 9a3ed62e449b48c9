//! Profile-level edits of `cache.json` (what the Python `qcc init/add/remove/default/use/config`
//! did), and endpoint edits in place (`enable`, `disable`, `set`). Same file, same rules as
//! `config.rs`: unknown fields kept, the Python shape written, nothing saved until `save()`.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::cluster::MAX_TIMEOUT_SECS;
use super::config::{mirror_first, ConfigFile};
use crate::error::{Error, Result};

/// Said with an unknown profile name when the file has none.
const ADD_HINT: &str = " (add one with `qcc add`)";

/// One profile as `qcc list` shows it.
#[derive(Debug, Clone)]
pub struct ProfileInfo {
    pub name: String,
    pub description: String,
    pub default: bool,
    pub last_used: Option<String>,
    /// Endpoints of a cluster; 1 for a single-endpoint profile (0 with no base URL).
    pub endpoints: usize,
    pub cluster: bool,
}

/// What `qcc endpoint set` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub key: Option<String>,
    pub priority: Option<u32>,
    pub weight: Option<u32>,
    pub timeout: Option<u64>,
    pub max_failures: Option<u32>,
    pub enabled: Option<bool>,
    /// A new name (`metadata.name`).
    pub name: Option<String>,
    /// New model-map rules (`Some(empty)` clears them).
    pub model_map: Option<Vec<crate::store::models::ModelRule>>,
    /// A new probe model (`Some("")` clears it).
    pub probe_model: Option<String>,
    pub format: crate::store::cluster::FormatChange,
    pub caps: crate::store::cluster::CapsChange,
    /// Rule flags (`--drop-field` ..., `--no-rules`, `--forget-rules`).
    pub rules: crate::store::rules::RulesChange,
    /// Rules the proxy learned (the whole set, replacing the file's).
    pub learned: Option<crate::store::rules::Rules>,
}

impl ConfigFile {
    /// `qcc init`: a fresh file with local storage, as the Python `qcc init` answering "3 (local)"
    /// writes it. Never overwrites: false when the file already has content.
    pub fn init(&mut self, user: &str) -> Result<bool> {
        let root = self.root_object()?;
        if !root.is_empty() {
            return Ok(false);
        }
        root.insert("user_id".into(), json!(format!("local:{user}")));
        root.insert(
            "settings".into(),
            json!({"default_profile": null, "auto_sync": false, "encryption_enabled": false,
                   "storage_backend_type": "local", "storage_initialized": true}),
        );
        root.insert("profiles".into(), json!({}));
        Ok(true)
    }

    /// `qcc add`: a single-endpoint profile (the Python shape); the first profile becomes the
    /// default. Returns whether it became the default.
    pub fn add_profile(&mut self, name: &str, url: &str, key: &str, description: &str) -> Result<bool> {
        if self.profiles().is_some_and(|p| p.contains_key(name)) {
            return Err(Error::Invalid(format!(
                "profile '{name}' already exists (remove it first, or pick another name)"
            )));
        }
        let now = crate::store::timefmt::iso(SystemTime::now());
        let path = self.path.clone();
        let root = self.root_object()?;
        let profiles = root.entry("profiles").or_insert_with(|| json!({}));
        let Some(profiles) = profiles.as_object_mut() else {
            return Err(Error::BadFile { path, problem: "\"profiles\" is not a JSON object".into() });
        };
        profiles.insert(
            name.to_string(),
            json!({"name": name, "description": description, "priority": "primary", "enabled": true,
                   "created_at": now, "last_used": null, "base_url": url, "api_key": key}),
        );
        let made_default = self.default_profile().is_none();
        if made_default {
            self.set_default(name)?;
        }
        Ok(made_default)
    }

    /// `qcc remove`: the profile goes; when it was the default, the first remaining profile
    /// becomes the default (or none), as in the Python package. Returns the new default.
    pub fn remove_profile(&mut self, name: &str) -> Result<Option<String>> {
        let was_default = self.default_profile() == Some(name);
        let root = self.root_object()?;
        let removed = root.get_mut("profiles").and_then(Value::as_object_mut).and_then(|p| p.shift_remove(name));
        if removed.is_none() {
            return Err(self.unknown("profile", name, ADD_HINT));
        }
        if !was_default {
            return Ok(self.default_profile().map(str::to_string));
        }
        let next = self.profile_names().into_iter().next();
        self.set_setting("default_profile", next.clone().map_or(Value::Null, Value::String))?;
        Ok(next)
    }

    /// `settings.KEY = value`, every other setting kept.
    pub fn set_setting(&mut self, key: &str, value: Value) -> Result<()> {
        let path = self.path.clone();
        let root = self.root_object()?;
        let settings = root.entry("settings").or_insert_with(|| json!({}));
        let Some(settings) = settings.as_object_mut() else {
            return Err(Error::BadFile { path, problem: "\"settings\" is not a JSON object".into() });
        };
        settings.insert(key.to_string(), value);
        Ok(())
    }

    pub fn settings(&self) -> Map<String, Value> {
        self.root.get("settings").and_then(Value::as_object).cloned().unwrap_or_default()
    }

    pub fn user_id(&self) -> Option<&str> {
        self.root.get("user_id").and_then(Value::as_str)
    }

    /// The profile's `last_used` is now (what `qcc use` records).
    pub fn touch_last_used(&mut self, name: &str) -> Result<()> {
        let now = crate::store::timefmt::iso(SystemTime::now());
        self.profile_mut(name)?.insert("last_used".into(), Value::String(now));
        Ok(())
    }

    /// Every profile, in file order.
    pub fn profiles_info(&self) -> Vec<ProfileInfo> {
        let default = self.default_profile().map(str::to_string);
        let Some(profiles) = self.profiles() else { return Vec::new() };
        profiles
            .iter()
            .map(|(name, p)| {
                let list = p.get("endpoints").and_then(Value::as_array).filter(|l| !l.is_empty());
                let single = p.get("base_url").and_then(Value::as_str).is_some_and(|u| !u.trim().is_empty());
                ProfileInfo {
                    name: name.clone(),
                    description: p.get("description").and_then(Value::as_str).unwrap_or("").to_string(),
                    default: default.as_deref() == Some(name.as_str()),
                    last_used: p.get("last_used").and_then(Value::as_str).map(str::to_string),
                    endpoints: list.map_or(usize::from(single), Vec::len),
                    cluster: list.is_some(),
                }
            })
            .collect()
    }

    /// The profile `qcc` with no arguments launches: the default, else the most recently used.
    pub fn launch_profile(&self) -> Option<String> {
        if let Some(d) = self.default_profile() {
            return Some(d.to_string());
        }
        self.profiles_info()
            .into_iter()
            .filter(|p| p.last_used.is_some())
            .max_by(|a, b| a.last_used.cmp(&b.last_used))
            .map(|p| p.name)
    }

    /// `qcc endpoint enable|disable|set`: change one endpoint of a cluster in place. A
    /// single-endpoint profile becomes a cluster first (as `endpoint add` does), so its one
    /// endpoint keeps the id qcc shows for it.
    pub fn update_endpoint(&mut self, cluster: &str, id: &str, change: &EndpointChange) -> Result<()> {
        if let Some(url) = &change.url {
            crate::store::url::BaseUrl::parse(url).map_err(Error::Invalid)?;
        }
        if change.timeout.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_SECS) {
            return Err(Error::Invalid(format!("--timeout must be from 1 to {MAX_TIMEOUT_SECS} seconds")));
        }
        if change.max_failures == Some(0) {
            return Err(Error::Invalid("--max-failures must be at least 1".into()));
        }
        if change.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(Error::Invalid("--key must not be empty".into()));
        }
        let current = self.cluster(cluster)?; // validates, and names an unknown cluster
        if let Some(n) = &change.name {
            crate::store::names::check_name(n).map_err(Error::Invalid)?;
            if current.endpoints.iter().any(|e| e.id != id && (e.name == *n || e.id == *n)) {
                return Err(Error::Invalid(format!(
                    "--name {n}: cluster '{cluster}' has an endpoint called that already"
                )));
            }
        }
        self.make_cluster(cluster)?;
        let path = self.path.clone();
        let profile = self.profile_mut(cluster)?;
        let list = profile.get_mut("endpoints").and_then(Value::as_array_mut);
        let Some(ep) = list
            .into_iter()
            .flatten()
            .find(|e| e.get("id").and_then(Value::as_str) == Some(id))
            .and_then(Value::as_object_mut)
        else {
            return Err(Error::Invalid(format!(
                "unknown endpoint id '{id}' in cluster '{cluster}' ({})",
                path.display()
            )));
        };
        let mut set = |k: &str, v: Value| {
            ep.insert(k.to_string(), v);
        };
        if let Some(v) = &change.url {
            set("base_url", json!(v.trim_end_matches('/')));
        }
        if let Some(v) = &change.key {
            set("api_key", json!(v));
        }
        if let Some(v) = change.priority {
            set("priority", json!(v));
        }
        if let Some(v) = change.weight {
            set("weight", json!(v));
        }
        if let Some(v) = change.timeout {
            set("timeout", json!(v));
        }
        if let Some(v) = change.max_failures {
            set("max_failures", json!(v));
        }
        if let Some(v) = change.enabled {
            set("enabled", json!(v));
        }
        let meta = ep.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(meta) = meta.as_object_mut() {
            if let Some(n) = &change.name {
                meta.insert("name".into(), json!(n));
            }
            match &change.model_map {
                Some(rules) if rules.is_empty() => {
                    meta.remove("model_map");
                }
                Some(rules) => {
                    meta.insert("model_map".into(), crate::store::models::to_json(rules));
                }
                None => {}
            }
            match change.probe_model.as_deref() {
                Some("") => {
                    meta.remove("probe_model");
                }
                Some(m) => {
                    meta.insert("probe_model".into(), json!(m));
                }
                None => {}
            }
            change.format.apply(meta);
            change.caps.apply(meta);
            change.rules.apply(meta).map_err(crate::error::Error::Invalid)?;
            if let Some(learned) = &change.learned {
                crate::store::rules::set_learned(meta, learned);
            }
        }
        mirror_first(profile);
        Ok(())
    }

    /// `qcc cluster set`: the statuses that fail over and the strategy, stored in the profile.
    pub fn set_cluster(
        &mut self,
        cluster: &str,
        retry_on: Option<crate::store::cluster::RetryOn>,
        strategy: Option<crate::store::cluster::Strategy>,
    ) -> Result<()> {
        self.cluster(cluster)?; // validates, and names an unknown cluster
        let profile = self.profile_mut(cluster)?;
        if let Some(r) = retry_on {
            profile.insert("retry_on".into(), json!(r.codes()));
        }
        if let Some(s) = strategy {
            profile.insert("strategy".into(), json!(s.as_str()));
        }
        Ok(())
    }

    /// A single-endpoint profile becomes a one-endpoint cluster (its endpoint's id unchanged).
    fn make_cluster(&mut self, name: &str) -> Result<()> {
        let existing = self.cluster(name)?;
        let profile = self.profile_mut(name)?;
        if profile.get("endpoints").and_then(Value::as_array).is_some_and(|l| !l.is_empty()) {
            return Ok(());
        }
        let now = crate::store::timefmt::iso(SystemTime::now());
        let list: Vec<Value> = existing
            .endpoints
            .iter()
            .map(|ep| {
                json!({"id": ep.id, "base_url": ep.url.to_string(), "api_key": ep.api_key, "weight": ep.weight,
                       "priority": ep.priority, "enabled": true, "max_failures": ep.max_failures,
                       "timeout": ep.timeout_secs, "source_profile": name, "metadata": {"name": ep.name},
                       "created_at": now})
            })
            .collect();
        profile.insert("endpoints".into(), Value::Array(list));
        Ok(())
    }

    pub(super) fn profile_mut(&mut self, name: &str) -> Result<&mut Map<String, Value>> {
        if !self.profiles().is_some_and(|p| p.contains_key(name)) {
            return Err(self.unknown("profile", name, ADD_HINT));
        }
        let path = self.path.clone();
        let p = self
            .root
            .get_mut("profiles")
            .and_then(Value::as_object_mut)
            .and_then(|p| p.get_mut(name))
            .ok_or_else(|| Error::Invalid(format!("unknown profile '{name}'")))?;
        p.as_object_mut().ok_or(Error::BadFile { path, problem: format!("profile '{name}' is not a JSON object") })
    }
}
