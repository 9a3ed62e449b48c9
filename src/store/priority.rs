//! `~/.qcc/priority.json`: the Python qcc's profile priorities (`qcc priority`), read and written
//! in its shape — `priority_map` (primary, secondary, fallback), `active_profile`, `policy`,
//! `switch_history` (the newest 100), `updated_at` — kept as JSON so fields qcc does not know
//! survive a rewrite. Each edit holds `fsutil::EditLock` from its read to its write.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

pub const LEVELS: [&str; 3] = ["primary", "secondary", "fallback"];
/// Switches kept, as the Python qcc keeps them.
const HISTORY_MAX: usize = 100;

pub struct Priorities {
    path: PathBuf,
    root: Map<String, Value>,
    _lock: Option<crate::store::fsutil::EditLock>,
}

/// The policy's fields (`qcc priority policy`); `None` leaves one as it is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PolicyChange {
    pub auto_failover: Option<bool>,
    pub auto_recovery: Option<bool>,
    pub failure_threshold: Option<u64>,
    pub cooldown_period: Option<u64>,
}

impl Priorities {
    pub fn path(home: &Path) -> PathBuf {
        home.join("priority.json")
    }

    /// The file as it is (the Python defaults when there is none).
    pub fn load(home: &Path) -> Result<Priorities> {
        Priorities::open(home, None)
    }

    /// For an edit: locked until dropped, so two edits build on each other.
    pub fn edit(home: &Path) -> Result<Priorities> {
        let path = Priorities::path(home);
        let lock = crate::store::fsutil::EditLock::take(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        Priorities::open(home, Some(lock))
    }

    fn open(home: &Path, lock: Option<crate::store::fsutil::EditLock>) -> Result<Priorities> {
        let path = Priorities::path(home);
        let bad = |problem: String| Error::BadFile { path: path.clone(), problem };
        let mut root = match crate::store::fsutil::read_file(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(bad("not a JSON object".into())),
                Err(e) => return Err(bad(format!("not JSON: {e}"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(Error::io(path.display().to_string(), e)),
        };
        for (field, default) in [
            ("priority_map", json!({"primary": null, "secondary": null, "fallback": null})),
            (
                "policy",
                json!({"auto_failover": false, "auto_recovery": false, "failure_threshold": 3, "cooldown_period": 300}),
            ),
            ("switch_history", json!([])),
        ] {
            match root.get(field) {
                None | Some(Value::Null) => {
                    root.insert(field.into(), default);
                }
                Some(v) if v.is_object() == default.is_object() && v.is_array() == default.is_array() => {}
                Some(_) => return Err(bad(format!("\"{field}\" is not what the Python qcc writes"))),
            }
        }
        Ok(Priorities { path, root, _lock: lock })
    }

    /// The profile at `level`.
    pub fn at(&self, level: &str) -> Option<&str> {
        self.root.get("priority_map")?.get(level)?.as_str()
    }

    /// The levels at which `profile` stands, and `active` when it is the active profile.
    pub fn levels_of(&self, profile: &str) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = LEVELS.iter().copied().filter(|l| self.at(l) == Some(profile)).collect();
        if self.active() == Some(profile) {
            out.push("active");
        }
        out
    }

    /// `profile` is gone: it leaves its level, and stops being the active profile (the primary,
    /// if any, is then).
    pub fn forget(&mut self, profile: &str) {
        if let Some(map) = self.root.get_mut("priority_map").and_then(Value::as_object_mut) {
            for (_, p) in map.iter_mut() {
                if p.as_str() == Some(profile) {
                    *p = Value::Null;
                }
            }
        }
        if self.active() == Some(profile) {
            let next = self.at("primary").map_or(Value::Null, |p| json!(p));
            self.root.insert("active_profile".into(), next);
        }
    }

    pub fn active(&self) -> Option<&str> {
        self.root.get("active_profile")?.as_str()
    }

    pub fn policy(&self) -> &Value {
        &self.root["policy"]
    }

    pub fn history(&self) -> &[Value] {
        self.root.get("switch_history").and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }

    /// The profile a proxy started without `--cluster` serves: the one `switch` pinned (the
    /// active profile), else the primary.
    pub fn serving(&self) -> Option<&str> {
        self.active().or_else(|| self.at("primary"))
    }

    /// The fallback chain of `serving` when a proxy serves it by priority: the other profiles
    /// with a level, primary then secondary then fallback, that `existing` has; none when the
    /// policy's `auto_failover` is off.
    pub fn chain_after(&self, serving: &str, existing: &[String]) -> Vec<String> {
        if self.policy().get("auto_failover").and_then(Value::as_bool) != Some(true) {
            return Vec::new();
        }
        LEVELS
            .iter()
            .filter_map(|l| self.at(l))
            .filter(|p| *p != serving && existing.iter().any(|e| e == p))
            .map(str::to_string)
            .collect()
    }

    /// `qcc priority set PROFILE LEVEL`, as the Python qcc does it: the profile leaves any other
    /// level; the first primary set while none is active becomes active.
    pub fn set(&mut self, profile: &str, level: &str) -> Result<()> {
        if !LEVELS.contains(&level) {
            return Err(Error::Usage(format!("level '{level}': give primary, secondary or fallback")));
        }
        if let Some(map) = self.root.get_mut("priority_map").and_then(Value::as_object_mut) {
            for (l, p) in map.iter_mut() {
                if p.as_str() == Some(profile) && l != level {
                    *p = Value::Null;
                }
            }
            map.insert(level.into(), json!(profile));
        }
        if self.active().is_none() && level == "primary" {
            self.root.insert("active_profile".into(), json!(profile));
            self.add_history(None, profile, "Initial activation", "manual");
        }
        Ok(())
    }

    /// `qcc priority switch PROFILE`: only to a profile that has a level.
    pub fn switch(&mut self, profile: &str, reason: &str, kind: &str) -> Result<()> {
        if !LEVELS.iter().any(|l| self.at(l) == Some(profile)) {
            return Err(Error::Invalid(format!(
                "profile '{profile}' has no priority; set one first: qcc priority set {profile} primary|secondary|fallback"
            )));
        }
        let from = self.active().map(str::to_string);
        self.root.insert("active_profile".into(), json!(profile));
        self.add_history(from.as_deref(), profile, reason, kind);
        Ok(())
    }

    pub fn set_policy(&mut self, c: &PolicyChange) {
        if let Some(p) = self.root.get_mut("policy").and_then(Value::as_object_mut) {
            if let Some(v) = c.auto_failover {
                p.insert("auto_failover".into(), json!(v));
            }
            if let Some(v) = c.auto_recovery {
                p.insert("auto_recovery".into(), json!(v));
            }
            if let Some(v) = c.failure_threshold {
                p.insert("failure_threshold".into(), json!(v));
            }
            if let Some(v) = c.cooldown_period {
                p.insert("cooldown_period".into(), json!(v));
            }
        }
    }

    /// A move between profiles that the proxy made (`failover`, `auto`), for the history; the
    /// active profile stays what `set` or `switch` made it.
    pub fn record_switch(&mut self, from: Option<&str>, to: &str, reason: &str, kind: &str) {
        self.add_history(from, to, reason, kind);
    }

    fn add_history(&mut self, from: Option<&str>, to: &str, reason: &str, kind: &str) {
        let entry = json!({"timestamp": crate::store::timefmt::iso(SystemTime::now()), "from": from, "to": to,
                           "reason": reason, "type": kind});
        if let Some(h) = self.root.get_mut("switch_history").and_then(Value::as_array_mut) {
            h.push(entry);
            let extra = h.len().saturating_sub(HISTORY_MAX);
            h.drain(..extra);
        }
    }

    /// Written atomically, `updated_at` now, two-space indented as the Python qcc writes it.
    pub fn save(&mut self) -> Result<()> {
        self.root.insert("updated_at".into(), json!(crate::store::timefmt::iso(SystemTime::now())));
        let bytes = serde_json::to_vec_pretty(&self.root).map_err(|e| Error::Failed(e.to_string()))?;
        crate::store::fsutil::atomic_write(&self.path, &bytes)
            .map_err(|e| Error::io(self.path.display().to_string(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_file_is_read_and_edited_in_its_shape() {
        let home = std::env::temp_dir().join(format!("qcc-priority-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let fixture =
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python/0.6.1/cluster/home/.qcc/priority.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
        v["extra"] = json!({"kept": true});
        std::fs::write(Priorities::path(&home), v.to_string()).unwrap();
        let mut p = Priorities::edit(&home).unwrap();
        assert_eq!(
            (p.at("primary"), p.at("fallback"), p.active(), p.serving()),
            (Some("a"), Some("c"), Some("b"), Some("b"))
        );
        p.set("c", "primary").unwrap();
        assert_eq!((p.at("primary"), p.at("fallback")), (Some("c"), None), "a profile has one level");
        p.switch("c", "Manual switch", "manual").unwrap();
        assert!(p.switch("zz", "", "manual").is_err());
        p.set_policy(&PolicyChange { auto_failover: Some(true), cooldown_period: Some(60), ..Default::default() });
        p.save().unwrap();
        drop(p);
        let back: Value = serde_json::from_slice(&std::fs::read(Priorities::path(&home)).unwrap()).unwrap();
        assert_eq!(back["extra"]["kept"], true, "unknown fields survive");
        assert_eq!(back["active_profile"], "c");
        assert_eq!(back["switch_history"].as_array().unwrap().last().unwrap()["from"], "b");
        assert_eq!(
            back["policy"],
            json!({"auto_failover": true, "auto_recovery": false, "failure_threshold": 3, "cooldown_period": 60})
        );
        std::fs::remove_dir_all(&home).unwrap();
    }
}
