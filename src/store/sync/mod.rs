//! Config sync through a folder that another program syncs (a cloud drive, a git checkout, a
//! mounted share): `DIR/fastcc_config.json`, the Python qcc's cloud-folder file. It is the
//! `cache.json` document (`user_id`, `settings`, `profiles`, and every other field kept) plus
//! the Python backend's `last_sync` and `sync_source`, and ours: `qcc_sync` (format, machine,
//! time, how secrets are sealed) and `qcc_client_keys` (the client keys file's entries).
//!
//! Secrets are the API keys (each endpoint's and each profile's `api_key`) and the client keys:
//! sealed one by one with a passphrase (`seal.rs`) or, only when asked, left in plain text.
//! `merge.rs` merges a folder document into the local one by cluster and endpoint id.
//! `$QCC_HOME/sync_state.json` remembers this machine's last push and pull and what the folder
//! held then (each unit's fingerprint), so a change is told from a change on both sides.

pub mod merge;
pub mod seal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use seal::Sealer;

pub const FILE_NAME: &str = "fastcc_config.json";
/// The `qcc_sync.format` this build writes and reads; a newer one is refused.
pub const FORMAT: u64 = 1;
/// A folder file that does not parse is read again this many times, this far apart: a sync
/// program may be writing it.
const READ_TRIES: u32 = 6;
const READ_PAUSE: Duration = Duration::from_millis(500);

/// The folders the Python qcc looks for (`fastcc/storage/cloud_file.py`), in its order.
pub fn python_dirs(home: &Path) -> Vec<PathBuf> {
    let rel: &[&str] = if cfg!(target_os = "macos") {
        &[
            "Library/Mobile Documents/com~apple~CloudDocs/FastCC",
            "Dropbox/FastCC",
            "OneDrive/FastCC",
            "Google Drive/FastCC",
        ]
    } else {
        &["Dropbox/FastCC", "OneDrive/FastCC", "GoogleDrive/FastCC", "Nextcloud/FastCC", "ownCloud/FastCC"]
    };
    rel.iter().map(|r| home.join(r)).collect()
}

/// The first of the Python qcc's folders whose cloud drive is there (its parent exists).
pub fn python_default(home: &Path) -> Option<PathBuf> {
    python_dirs(home).into_iter().find(|d| d.parent().is_some_and(Path::is_dir))
}

/// The folder file: `None` when there is none. A file that does not parse is read again a few
/// times (a sync program may be mid-write) and then refused, never taken as empty.
pub fn read_folder(path: &Path) -> Result<Option<Value>, String> {
    let mut last = String::new();
    for attempt in 0..READ_TRIES {
        if attempt > 0 {
            std::thread::sleep(READ_PAUSE);
        }
        match crate::store::fsutil::read_file(path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) if v.is_object() => return Ok(Some(v)),
                Ok(_) => return Err(format!("{}: not a JSON object", path.display())),
                Err(e) => last = e.to_string(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!(
        "{}: not complete JSON after {READ_TRIES} reads ({last}); a sync program may still be writing it, \
         try again in a moment",
        path.display()
    ))
}

/// Where each secret sits in a document: (JSON pointer, place name for sealing).
fn secret_places(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let esc = |s: &str| s.replace('~', "~0").replace('/', "~1");
    if let Some(profiles) = doc.get("profiles").and_then(Value::as_object) {
        for (name, p) in profiles {
            if p.get("api_key").is_some_and(Value::is_string) {
                out.push((format!("/profiles/{}/api_key", esc(name)), format!("profiles/{name}/api_key")));
            }
            for (i, e) in p.get("endpoints").and_then(Value::as_array).into_iter().flatten().enumerate() {
                if e.get("api_key").is_some_and(Value::is_string) {
                    let id = e.get("id").and_then(Value::as_str).unwrap_or("");
                    out.push((
                        format!("/profiles/{}/endpoints/{i}/api_key", esc(name)),
                        format!("profiles/{name}/endpoints/{id}/api_key"),
                    ));
                }
            }
        }
    }
    out
}

/// Whether the document holds a secret worth protecting (a non-empty key, or client keys).
pub fn has_secrets(doc: &Value) -> bool {
    let keys = doc.get("qcc_client_keys").and_then(Value::as_array).is_some_and(|k| !k.is_empty());
    keys || secret_places(doc)
        .iter()
        .any(|(p, _)| doc.pointer(p).and_then(Value::as_str).is_some_and(|s| !s.is_empty()))
}

/// Seal every secret of `doc` in place (the client keys as one value).
pub fn seal_doc(doc: &mut Value, s: &Sealer) -> Result<(), String> {
    for (ptr, place) in secret_places(doc) {
        if let Some(v) = doc.pointer_mut(&ptr) {
            if let Some(plain) = v.as_str().filter(|p| !p.is_empty() && !seal::is_sealed(p)) {
                *v = json!(s.seal(plain, &place)?);
            }
        }
    }
    if let Some(keys) = doc.get_mut("qcc_client_keys") {
        if keys.is_array() {
            *keys = json!(s.seal(&keys.to_string(), "qcc_client_keys")?);
        }
    }
    Ok(())
}

/// Open every sealed secret of `doc` in place; the error names the first that does not open.
pub fn open_doc(doc: &mut Value, s: &Sealer) -> Result<(), String> {
    for (ptr, place) in secret_places(doc) {
        if let Some(v) = doc.pointer_mut(&ptr) {
            if let Some(sealed) = v.as_str().filter(|x| seal::is_sealed(x)) {
                let plain =
                    s.open(sealed, &place).ok_or_else(|| format!("{place} does not decrypt: the file was changed"))?;
                *v = json!(plain);
            }
        }
    }
    if let Some(keys) = doc.get_mut("qcc_client_keys") {
        if let Some(sealed) = keys.as_str() {
            let plain =
                s.open(sealed, "qcc_client_keys").ok_or("the client keys do not decrypt: the file was changed")?;
            *keys = serde_json::from_str(&plain).map_err(|_| "the client keys do not decrypt to a list".to_string())?;
        }
    }
    Ok(())
}

/// Where the document's authentication tag is kept.
const MAC_POINTER: &str = "/qcc_sync/encryption/mac";

/// The canonical form of `doc` that its tag covers: compact JSON, every object's keys sorted,
/// the tag itself left out (so a sync program that reorders or reindents the file breaks
/// nothing, and any change of a value does).
fn canonical(doc: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut v = doc.clone();
    if let Some(enc) = v.pointer_mut("/qcc_sync/encryption").and_then(Value::as_object_mut) {
        enc.remove("mac");
    }
    serde_json::to_vec(&sorted(&v)).unwrap_or_default()
}

/// Authenticate the whole (sealed) document: its tag goes in `qcc_sync.encryption.mac`.
pub fn sign_doc(doc: &mut Value, s: &Sealer) -> Result<(), String> {
    let tag = s.mac(&canonical(doc));
    let enc = doc
        .pointer_mut("/qcc_sync/encryption")
        .and_then(Value::as_object_mut)
        .ok_or("no qcc_sync.encryption to sign")?;
    enc.insert("mac".into(), json!(tag));
    Ok(())
}

/// Whether the document is unchanged since it was signed with this passphrase.
pub fn verify_doc(doc: &Value, s: &Sealer) -> Result<(), String> {
    let tag = doc.pointer(MAC_POINTER).and_then(Value::as_str).ok_or(
        "its encrypted keys carry no signature of the whole file (pushed by an older qcc, or changed): push again from a machine with this qcc",
    )?;
    if !s.verify(&canonical(doc), tag) {
        return Err("the file was changed by someone without the passphrase (its signature does not match)".into());
    }
    Ok(())
}

/// Whether any secret of `doc` is sealed.
pub fn any_sealed(doc: &Value) -> bool {
    doc.get("qcc_client_keys").is_some_and(Value::is_string)
        || secret_places(doc).iter().any(|(p, _)| doc.pointer(p).and_then(Value::as_str).is_some_and(seal::is_sealed))
}

/// This machine's record of its syncs: `$QCC_HOME/sync_state.json`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncState {
    pub dir: Option<PathBuf>,
    pub last_push: Option<String>,
    pub last_pull: Option<String>,
    /// The folder file as of the last push or pull: who wrote it and when.
    pub folder_machine: Option<String>,
    pub folder_pushed_at: Option<String>,
    /// Each unit's fingerprint as of the last push or pull (`merge::units`).
    pub base: BTreeMap<String, String>,
    /// This machine has pushed or pulled an encrypted document: from now on a plain or
    /// unsigned one is refused (someone may have stripped the encryption).
    pub encrypted: bool,
}

impl SyncState {
    pub fn path(home: &Path) -> PathBuf {
        home.join("sync_state.json")
    }

    /// Missing or unreadable: a first sync (nothing known).
    pub fn load(home: &Path) -> SyncState {
        crate::store::fsutil::read_file(&SyncState::path(home))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, home: &Path) -> crate::error::Result<()> {
        let path = SyncState::path(home);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| crate::error::Error::Failed(e.to_string()))?;
        crate::store::fsutil::atomic_write(&path, &bytes)
            .map_err(|e| crate::error::Error::io(format!("writing {}", path.display()), e))
    }
}

/// This machine's name (for "pushed by").
pub fn machine_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "unknown".into()
    } else {
        crate::mask::clip(&name, 64).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `v` with every object's keys in reverse order.
    fn sorted_rev(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(m.iter().rev().map(|(k, x)| (k.clone(), sorted_rev(x))).collect()),
            Value::Array(a) => Value::Array(a.iter().map(sorted_rev).collect()),
            o => o.clone(),
        }
    }

    #[test]
    fn secrets_are_sealed_in_place_and_open_again() {
        let doc = json!({"user_id": "local:me", "settings": {"a": 1}, "profiles": {
            "w/x": {"api_key": "sk-p", "endpoints": [{"id": "e1", "base_url": "https://a", "api_key": "sk-1"},
                                                     {"id": "e2", "base_url": "https://b", "api_key": ""}]},
            "single": {"base_url": "https://s", "api_key": "sk-s"}},
            "qcc_client_keys": [{"name": "bob", "sha256": "00"}]});
        assert!(has_secrets(&doc) && !any_sealed(&doc));
        let s = Sealer::new(b"pw", b"saltsaltsaltsalt", 1000).unwrap();
        let mut sealed = doc.clone();
        seal_doc(&mut sealed, &s).unwrap();
        let text = sealed.to_string();
        assert!(!text.contains("sk-1") && !text.contains("sk-s") && !text.contains("bob") && any_sealed(&sealed));
        assert!(text.contains("https://a") && text.contains("local:me"), "the rest stays readable");
        assert_eq!(sealed["profiles"]["w/x"]["endpoints"][1]["api_key"], "", "an empty key stays empty");
        let mut opened = sealed.clone();
        open_doc(&mut opened, &s).unwrap();
        assert_eq!(opened, doc);
        // The whole document is signed: any value changed, or the signature taken away, fails;
        // another key order does not.
        sealed["qcc_sync"] = json!({"format": 1, "encryption": {"cipher": "AES-256-GCM"}});
        sign_doc(&mut sealed, &s).unwrap();
        verify_doc(&sealed, &s).unwrap();
        let reordered: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&sorted_rev(&sealed)).unwrap()).unwrap();
        verify_doc(&reordered, &s).unwrap();
        let mut repointed = sealed.clone();
        repointed["profiles"]["w/x"]["endpoints"][0]["base_url"] = json!("https://evil.example");
        assert!(verify_doc(&repointed, &s).is_err());
        let mut unsigned = sealed.clone();
        unsigned["qcc_sync"]["encryption"].as_object_mut().unwrap().remove("mac");
        assert!(verify_doc(&unsigned, &s).is_err());
        assert!(verify_doc(&sealed, &Sealer::new(b"other", b"saltsaltsaltsalt", 1000).unwrap()).is_err());
        // Two endpoints' keys swapped: neither opens.
        let mut swapped = sealed.clone();
        let k1 = swapped["profiles"]["w/x"]["endpoints"][0]["api_key"].clone();
        swapped["profiles"]["single"]["api_key"] = k1;
        assert!(open_doc(&mut swapped, &s).unwrap_err().contains("profiles/single/api_key"));
    }
}
