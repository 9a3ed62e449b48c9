//! Merging the folder's config into this machine's, by cluster and endpoint id.
//!
//! The units are each endpoint of a cluster (`profile` + endpoint `id`) and each profile without
//! endpoints (the Python qcc's single profiles, whole). A unit's fingerprint is the SHA-256 of its
//! JSON with keys sorted, without `last_used` (which `qcc use` changes). Against the
//! fingerprints of the last sync (the base):
//! - the same on both sides, or changed on one side only: that side's;
//! - changed on both sides: a conflict, reported; `--theirs` takes the folder's, `--ours` keeps
//!   ours, otherwise the newer side (the folder's push time against this config's last write);
//! - on one side only: new there (added), or removed there since the last sync (removed), unless
//!   the other side changed it meanwhile (then kept, reported).
//!
//! Everything else of the local document stays as it is; settings the folder has and this
//! machine does not are added.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// The newer side wins a conflict.
    Newer,
    Theirs,
    Ours,
}

#[derive(Debug, Default)]
pub struct Report {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// Conflicts, each with how it was settled.
    pub conflicts: Vec<String>,
    /// Endpoints given another name here (their name was taken).
    pub renamed: Vec<String>,
}

/// A unit's key: `profile` alone, or `profile` TAB endpoint id.
fn unit_key(profile: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{profile}\t{id}"),
        None => profile.to_string(),
    }
}

/// How a unit is named in a pull's report: `cluster/name (id)` for an endpoint (its name, else
/// its URL's host), the profile's name for a profile.
fn label(key: &str, unit: Option<&Value>) -> String {
    match key.split_once('\t') {
        Some((p, id)) => {
            let named = unit.and_then(|u| u.pointer("/metadata/name")).and_then(Value::as_str);
            let host =
                || unit.and_then(|u| u.get("base_url")).and_then(Value::as_str).map(crate::store::names::host_of);
            match named.map(str::to_string).or_else(host) {
                Some(n) if n != id => format!("{p}/{n} ({id})"),
                _ => format!("{p}/{id}"),
            }
        }
        None => key.to_string(),
    }
}

/// Every unit of a document with its value.
pub fn units(doc: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (name, p) in doc.get("profiles").and_then(Value::as_object).into_iter().flatten() {
        match p.get("endpoints").and_then(Value::as_array) {
            Some(eps) => {
                for e in eps {
                    if let Some(id) = e.get("id").and_then(Value::as_str) {
                        out.insert(unit_key(name, Some(id)), e.clone());
                    }
                }
            }
            None => {
                out.insert(unit_key(name, None), p.clone());
            }
        }
    }
    out
}

/// The fingerprint of a unit (keys sorted, `last_used` left out).
pub fn fingerprint(v: &Value) -> String {
    fn canon(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().filter(|(k, _)| k.as_str() != "last_used").map(|(k, v)| (k, canon(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    crate::store::bytes::hex(&crate::store::bytes::sha256(canon(v).to_string().as_bytes()))
}

/// Each unit's fingerprint (what a sync state keeps as its base).
pub fn fingerprints(doc: &Value) -> BTreeMap<String, String> {
    units(doc).iter().map(|(k, v)| (k.clone(), fingerprint(v))).collect()
}

/// Merge `theirs` (the folder's, secrets opened) into `ours`. `folder_newer`: the folder was
/// pushed after this config was last written (decides conflicts under `Prefer::Newer`).
pub fn merge(
    ours: &Value,
    theirs: &Value,
    base: &BTreeMap<String, String>,
    prefer: Prefer,
    folder_newer: bool,
) -> (Value, Report) {
    let (mine, other) = (units(ours), units(theirs));
    let mut out = ours.clone();
    let mut report = Report::default();
    let keys: BTreeSet<&String> = mine.keys().chain(other.keys()).collect();
    for key in keys {
        let (l, f, b) = (mine.get(key), other.get(key), base.get(key));
        let fl = l.map(fingerprint);
        let ff = f.map(fingerprint);
        let take_theirs = match (&fl, &ff) {
            (Some(a), Some(c)) if a == c => continue,
            (Some(a), Some(c)) => {
                let (ours_changed, theirs_changed) = (b != Some(a), b != Some(c));
                if !theirs_changed {
                    continue; // changed here only
                }
                if !ours_changed {
                    report.updated.push(label(key, f.or(l)));
                    Some(true)
                } else {
                    let take = match prefer {
                        Prefer::Theirs => true,
                        Prefer::Ours => false,
                        Prefer::Newer => folder_newer,
                    };
                    let how = match (prefer, take) {
                        (Prefer::Newer, true) => "took the folder's (newer)",
                        (Prefer::Newer, false) => "kept this machine's (newer)",
                        (_, true) => "took the folder's (--theirs)",
                        (_, false) => "kept this machine's (--ours)",
                    };
                    report
                        .conflicts
                        .push(format!("{}: changed on both sides since the last sync; {how}", label(key, f.or(l))));
                    Some(take)
                }
            }
            (Some(a), None) => match b {
                None => continue, // new here
                Some(b) if b == a => {
                    report.removed.push(label(key, f.or(l)));
                    remove_unit(&mut out, key);
                    continue;
                }
                Some(_) => {
                    report
                        .conflicts
                        .push(format!("{}: removed in the folder, changed here; kept", label(key, f.or(l))));
                    continue;
                }
            },
            (None, Some(c)) => match b {
                None => {
                    report.added.push(label(key, f.or(l)));
                    Some(true)
                }
                Some(b) if b == c => continue, // removed here since the last sync
                Some(_) => {
                    report.conflicts.push(format!(
                        "{}: removed here, changed in the folder; took the folder's",
                        label(key, f.or(l))
                    ));
                    Some(true)
                }
            },
            (None, None) => continue,
        };
        if take_theirs == Some(true) {
            if let Some(note) = f.and_then(|v| put_unit(&mut out, theirs, key, v)) {
                report.renamed.push(note);
            }
        }
    }
    merge_settings(&mut out, theirs);
    if out.get("user_id").is_none_or(Value::is_null) {
        if let Some(u) = theirs.get("user_id") {
            obj(&mut out).insert("user_id".into(), u.clone());
        }
    }
    (out, report)
}

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("made an object above")
}

fn profiles_mut(doc: &mut Value) -> &mut Map<String, Value> {
    let root = obj(doc);
    if !root.get("profiles").is_some_and(Value::is_object) {
        root.insert("profiles".into(), Value::Object(Map::new()));
    }
    root.get_mut("profiles").and_then(Value::as_object_mut).expect("made an object above")
}

/// Put the folder's unit `key` (value `v`) into `doc`: replace it in place, or append it (a new
/// cluster gets the folder's profile fields, without the folder's other endpoints).
/// Returns a note when the endpoint had to be renamed.
fn put_unit(doc: &mut Value, theirs: &Value, key: &str, v: &Value) -> Option<String> {
    let profiles = profiles_mut(doc);
    match key.split_once('\t') {
        None => {
            profiles.insert(key.to_string(), v.clone());
            None
        }
        Some((name, id)) => {
            if !profiles.get(name).is_some_and(|p| p.get("endpoints").is_some_and(Value::is_array)) {
                let mut fresh = theirs.pointer(&format!("/profiles/{}", esc(name))).cloned().unwrap_or(Value::Null);
                obj(&mut fresh).insert("endpoints".into(), Value::Array(Vec::new()));
                profiles.insert(name.to_string(), fresh);
            }
            let p = profiles.get_mut(name).and_then(Value::as_object_mut)?;
            let eps = p.get_mut("endpoints").and_then(Value::as_array_mut)?;
            let mut v = v.clone();
            // A name another endpoint of the cluster has (two machines named theirs alike) gets a
            // suffix: names must stay unique in a cluster.
            let name_of = |e: &Value| e.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string);
            let taken = |n: &str, eps: &[Value]| {
                eps.iter().any(|e| e.get("id").and_then(Value::as_str) != Some(id) && name_of(e).as_deref() == Some(n))
            };
            let mut renamed = None;
            if let Some(n) = name_of(&v).filter(|n| taken(n, eps)) {
                let fresh = (2..).map(|i| format!("{n}-{i}")).find(|c| !taken(c, eps)).unwrap_or_default();
                v["metadata"]["name"] = Value::String(fresh.clone());
                renamed = Some(format!("{name}/{id}: named '{fresh}' here ('{n}' is another endpoint's)"));
            }
            match eps.iter_mut().find(|e| e.get("id").and_then(Value::as_str) == Some(id)) {
                Some(slot) => *slot = v,
                None => eps.push(v),
            }
            crate::store::config::mirror_first(p);
            renamed
        }
    }
}

fn remove_unit(doc: &mut Value, key: &str) {
    let profiles = profiles_mut(doc);
    match key.split_once('\t') {
        None => {
            profiles.remove(key);
        }
        Some((name, id)) => {
            if let Some(p) = profiles.get_mut(name).and_then(Value::as_object_mut) {
                if let Some(eps) = p.get_mut("endpoints").and_then(Value::as_array_mut) {
                    eps.retain(|e| e.get("id").and_then(Value::as_str) != Some(id));
                }
                crate::store::config::mirror_first(p);
            }
        }
    }
}

/// Settings this machine does not have are taken from the folder; its own stay.
fn merge_settings(out: &mut Value, theirs: &Value) {
    let Some(t) = theirs.get("settings").and_then(Value::as_object) else { return };
    let root = obj(out);
    if !root.get("settings").is_some_and(Value::is_object) {
        root.insert("settings".into(), Value::Object(Map::new()));
    }
    let Some(mine) = root.get_mut("settings").and_then(Value::as_object_mut) else { return };
    for (k, v) in t {
        if !mine.contains_key(k) {
            mine.insert(k.clone(), v.clone());
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(eps: Value) -> Value {
        json!({"settings": {"default_profile": "w"}, "profiles": {"w": {"name": "w", "endpoints": eps}}})
    }

    #[test]
    fn one_sided_changes_merge_and_both_sided_ones_are_reported() {
        let e = |id: &str, url: &str| json!({"id": id, "base_url": url, "api_key": "k"});
        let base_doc = doc(json!([e("a", "https://a"), e("b", "https://b"), e("c", "https://c")]));
        let base = fingerprints(&base_doc);
        // Here: a changed, d added. There: b changed, c removed, e added, a changed too.
        let ours =
            doc(json!([e("a", "https://a-here"), e("b", "https://b"), e("c", "https://c"), e("d", "https://d")]));
        let theirs = doc(json!([e("a", "https://a-there"), e("b", "https://b-there"), e("e", "https://e")]));
        let (out, r) = merge(&ours, &theirs, &base, Prefer::Newer, false);
        let urls: Vec<&str> = out["profiles"]["w"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["base_url"].as_str().unwrap())
            .collect();
        assert_eq!(urls, ["https://a-here", "https://b-there", "https://d", "https://e"]);
        assert_eq!(
            (r.updated.as_slice(), r.added.as_slice(), r.removed.as_slice()),
            (&["w/b-there (b)".to_string()][..], &["w/e".to_string()][..], &["w/c".to_string()][..]),
            "named by name (here the URL's host) and id"
        );
        assert_eq!(r.conflicts.len(), 1);
        assert!(
            r.conflicts[0].starts_with("w/a-there (a): changed on both sides")
                && r.conflicts[0].contains("kept this machine's")
        );
        assert_eq!(out["profiles"]["w"]["base_url"], "https://a-here", "the profile mirrors its first endpoint");
        let (out, _) = merge(&ours, &theirs, &base, Prefer::Theirs, false);
        assert_eq!(out["profiles"]["w"]["endpoints"][0]["base_url"], "https://a-there");
        // Nothing known yet (a first sync): different on both sides is a conflict, the newer wins.
        let (out, r) = merge(&ours, &theirs, &BTreeMap::new(), Prefer::Newer, true);
        assert_eq!(out["profiles"]["w"]["endpoints"][0]["base_url"], "https://a-there");
        assert!(r.removed.is_empty(), "nothing is removed without a base");
    }

    #[test]
    fn a_new_cluster_and_single_profiles_come_over_and_settings_are_added() {
        let ours = json!({"settings": {"default_profile": "mine"}, "profiles": {}});
        let theirs = json!({"user_id": "cloud:me", "settings": {"default_profile": "w", "test_model": "m"},
            "profiles": {"w": {"name": "w", "description": "team", "endpoints": [{"id": "a", "base_url": "https://a", "api_key": "k"}]},
                         "solo": {"name": "solo", "base_url": "https://s", "api_key": "ks", "last_used": "x"}}});
        let (out, r) = merge(&ours, &theirs, &BTreeMap::new(), Prefer::Newer, false);
        assert_eq!(r.added.len(), 2);
        assert_eq!(out["profiles"]["w"]["description"], "team");
        assert_eq!(out["profiles"]["w"]["api_key"], "k");
        assert_eq!(out["profiles"]["solo"]["base_url"], "https://s");
        assert_eq!(out["settings"]["default_profile"], "mine", "this machine's own settings stay");
        assert_eq!(out["settings"]["test_model"], "m");
        assert_eq!(out["user_id"], "cloud:me");
        let mut used = theirs["profiles"]["solo"].clone();
        used["last_used"] = json!("later");
        assert_eq!(fingerprint(&used), fingerprint(&theirs["profiles"]["solo"]), "last_used is not a change");
    }
}
