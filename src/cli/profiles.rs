//! The Python qcc's profile commands, scriptable: `init`, `add`, `list`, `remove`, `status`,
//! `config set`, `use` (and `qcc` with no arguments), which launches Claude Code.

use std::io::IsTerminal;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::mask::mask_key;
use crate::store::config::ConfigFile;

pub fn init() -> Result<()> {
    let mut config = ConfigFile::edit_user()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    if config.init(&user)? {
        config.save()?;
        println!("created {} (local storage)", config.path().display());
    } else {
        println!("{} already exists; left as it is", config.path().display());
    }
    Ok(())
}

pub fn add(name: &str, url: &str, key: &str, description: &str) -> Result<()> {
    let parsed = crate::store::url::BaseUrl::parse(url).map_err(Error::Invalid)?;
    super::commands::url_hints(&parsed, false);
    if name.is_empty() || name.starts_with('-') || name.contains('/') {
        return Err(Error::Invalid(format!("'{name}' is not a usable profile name")));
    }
    let mut config = ConfigFile::edit_user()?;
    let default = config.add_profile(name, url.trim_end_matches('/'), key, description)?;
    config.save()?;
    println!(
        "added profile '{name}' ({}, key {}){}",
        url,
        mask_key(key),
        if default { ", now the default" } else { "" }
    );
    Ok(())
}

pub fn list(json_out: bool) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let profiles = config.profiles_info();
    if json_out {
        let list: Vec<Value> = profiles
            .iter()
            .map(|p| {
                json!({"name": p.name, "description": p.description, "default": p.default, "last_used": p.last_used,
                       "type": if p.cluster { "cluster" } else { "single" }, "endpoints": p.endpoints})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"config": config.path().display().to_string(), "profiles": list}))
                .unwrap_or_default()
        );
        return Ok(());
    }
    if profiles.is_empty() {
        println!(
            "no profiles yet: add endpoints with `qcc endpoint add CLUSTER --url URL --key-file PATH` \
             (two or more fail over), or one profile alone with `qcc add NAME --url URL --key-file PATH`"
        );
        return Ok(());
    }
    println!("{:<2}{:<20} {:<8} {:>9} {:<26} DESCRIPTION", "", "NAME", "TYPE", "ENDPOINTS", "LAST USED");
    for p in &profiles {
        println!(
            "{:<2}{:<20} {:<8} {:>9} {:<26} {}",
            if p.default { "*" } else { "" },
            p.name,
            if p.cluster { "cluster" } else { "single" },
            p.endpoints,
            p.last_used.as_deref().unwrap_or("never"),
            p.description
        );
    }
    Ok(())
}

pub fn remove(name: &str, yes: bool, force: bool) -> Result<()> {
    let mut config = ConfigFile::edit_user()?;
    config.cluster(name)?; // an unknown name fails before any question
    let home = crate::store::fsutil::qcc_home();
    let mut priorities = crate::store::priority::Priorities::edit(&home)?;
    let levels = priorities.levels_of(name);
    let mut refs: Vec<String> = config.references_to(name).iter().map(ToString::to_string).collect();
    refs.extend(levels.iter().map(|l| format!("priority.json ({l})")));
    if !refs.is_empty() && !force {
        return Err(Error::Invalid(format!(
            "cluster '{name}' is named by {}: remove those first, or give --force to remove them too",
            refs.join(", ")
        )));
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Failed(format!("refusing to remove '{name}' without --yes (stdin is not a terminal)")));
        }
        eprint!("remove profile '{name}'? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Error::Failed("not removed".into()));
        }
    }
    config.drop_references_to(name)?;
    let default = config.remove_profile(name)?;
    config.save()?;
    if !levels.is_empty() {
        priorities.forget(name);
        priorities.save()?;
    }
    println!("removed profile '{name}'; default is now {}", default.as_deref().unwrap_or("none"));
    if !refs.is_empty() {
        println!("removed what named it: {}", refs.join(", "));
        // A running proxy that served those routes or chains takes the change now.
        if let Some((_, main)) = super::control::serving(&home) {
            if main != name {
                super::commands::apply_live(&main);
            }
        }
    }
    Ok(())
}

pub fn status(home: &Path, json_out: bool) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let settings = config.settings();
    let proxy = super::control::serving(home);
    let out = json!({
        "config": config.path().display().to_string(),
        "user_id": config.user_id(),
        "storage_backend": settings.get("storage_backend_type"),
        "profiles": config.profile_names().len(),
        "default_profile": config.default_profile(),
        "proxy": proxy.as_ref().map(|(info, cluster)| json!({"pid": info.pid, "url": info.base_url(), "cluster": cluster})),
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    println!("config:   {}", config.path().display());
    println!("user:     {}", config.user_id().unwrap_or("-"));
    println!("storage:  {}", settings.get("storage_backend_type").and_then(Value::as_str).unwrap_or("-"));
    println!("profiles: {} (default: {})", config.profile_names().len(), config.default_profile().unwrap_or("none"));
    match proxy {
        Some((info, cluster)) => {
            println!("proxy:    running, pid {}, {} serving '{cluster}'", info.pid, info.base_url())
        }
        None => println!("proxy:    not running"),
    }
    Ok(())
}

/// `qcc config set KEY VALUE`: `settings.KEY`; `true`, `false`, `null` and numbers are typed.
pub fn config_set(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::Invalid(format!("'{key}' is not a settings key (letters, digits, _)")));
    }
    let mut config = ConfigFile::edit_user()?;
    if key == "default_profile" {
        config.set_default(value)?;
    } else {
        let typed = match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            v => v.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(v.to_string())),
        };
        config.set_setting(key, typed)?;
    }
    config.save()?;
    println!("settings.{key} = {value}");
    Ok(())
}
