//! The flags each cluster's proxy was last started with (`$QCC_HOME/proxy_flags.json`: `{CLUSTER:
//! ["--verify-interval", "30", ...]}`), so that a proxy `qcc use`, `qcc env`, `qcc proxy restart`
//! or the service start runs the way the user last ran it by hand. Never a secret: the access
//! key is not kept (it is found where it always is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Flags not remembered: what says which cluster and how to start, and a secret.
pub const NOT_KEPT: [&str; 3] = ["--cluster", "--background", "--access-key"];

fn path(home: &Path) -> PathBuf {
    home.join("proxy_flags.json")
}

/// Every cluster's remembered flags (a missing or unreadable file: none).
fn load(home: &Path) -> BTreeMap<String, Vec<String>> {
    crate::store::fsutil::read_file(&path(home)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// The flags `cluster`'s proxy was last started with (none known: empty).
pub fn of(home: &Path, cluster: &str) -> Vec<String> {
    load(home).remove(cluster).unwrap_or_default()
}

/// Remember `flags` for `cluster` (written atomically under the file's edit lock); a failure
/// only costs the memory, said by the caller.
pub fn remember(home: &Path, cluster: &str, flags: Vec<String>) -> std::io::Result<()> {
    let _lock = crate::store::fsutil::EditLock::take(&path(home))?;
    let mut all = load(home);
    if all.get(cluster) == Some(&flags) {
        return Ok(());
    }
    all.insert(cluster.to_string(), flags);
    let mut bytes = serde_json::to_vec_pretty(&all).unwrap_or_default();
    bytes.push(b'\n');
    crate::store::fsutil::atomic_write(&path(home), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_kept_per_cluster() {
        let home = std::env::temp_dir().join(format!("qcc-flags-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        assert!(of(&home, "work").is_empty());
        remember(&home, "work", vec!["--verify-interval".into(), "30".into()]).unwrap();
        remember(&home, "ops", vec![]).unwrap();
        assert_eq!(of(&home, "work"), ["--verify-interval", "30"]);
        assert!(of(&home, "ops").is_empty());
        let _ = std::fs::remove_dir_all(&home);
    }
}
