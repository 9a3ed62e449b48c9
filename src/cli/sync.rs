//! `qcc sync push|pull|status`: the config through a folder another program syncs
//! (`store/sync/`). Push writes `DIR/fastcc_config.json` in the Python qcc's shape; pull merges
//! it into this machine's config (a backup first, then an atomic write, then the running proxy
//! re-reads its cluster); status says where things stand.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::config::ConfigFile;
use crate::store::sync::merge::{self, Prefer};
use crate::store::sync::seal::{self, Sealer};
use crate::store::sync::{self as folder, SyncState, FILE_NAME, FORMAT};

#[derive(Debug, Clone, Default)]
pub struct SyncArgs {
    pub dir: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub plaintext: bool,
    /// Take client keys with admin rights from the folder (`pull`).
    pub admin_keys: bool,
    pub theirs: bool,
    pub ours: bool,
    pub json: bool,
}

impl SyncArgs {
    fn prefer(&self) -> Prefer {
        match (self.theirs, self.ours) {
            (true, _) => Prefer::Theirs,
            (_, true) => Prefer::Ours,
            _ => Prefer::Newer,
        }
    }
}

/// The folder: `--dir`, else the config's `settings.sync_dir`, else the Python qcc's first cloud
/// drive folder. With it, how it was chosen.
fn folder_of(args: &SyncArgs, config: &ConfigFile) -> Result<(PathBuf, &'static str)> {
    if let Some(d) = &args.dir {
        return Ok((d.clone(), "--dir"));
    }
    if let Some(d) = config.document().pointer("/settings/sync_dir").and_then(Value::as_str).filter(|d| !d.is_empty()) {
        return Ok((PathBuf::from(d), "settings.sync_dir"));
    }
    if let Some(d) = folder::python_default(&crate::store::fsutil::home_dir()) {
        return Ok((d, "the Python qcc's cloud folder"));
    }
    Err(Error::Invalid(
        "no sync folder: give --dir DIR (a folder a cloud drive, git or a share keeps in sync), or set it for good \
         with `qcc config set sync_dir DIR`"
            .into(),
    ))
}

fn check_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::Invalid(format!("{}: no such folder (create it, or give --dir)", dir.display())));
    }
    Ok(())
}

/// The passphrase: `--passphrase-file`, else `QCC_SYNC_PASSPHRASE`.
fn passphrase(args: &SyncArgs) -> Result<Option<String>> {
    let p = match &args.passphrase_file {
        Some(f) => Some(
            crate::store::fsutil::read_text(f)
                .map_err(|e| Error::BadFile { path: f.clone(), problem: e.to_string() })?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        None => std::env::var("QCC_SYNC_PASSPHRASE").ok(),
    };
    match p {
        Some(p) if p.is_empty() => Err(Error::Invalid("the sync passphrase is empty".into())),
        other => Ok(other),
    }
}

/// What `qcc_sync` says about the folder file: (format, machine, pushed_at).
fn folder_meta(doc: &Value) -> (u64, Option<String>, Option<String>) {
    let m = doc.get("qcc_sync");
    let s = |k: &str| m.and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_string);
    (m.and_then(|m| m.get("format")).and_then(Value::as_u64).unwrap_or(0), s("machine"), s("pushed_at"))
}

fn check_format(path: &Path, doc: &Value) -> Result<()> {
    let (format, ..) = folder_meta(doc);
    if format > FORMAT {
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            problem: format!("written by a newer qcc (sync format {format}; this one reads {FORMAT}): update qcc"),
        });
    }
    Ok(())
}

pub fn push(home: &Path, args: &SyncArgs) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let (dir, _) = folder_of(args, &config)?;
    if args.dir.is_none() && !dir.exists() && dir.parent().is_some_and(Path::is_dir) {
        // The Python qcc makes its FastCC folder inside the cloud drive the same way.
        crate::store::fsutil::ensure_dir(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    check_dir(&dir)?;
    let path = dir.join(FILE_NAME);
    let mut state = SyncState::load(home);
    // Last writer wins; say so when this replaces another machine's push we have not pulled.
    if let Some(existing) = folder::read_folder(&path).map_err(Error::Failed)? {
        check_format(&path, &existing)?;
        let (_, machine, pushed_at) = folder_meta(&existing);
        if pushed_at.is_some() && pushed_at != state.folder_pushed_at {
            eprintln!(
                "qcc: note: the folder had a push this machine has not pulled ({} at {}); it is replaced — \
                 that machine's next `qcc sync pull` reports what differs",
                machine.as_deref().unwrap_or("another machine"),
                pushed_at.as_deref().unwrap_or("?")
            );
        }
    }
    let plain = config.document().clone();
    let mut doc = plain.clone();
    let keys = crate::store::keys::KeyFile::load(&crate::store::keys::path(home))?;
    let root = doc.as_object_mut().ok_or_else(|| Error::Failed("config is not a JSON object".into()))?;
    if !keys.keys.is_empty() {
        root.insert("qcc_client_keys".into(), serde_json::to_value(&keys.keys).unwrap_or(Value::Null));
    }
    let pushed_at = format!("{}Z", crate::store::timefmt::iso(SystemTime::now()));
    let machine = folder::machine_name();
    let secrets = folder::has_secrets(&doc);
    let mut signer = None;
    let encryption = match (passphrase(args)?, secrets) {
        (Some(p), true) => {
            let salt = crate::store::bytes::random::<16>().map_err(Error::Failed)?;
            let sealer = Sealer::new(p.as_bytes(), &salt, seal::ITERATIONS).map_err(Error::Failed)?;
            folder::seal_doc(&mut doc, &sealer).map_err(Error::Failed)?;
            let enc = json!({"cipher": seal::CIPHER, "kdf": seal::KDF, "iterations": seal::ITERATIONS,
                   "salt": crate::store::bytes::hex(&salt), "check": sealer.check_value().map_err(Error::Failed)?});
            signer = Some(sealer);
            enc
        }
        (None, true) if !args.plaintext => {
            return Err(Error::Invalid(format!(
                "refusing to write API keys in plain text to {}: set QCC_SYNC_PASSPHRASE or give --passphrase-file \
                 (keys then sealed with AES-256-GCM), or --plaintext (what the Python qcc can read)",
                path.display()
            )));
        }
        _ => Value::Null,
    };
    let root = doc.as_object_mut().ok_or_else(|| Error::Failed("config is not a JSON object".into()))?;
    root.insert("last_sync".into(), json!(crate::store::timefmt::iso(SystemTime::now())));
    root.insert("sync_source".into(), json!("fastcc"));
    // `based_on`: the folder version this machine last saw; a machine whose push this one
    // replaces without having pulled it learns so at its next pull.
    root.insert(
        "qcc_sync".into(),
        json!({"format": FORMAT, "machine": machine, "pushed_at": pushed_at, "based_on": state.folder_pushed_at,
               "encryption": encryption}),
    );
    // Signed last: the signature covers everything above, the secrets' places and URLs included.
    if let Some(sealer) = &signer {
        folder::sign_doc(&mut doc, sealer).map_err(Error::Failed)?;
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Failed(e.to_string()))?;
    bytes.push(b'\n');
    crate::store::fsutil::atomic_write(&path, &bytes)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    state.dir = Some(dir.clone());
    state.last_push = Some(pushed_at.clone());
    state.folder_machine = Some(machine);
    state.folder_pushed_at = Some(pushed_at);
    state.base = merge::fingerprints(&plain);
    state.encrypted |= signer.is_some();
    state.save(home)?;
    let units = state.base.len();
    let how = if encryption.is_null() {
        if secrets {
            "keys in plain text (--plaintext)"
        } else {
            "no keys in it"
        }
    } else {
        "keys encrypted (AES-256-GCM)"
    };
    println!("pushed {units} endpoints and profiles to {} ({how})", path.display());
    Ok(())
}

/// The folder file with its secrets opened, checked: the one-line error of a wrong passphrase,
/// a tampered or newer file, or a plain one where this machine has synced an encrypted one
/// (`state`). True with it when it was encrypted.
fn read_open(path: &Path, args: &SyncArgs, state: &SyncState) -> Result<(Value, bool)> {
    let bad = |problem: String| Error::BadFile { path: path.to_path_buf(), problem };
    let mut doc = folder::read_folder(path).map_err(Error::Failed)?.ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no synced config yet (push one from a machine with `qcc sync push`)",
            path.display()
        ))
    })?;
    check_format(path, &doc)?;
    let claims = doc.pointer("/qcc_sync/encryption").is_some_and(|e| !e.is_null());
    if !claims && !folder::any_sealed(&doc) {
        if state.encrypted && !args.plaintext {
            return Err(bad(
                "not encrypted, but this machine has synced an encrypted one: someone may have stripped the \
                 encryption (nothing was changed; --plaintext takes it anyway)"
                    .into(),
            ));
        }
        return Ok((doc, false));
    }
    let Some(p) = passphrase(args)? else {
        return Err(Error::Invalid(format!(
            "{}: its keys are encrypted; set QCC_SYNC_PASSPHRASE or give --passphrase-file",
            path.display()
        )));
    };
    let enc = doc.pointer("/qcc_sync/encryption").cloned().unwrap_or(Value::Null);
    let salt = enc
        .get("salt")
        .and_then(Value::as_str)
        .and_then(crate::store::bytes::unhex)
        .ok_or_else(|| bad("no salt for its encrypted keys".into()))?;
    let iterations = enc.get("iterations").and_then(Value::as_u64).unwrap_or(0);
    if !(u64::from(seal::ITERATIONS)..=10_000_000).contains(&iterations) {
        return Err(bad(format!("{iterations} key-derivation iterations is not a value qcc writes")));
    }
    let sealer = Sealer::new(p.as_bytes(), &salt, iterations as u32).map_err(Error::Failed)?;
    let check = enc.get("check").and_then(Value::as_str).unwrap_or("");
    if !sealer.opens_check(check) {
        return Err(bad("wrong passphrase (nothing was changed)".into()));
    }
    folder::verify_doc(&doc, &sealer).map_err(|e| bad(format!("{e} (nothing was changed)")))?;
    folder::open_doc(&mut doc, &sealer).map_err(|e| bad(format!("{e} (nothing was changed)")))?;
    Ok((doc, true))
}

pub fn pull(home: &Path, args: &SyncArgs) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let (dir, _) = folder_of(args, &config)?;
    check_dir(&dir)?;
    let path = dir.join(FILE_NAME);
    let mut state = SyncState::load(home);
    let (theirs, encrypted) = read_open(&path, args, &state)?;
    let (_, machine, pushed_at) = folder_meta(&theirs);
    let based_on = theirs.pointer("/qcc_sync/based_on").and_then(Value::as_str).map(str::to_string);
    // Our last push was replaced by one made without it (two pushes at once, last writer won):
    // what differs is a conflict, whichever side looks unchanged.
    let replaced = state.last_push.is_some()
        && state.folder_pushed_at == state.last_push
        && pushed_at != state.folder_pushed_at
        && based_on != state.folder_pushed_at;
    if replaced {
        println!(
            "the folder was replaced by a push from {} that had not seen this machine's push of {}: what differs is \
             reported as a conflict",
            machine.as_deref().unwrap_or("another machine"),
            state.last_push.as_deref().unwrap_or("?")
        );
    }
    let same_dir = state.dir.as_deref() == Some(dir.as_path());
    let base = if same_dir && !replaced { state.base.clone() } else { Default::default() };
    // Read again, locked until written (the passphrase was asked for above, unlocked): an edit
    // made meanwhile by the dashboard or another command is merged, not lost.
    let config = ConfigFile::edit_user()?;
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let folder_newer = match (mtime(&path), mtime(config.path())) {
        (Some(f), Some(l)) => f > l,
        (Some(_), None) => true,
        _ => false,
    };
    let ours = config.document();
    let (mut merged, report) = merge::merge(ours, &theirs, &base, args.prefer(), folder_newer);
    if let Some(o) = merged.as_object_mut() {
        for k in ["last_sync", "sync_source", "qcc_sync", "qcc_client_keys"] {
            o.remove(k);
        }
    }
    let next = config.with_document(merged)?;
    // The merged config must be one qcc can serve: checked before anything is written.
    for name in next.profile_names() {
        next.cluster(&name)
            .map_err(|e| Error::Failed(format!("the folder's config cannot be used: {e} (nothing was changed)")))?;
    }
    let keys_changed = pull_keys(home, &theirs, args.admin_keys)?;
    let changed = next.document() != ours;
    if changed {
        backup(config.path())?;
        next.save()?;
    }
    state.encrypted |= encrypted;
    state.dir = Some(dir.clone());
    state.last_pull = Some(format!("{}Z", crate::store::timefmt::iso(SystemTime::now())));
    state.folder_machine = machine.clone();
    state.folder_pushed_at = pushed_at.clone();
    state.base = merge::fingerprints(&theirs);
    state.save(home)?;
    let from = format!(
        "{} ({} at {})",
        path.display(),
        machine.as_deref().unwrap_or("the Python qcc"),
        pushed_at.as_deref().or(theirs.get("last_sync").and_then(Value::as_str)).unwrap_or("?")
    );
    if !changed && !keys_changed && report.conflicts.is_empty() {
        println!("already in sync with {from}");
        return Ok(());
    }
    println!(
        "pulled from {from}: {} added, {} updated, {} removed{}",
        report.added.len(),
        report.updated.len(),
        report.removed.len(),
        if keys_changed { ", client keys updated" } else { "" }
    );
    for (what, list) in [("added", &report.added), ("updated", &report.updated), ("removed", &report.removed)] {
        for u in list {
            println!("  {what}: {}", crate::mask::clean(u));
        }
    }
    for c in &report.conflicts {
        println!("  conflict: {}", crate::mask::clean(c));
    }
    for r in &report.renamed {
        println!("  renamed: {}", crate::mask::clean(r));
    }
    if changed {
        let home = crate::store::fsutil::qcc_home();
        if let Some((info, _)) = super::control::serving(&home) {
            match super::control::reload(&home) {
                Ok(summary) => eprintln!("applied to the running proxy (pid {}): {summary}", info.pid),
                Err(e) => eprintln!("qcc: the running proxy (pid {}) did not take the change: {e}", info.pid),
            }
        }
    }
    Ok(())
}

/// `cache.json.bak-YYYYMMDDTHHMMSS` beside the config (mode 0600), before a pull rewrites it.
fn backup(config: &Path) -> Result<()> {
    let Ok(bytes) = crate::store::fsutil::read_file(config) else { return Ok(()) };
    let t = crate::store::timefmt::iso(SystemTime::now());
    let stamp: String = t.chars().take(19).filter(|c| *c != '-' && *c != ':').collect();
    let mut name = config.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".bak-{stamp}"));
    let bak = config.with_file_name(name);
    crate::store::fsutil::atomic_write(&bak, &bytes).map_err(|e| Error::io(format!("writing {}", bak.display()), e))?;
    eprintln!("previous config kept in {}", bak.display());
    Ok(())
}

/// The folder's client keys into this machine's keys file: a key it lacks is added, a key
/// revoked there is revoked here. Returns whether the file changed.
fn pull_keys(home: &Path, theirs: &Value, admin_keys: bool) -> Result<bool> {
    let Some(list) = theirs.get("qcc_client_keys") else { return Ok(false) };
    let folder_keys: Vec<crate::store::keys::KeyEntry> = serde_json::from_value(list.clone())
        .map_err(|e| Error::Failed(format!("the folder's client keys cannot be read: {e} (nothing was changed)")))?;
    let path = crate::store::keys::path(home);
    let (mut file, _lock) = crate::store::keys::KeyFile::edit(&path)?;
    let mut changed = false;
    for k in folder_keys {
        match file.keys.iter_mut().find(|m| m.name == k.name) {
            None => {
                crate::store::keys::check_name(&k.name)
                    .map_err(|e| Error::Failed(format!("client key {:?}: {e}", k.name)))?;
                if k.admin && !admin_keys {
                    return Err(Error::Invalid(format!(
                        "the folder adds client key '{}' with admin rights: pull with --admin-keys to take it \
                         (nothing was changed)",
                        crate::mask::clean(&k.name)
                    )));
                }
                file.keys.push(k);
                changed = true;
            }
            Some(mine) if k.revoked_at.is_some() && mine.revoked_at.is_none() && mine.sha256 == k.sha256 => {
                mine.revoked_at = k.revoked_at;
                changed = true;
            }
            Some(_) => {}
        }
    }
    if changed {
        file.save(&path)?;
    }
    Ok(changed)
}

pub fn status(home: &Path, args: &SyncArgs) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let (dir, chosen) = folder_of(args, &config)?;
    let path = dir.join(FILE_NAME);
    let state = SyncState::load(home);
    let doc = if path.exists() { folder::read_folder(&path).map_err(Error::Failed)? } else { None };
    let (format, machine, pushed_at) = doc.as_ref().map(folder_meta).unwrap_or((0, None, None));
    // What differs: with the passphrase the keys are compared too; without, the rest only.
    let differ = match &doc {
        None => None,
        Some(d) => {
            let opened = match (folder::any_sealed(d), passphrase(args)?) {
                (false, _) => Some(d.clone()),
                (true, Some(_)) => read_open(&path, args, &state).ok().map(|(d, _)| d),
                (true, None) => None,
            };
            let strip = |v: &Value| {
                let mut v = v.clone();
                blank_keys(&mut v);
                v
            };
            let (mine, theirs) = match &opened {
                Some(o) => (merge::fingerprints(config.document()), merge::fingerprints(o)),
                None => (merge::fingerprints(&strip(config.document())), merge::fingerprints(&strip(d))),
            };
            let n = mine
                .keys()
                .chain(theirs.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|k| mine.get(*k) != theirs.get(*k))
                .count();
            Some((n, opened.is_some()))
        }
    };
    let encrypted = doc.as_ref().is_some_and(folder::any_sealed);
    if args.json {
        let out = json!({"dir": dir, "chosen_by": chosen, "file": path, "exists": doc.is_some(),
            "format": format, "pushed_by": machine, "pushed_at": pushed_at.clone().or_else(|| doc.as_ref().and_then(|d| d.get("last_sync")).and_then(Value::as_str).map(str::to_string)),
            "encrypted": encrypted, "this_machine": folder::machine_name(),
            "last_push": state.last_push, "last_pull": state.last_pull,
            "differences": differ.map(|d| d.0), "keys_compared": differ.map(|d| d.1)});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    println!("folder: {} ({chosen})", dir.display());
    match &doc {
        None => println!("file:   {} (not there yet: `qcc sync push` makes it)", path.display()),
        Some(d) => println!(
            "file:   {}, pushed by {} at {}{}",
            path.display(),
            machine.as_deref().unwrap_or("the Python qcc"),
            pushed_at.as_deref().or(d.get("last_sync").and_then(Value::as_str)).unwrap_or("?"),
            if encrypted { ", keys encrypted" } else { "" }
        ),
    }
    println!(
        "this machine ({}): last push {}, last pull {}",
        folder::machine_name(),
        state.last_push.as_deref().unwrap_or("never"),
        state.last_pull.as_deref().unwrap_or("never")
    );
    match differ {
        None => {}
        Some((0, true)) => println!("in sync: the folder and this config hold the same endpoints"),
        Some((0, false)) => println!("in sync, apart from keys not compared (set QCC_SYNC_PASSPHRASE to compare them)"),
        Some((n, _)) => println!(
            "{n} endpoints or profiles differ: `qcc sync pull` merges them, `qcc sync push` replaces the folder's"
        ),
    }
    Ok(())
}

/// Every `api_key` emptied (to compare documents without the passphrase).
fn blank_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "api_key" {
                    *x = json!("");
                } else {
                    blank_keys(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(blank_keys),
        _ => {}
    }
}
