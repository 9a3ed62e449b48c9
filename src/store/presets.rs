//! Vendor presets, as the Python qcc's `qcc fc` offered: each provider's base URL, the model map
//! that renames Claude Code's model names for it, and where to get a key. One data table
//! (`presets.json`, compiled in), under `$QCC_HOME/presets.json` (the same shape; an entry with
//! a built-in's name replaces it). No prices are built in: vendors change them; the config's
//! `settings.prices` says what a model costs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const BUILTIN: &str = include_str!("presets.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    #[serde(default)]
    pub title: String,
    pub base_url: String,
    /// The wire format its base URL speaks: `anthropic` (the Messages API) or `openai` (Chat
    /// Completions, translated); a preset naming another is refused when the file is read.
    #[serde(default = "anthropic")]
    pub format: String,
    /// `[pattern, model]` rules (`store/models.rs`).
    #[serde(default)]
    pub model_map: Vec<[String; 2]>,
    #[serde(default)]
    pub key_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// What its models cost, as `settings.prices` says it (`store/prices.rs`); written into the
    /// config for models it does not price yet when an endpoint is added from the preset. The
    /// built-in presets carry none: vendors change them, and a wrong price is worse than none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<serde_json::Value>,
    /// What its Anthropic-format endpoint is not sent (`store/rules.rs`), from the vendor's own
    /// documentation or tracker, named in `rules_source` (which also says when it documents that
    /// nothing is needed: it ignores what it does not know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rules_source: String,
    /// The provider serves no model by Claude Code's names: `endpoint add --preset` needs
    /// `--model-map` (or, on a terminal, a pick from its `/models`). An example model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_model: Option<String>,
}

fn anthropic() -> String {
    "anthropic".to_string()
}

/// The built-in presets with the user's over them; a broken user file is one line naming it.
pub fn all(home: &Path) -> Result<Vec<Preset>> {
    let mut list: Vec<Preset> = serde_json::from_str(BUILTIN).map_err(|e| Error::Failed(format!("presets: {e}")))?;
    let path = home.join("presets.json");
    match crate::store::fsutil::read_file(&path) {
        Ok(bytes) => {
            let bad = |problem: String| Error::BadFile { path: path.clone(), problem };
            let mine: Vec<Preset> = serde_json::from_slice(&bytes).map_err(|e| {
                bad(format!("not a list of presets ({{\"name\", \"base_url\", \"model_map\", \"key_url\"}}): {e}"))
            })?;
            for p in mine {
                crate::store::url::BaseUrl::parse(&p.base_url).map_err(|e| bad(format!("preset '{}': {e}", p.name)))?;
                crate::store::cluster::Format::check_name(&p.format)
                    .map_err(|e| bad(format!("preset '{}': {e}", p.name)))?;
                for [pattern, model] in &p.model_map {
                    crate::store::models::ModelRule::parse(&format!("{pattern}={model}"))
                        .map_err(|e| bad(format!("preset '{}': {e}", p.name)))?;
                }
                crate::store::prices::PriceTable::from_config(p.prices.as_ref())
                    .map_err(|e| bad(format!("preset '{}': {}", p.name, e.replace("settings.prices", "prices"))))?;
                crate::store::rules::Rules::from_json(p.rules.as_ref(), "rules")
                    .map_err(|e| bad(format!("preset '{}': {}", p.name, e.replace("metadata.", ""))))?;
                match list.iter_mut().find(|q| q.name == p.name) {
                    Some(q) => *q = p,
                    None => list.push(p),
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::BadFile { path, problem: e.to_string() }),
    }
    Ok(list)
}

/// The preset `name`, or one line saying there is none (and the nearest name).
pub fn find(home: &Path, name: &str) -> Result<Preset> {
    let list = all(home)?;
    if let Some(p) = list.iter().find(|p| p.name == name) {
        return Ok(p.clone());
    }
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    Err(Error::Invalid(format!(
        "no preset '{}' (one of: {}; see `qcc presets`)",
        crate::mask::clean(name),
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_is_valid() {
        let home = std::env::temp_dir().join(format!("qcc-presets-{}", std::process::id()));
        let list = all(&home).unwrap();
        assert!(list.len() >= 8);
        for p in &list {
            crate::store::url::BaseUrl::parse(&p.base_url).unwrap();
            for [pattern, model] in &p.model_map {
                crate::store::models::ModelRule::parse(&format!("{pattern}={model}")).unwrap();
            }
            let local = p.base_url.starts_with("http://127.0.0.1");
            assert!(p.key_url.starts_with("https://") || local && p.key_url.is_empty(), "{}", p.name);
            assert!(crate::store::cluster::Format::check_name(&p.format).is_ok(), "{}", p.name);
            crate::store::rules::Rules::from_json(p.rules.as_ref(), "rules").unwrap();
            assert!(p.rules.is_none() || p.rules_source.starts_with("https://"), "{}: rules name their source", p.name);
        }
        let mut names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), list.len(), "names are unique");
    }
}
