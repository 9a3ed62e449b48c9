//! Files the user owns: where they live, and writing them so a crash never leaves half a file
//! (temp file, fsync, rename, fsync the directory), mode 0600 in 0700 directories.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `$HOME`, or `/` when unset (a service without a home still gets a usable path).
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// `$QCC_HOME`, default `~/.qcc`.
pub fn qcc_home() -> PathBuf {
    std::env::var_os("QCC_HOME").filter(|h| !h.is_empty()).map_or_else(|| home_dir().join(".qcc"), PathBuf::from)
}

/// `$QCC_CONFIG`, default `~/.fastcc/cache.json`.
pub fn config_path() -> PathBuf {
    std::env::var_os("QCC_CONFIG")
        .filter(|h| !h.is_empty())
        .map_or_else(|| home_dir().join(".fastcc").join("cache.json"), PathBuf::from)
}

/// Create `dir` (and parents) with mode 0700 when missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Replace `path` atomically with `bytes`, mode 0600.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    ensure_dir(dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the directory entry is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_with_private_mode() {
        let dir = std::env::temp_dir().join(format!("qcc-fsutil-{}", std::process::id()));
        let path = dir.join("sub").join("f.json");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.join("sub")).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1, "no temp file left");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
