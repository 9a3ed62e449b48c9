//! Named client keys: `$QCC_HOME/keys.json` (mode 0600, written atomically). A key is shown
//! once, when it is made; the file keeps only its SHA-256 (ring) and a short prefix to tell keys
//! apart. `qcc key add|set|revoke` edit the file; a running proxy notices the change by itself
//! (`proxy/shared/disk.rs` looks at the file every half second).
//!
//! ```json
//! {"version": 1, "keys": [{"name": "bob", "sha256": "9f86d0...", "prefix": "qcc-4k2m",
//!   "created_at": "2026-12-02T10:00:00.000000", "daily_tokens": 2000000, "daily_usd": 5.0,
//!   "rpm": 30, "concurrent": 4, "expires": "2027-01-01", "cluster": "work", "admin": false,
//!   "revoked_at": null}]}
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::bytes::{hex, random, sha256};

pub const FILE_VERSION: u32 = 1;
/// Every key qcc makes starts with this.
pub const KEY_PREFIX: &str = "qcc-";
/// Random characters after the prefix (base 36: about 206 bits).
const KEY_RANDOM_CHARS: usize = 40;
/// Characters of a key kept in the file and shown to tell keys apart (the prefix and 4 more).
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 4;
/// A presented key longer than this is not looked up (a 10 KB header is nobody's key).
pub const MAX_PRESENTED: usize = 128;
pub const MAX_NAME: usize = 48;

/// The limits a key carries; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Tokens per UTC day, all kinds the upstream reports (input, output, cache writes and reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_tokens: Option<u64>,
    /// US dollars per UTC day, for the models with a price (`store/prices.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    /// Requests per minute (a sliding 60-second window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Requests in progress at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub name: String,
    /// SHA-256 of the whole key, lowercase hex.
    pub sha256: String,
    /// The key's first characters (`qcc-4k2m`), to tell keys apart in lists.
    pub prefix: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(flatten)]
    pub limits: Limits,
    /// The key stops working at 00:00 UTC on this date ("YYYY-MM-DD").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Only a proxy serving this cluster accepts the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// May use the admin surface (`/_qcc/*`, `/metrics`) as the access key does.
    #[serde(default)]
    pub admin: bool,
    /// Revoked keys stay listed (their usage keeps its name) and are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl KeyEntry {
    pub fn revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// The UTC day number the key stops working on, when it expires.
    pub fn expires_day(&self) -> Option<i64> {
        self.expires.as_deref().and_then(parse_date)
    }

    /// Whether the key has expired on UTC day number `today`.
    pub fn expired(&self, today: i64) -> bool {
        self.expires_day().is_some_and(|d| today >= d)
    }

    /// `active`, `expired` or `revoked`, as lists and the dashboard say it.
    pub fn status(&self, today: i64) -> &'static str {
        if self.revoked() {
            "revoked"
        } else if self.expired(today) {
            "expired"
        } else {
            "active"
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    pub keys: Vec<KeyEntry>,
}

pub fn path(home: &Path) -> PathBuf {
    home.join("keys.json")
}

impl KeyFile {
    /// Parse the file's bytes; the problem, if any, in one line.
    pub fn parse(bytes: &[u8]) -> std::result::Result<KeyFile, String> {
        let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| format!("not a qcc keys file: {e}"))?;
        if file.version > FILE_VERSION {
            return Err(format!("written by a newer qcc (format {}; this one reads {FILE_VERSION})", file.version));
        }
        let mut seen = std::collections::HashSet::new();
        for k in &file.keys {
            check_name(&k.name).map_err(|e| format!("key {:?}: {e}", k.name))?;
            if !seen.insert(k.name.as_str()) {
                return Err(format!("key name {:?} appears twice", k.name));
            }
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("key {:?}: sha256 is not 64 hex digits", k.name));
            }
            if let Some(e) = &k.expires {
                parse_date(e).ok_or_else(|| format!("key {:?}: expires {e:?} is not a date (YYYY-MM-DD)", k.name))?;
            }
            if k.limits.daily_usd.is_some_and(|x| !x.is_finite() || x < 0.0) {
                return Err(format!("key {:?}: daily_usd must be a number of dollars, 0 or more", k.name));
            }
        }
        Ok(file)
    }

    /// Read the file; a missing file is no keys.
    pub fn load(path: &Path) -> Result<KeyFile> {
        match crate::store::fsutil::read_file(path) {
            Ok(bytes) => KeyFile::parse(&bytes).map_err(|problem| Error::BadFile { path: path.to_path_buf(), problem }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
            Err(e) => Err(Error::BadFile { path: path.to_path_buf(), problem: e.to_string() }),
        }
    }

    /// `load`, with the file's edit lock (`fsutil::EditLock`): hold it until the file is saved.
    pub fn edit(path: &Path) -> Result<(KeyFile, crate::store::fsutil::EditLock)> {
        let lock = crate::store::fsutil::EditLock::take(path)
            .map_err(|e| Error::io(format!("cannot lock {} for an edit", path.display()), e))?;
        Ok((KeyFile::load(path)?, lock))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&KeyFile { version: FILE_VERSION, keys: self.keys.clone() })
            .map_err(|e| Error::Failed(e.to_string()))?;
        bytes.push(b'\n');
        crate::store::fsutil::atomic_write(path, &bytes)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    pub fn get(&self, name: &str) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.name == name)
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut KeyEntry> {
        self.keys
            .iter_mut()
            .find(|k| k.name == name)
            .ok_or_else(|| Error::Invalid(format!("no key named '{name}' (see `qcc key list`)")))
    }

    /// Make a key named `name`; returns the key itself (the only time it exists outside the
    /// client). A revoked key's name may be taken again; a live one's may not.
    pub fn add(&mut self, name: &str, change: &KeyChange, now: SystemTime) -> Result<String> {
        check_name(name).map_err(|e| Error::Invalid(format!("key name '{name}': {e}")))?;
        if let Some(old) = self.get(name) {
            if !old.revoked() {
                return Err(Error::Invalid(format!(
                    "a key named '{name}' already exists (change it with `qcc key set {name}`)"
                )));
            }
            self.keys.retain(|k| k.name != name);
        }
        let key = new_key()?;
        let mut entry = KeyEntry {
            name: name.to_string(),
            sha256: hex(&sha256(key.as_bytes())),
            prefix: key[..SHOWN_CHARS].to_string(),
            created_at: crate::store::timefmt::iso(now),
            limits: Limits::default(),
            expires: None,
            cluster: None,
            admin: false,
            revoked_at: None,
        };
        change.apply(&mut entry);
        self.keys.push(entry);
        Ok(key)
    }

    pub fn set(&mut self, name: &str, change: &KeyChange) -> Result<()> {
        let entry = self.get_mut(name)?;
        if entry.revoked() {
            return Err(Error::Invalid(format!("key '{name}' is revoked; make a new one with `qcc key add`")));
        }
        change.apply(entry);
        Ok(())
    }

    /// Revoke `name`; false when it already was.
    pub fn revoke(&mut self, name: &str, now: SystemTime) -> Result<bool> {
        let entry = self.get_mut(name)?;
        if entry.revoked() {
            return Ok(false);
        }
        entry.revoked_at = Some(crate::store::timefmt::iso(now));
        Ok(true)
    }
}

/// A change to a key's settings, as `qcc key add|set` flags give it. `Some(None)` removes a
/// limit (`--rpm none`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyChange {
    pub daily_tokens: Option<Option<u64>>,
    pub daily_usd: Option<Option<f64>>,
    pub rpm: Option<Option<u32>>,
    pub concurrent: Option<Option<u32>>,
    pub expires: Option<Option<String>>,
    pub cluster: Option<Option<String>>,
    pub admin: Option<bool>,
}

impl KeyChange {
    pub fn is_empty(&self) -> bool {
        *self == KeyChange::default()
    }

    fn apply(&self, e: &mut KeyEntry) {
        if let Some(v) = self.daily_tokens {
            e.limits.daily_tokens = v;
        }
        if let Some(v) = self.daily_usd {
            e.limits.daily_usd = v;
        }
        if let Some(v) = self.rpm {
            e.limits.rpm = v;
        }
        if let Some(v) = self.concurrent {
            e.limits.concurrent = v;
        }
        if let Some(v) = &self.expires {
            e.expires = v.clone();
        }
        if let Some(v) = &self.cluster {
            e.cluster = v.clone();
        }
        if let Some(v) = self.admin {
            e.admin = v;
        }
    }
}

/// What a key name may hold: what shows as a label in `/metrics` and a log line without escaping.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("must be 1 to {MAX_NAME} characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@')) {
        return Err("may hold only letters, digits and - _ . @".into());
    }
    Ok(())
}

/// A limit as a flag gives it: a whole number ≥ 0, or `none`. `label` names it in the error.
fn parse_count<T: std::str::FromStr>(label: &str, v: &str) -> Result<Option<T>> {
    if v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    v.trim()
        .parse::<T>()
        .map(Some)
        .map_err(|_| Error::Usage(format!("{label} {v}: give a whole number, 0 or more (or `none`)")))
}

/// Dollars: a number ≥ 0 (`$` allowed), or `none`.
fn parse_usd(label: &str, v: &str) -> Result<Option<f64>> {
    if v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match v.trim().trim_start_matches('$').parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        _ => Err(Error::Usage(format!("{label} {v}: give dollars, 0 or more (like 5 or 2.50), or `none`"))),
    }
}

impl KeyChange {
    /// The fields with values that `qcc key add|set` and the dashboard's key edits take, by
    /// name: `daily_tokens`, `daily_usd`, `rpm`, `concurrent`, `expires`, `cluster`.
    pub const FIELDS: [&'static str; 6] = ["daily_tokens", "daily_usd", "rpm", "concurrent", "expires", "cluster"];

    /// A change from those fields' values (`get`: the value given, if any; `none` lifts a limit,
    /// an expiry or a cluster); `label` names a field in an error (`--rpm`, `rpm`). `admin` is
    /// the caller's (a switch on the command line, a value on the page).
    pub fn from_fields(get: impl Fn(&str) -> Option<String>, label: impl Fn(&str) -> String) -> Result<KeyChange> {
        let none = |v: &str| v.eq_ignore_ascii_case("none");
        let mut c = KeyChange::default();
        if let Some(v) = get("daily_tokens") {
            c.daily_tokens = Some(parse_count(&label("daily_tokens"), &v)?);
        }
        if let Some(v) = get("daily_usd") {
            c.daily_usd = Some(parse_usd(&label("daily_usd"), &v)?);
        }
        if let Some(v) = get("rpm") {
            c.rpm = Some(parse_count(&label("rpm"), &v)?);
        }
        if let Some(v) = get("concurrent") {
            c.concurrent = Some(parse_count(&label("concurrent"), &v)?);
        }
        if let Some(v) = get("expires") {
            c.expires = Some(match v {
                v if none(&v) => None,
                v if parse_date(&v).is_some() => Some(v),
                v => {
                    return Err(Error::Usage(format!(
                        "{} {v}: give a date as YYYY-MM-DD (or `none`)",
                        label("expires")
                    )))
                }
            });
        }
        if let Some(v) = get("cluster") {
            c.cluster = Some((!none(&v)).then_some(v));
        }
        Ok(c)
    }
}

/// "YYYY-MM-DD" (a real calendar date) as a UTC day number.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<u32>().ok().map(i64::from) };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][(m - 1) as usize];
    if d > days_in {
        return None;
    }
    Some(crate::store::timefmt::days_from_civil(y, m as u32, d as u32))
}

/// `qcc-` and 40 random characters of [a-z0-9] from the system's CSPRNG (ring).
fn new_key() -> Result<String> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut key = String::from(KEY_PREFIX);
    while key.len() < KEY_PREFIX.len() + KEY_RANDOM_CHARS {
        let buf = random::<64>().map_err(Error::Failed)?;
        // 252 = 7 * 36: bytes above it are dropped so that every character is equally likely.
        for b in buf.iter().filter(|b| **b < 252) {
            if key.len() < KEY_PREFIX.len() + KEY_RANDOM_CHARS {
                key.push(ALPHABET[(*b % 36) as usize] as char);
            }
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bytes::unhex32;

    #[test]
    fn keys_are_random_long_and_stored_hashed() {
        let mut f = KeyFile::default();
        let now = SystemTime::now();
        let a = f.add("bob", &KeyChange { rpm: Some(Some(5)), ..Default::default() }, now).unwrap();
        let b = f.add("amy", &KeyChange::default(), now).unwrap();
        assert!(a.starts_with("qcc-") && a.len() == 44 && a != b);
        assert!(a[4..].bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        let bytes = serde_json::to_vec(&f).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains(&a[8..]), "the key itself is never stored");
        let back = KeyFile::parse(&bytes).unwrap();
        assert_eq!(back.get("bob").unwrap().limits.rpm, Some(5));
        assert_eq!(unhex32(&back.get("bob").unwrap().sha256), Some(sha256(a.as_bytes())));
        assert!(f.add("bob", &KeyChange::default(), now).unwrap_err().to_string().contains("already exists"));
        assert!(f.revoke("bob", now).unwrap());
        assert!(!f.revoke("bob", now).unwrap());
        assert!(f.set("bob", &KeyChange::default()).is_err());
        let again = f.add("bob", &KeyChange::default(), now).unwrap();
        assert_ne!(again, a);
        assert_eq!(f.keys.len(), 2);
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(parse_date("2027-02-29"), None);
        assert_eq!(parse_date("2028-02-29").map(|d| d > 0), Some(true));
        assert_eq!(parse_date("2027-1-01"), None);
        assert_eq!(parse_date("tomorrow"), None);
        assert!(parse_count::<u32>("--rpm", "-1").is_err());
        assert_eq!(parse_count::<u32>("--rpm", "none").unwrap(), None);
        let usd = |v: &str| parse_usd("--daily-usd", v);
        assert!(usd("-2").is_err() && usd("NaN").is_err() && usd("inf").is_err());
        assert_eq!(usd("$2.5").unwrap(), Some(2.5));
        let change = |pairs: &[(&str, &str)]| {
            let get = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string());
            KeyChange::from_fields(get, |n| format!("--{}", n.replace('_', "-")))
        };
        let c = change(&[("rpm", "5"), ("expires", "NONE"), ("cluster", "none"), ("daily_usd", "2.5")]).unwrap();
        assert_eq!(
            (c.rpm, c.expires, c.cluster, c.daily_usd),
            (Some(Some(5)), Some(None), Some(None), Some(Some(2.5)))
        );
        assert!(change(&[("expires", "2027-02-30")]).unwrap_err().to_string().starts_with("--expires 2027-02-30"));
        assert!(change(&[("daily_tokens", "-1")]).unwrap_err().to_string().starts_with("--daily-tokens -1"));
        assert!(check_name("bob smith").is_err() && check_name("").is_err() && check_name("a\"b").is_err());
        assert!(KeyFile::parse(br#"{"version": 9, "keys": []}"#).unwrap_err().contains("newer"));
        assert!(KeyFile::parse(b"{").is_err());
        let twice = r#"{"version":1,"keys":[{"name":"a","sha256":"HASH","prefix":"qcc-"},{"name":"a","sha256":"HASH","prefix":"qcc-"}]}"#
            .replace("HASH", &"0".repeat(64));
        assert!(KeyFile::parse(twice.as_bytes()).unwrap_err().contains("twice"));
    }
}
