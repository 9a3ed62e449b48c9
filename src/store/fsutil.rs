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

/// The most any file of ours may hold when read (config, state, keys).
pub const READ_MAX: u64 = 16 * 1024 * 1024;

/// Read a file of ours: a regular file only (a FIFO or a device in its place is refused, not
/// waited on or read forever), opened non-blocking, at most [`READ_MAX`] bytes. Errors say what
/// the path is instead; `NotFound` stays `NotFound`.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    // O_NONBLOCK: opening a FIFO without a writer would otherwise block until one appears.
    let f = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > READ_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("larger than {} MiB", READ_MAX >> 20)));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(READ_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > READ_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("larger than {} MiB", READ_MAX >> 20)));
    }
    Ok(bytes)
}

/// [`read_file`] as text.
pub fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_file(path)?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Whether a file others may read holds a secret: its group/other permission bits.
pub fn open_to_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// An exclusive lock on a file while it is read, changed and written back (`flock` on a sibling
/// `.NAME.lock`), so the CLI and a running proxy's dashboard editing the same file at once each
/// build on the other's edit and none is lost. Released when dropped. Readers need none (writes
/// are atomic renames).
pub struct EditLock(#[allow(dead_code)] std::fs::File);

/// A folder this user cannot write, said with who should make it (a service's state folder
/// made by root before the service first ran, say); any other error as it is.
fn unwritable(dir: &Path, e: io::Error) -> io::Error {
    if e.kind() != io::ErrorKind::PermissionDenied {
        return e;
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    io::Error::new(
        e.kind(),
        format!(
            "{e}: the folder {} is not writable by this user (uid {uid}); its owner (or root) should \
             create it for this user: sudo install -d -o $(id -un) -m 0700 {}",
            dir.display(),
            dir.display()
        ),
    )
}

impl EditLock {
    pub fn take(path: &Path) -> io::Result<EditLock> {
        use std::os::fd::AsRawFd;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        ensure_dir(dir).map_err(|e| unwritable(dir, e))?;
        let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let mut lock_name = std::ffi::OsString::from(".");
        lock_name.push(name);
        lock_name.push(".lock");
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(lock_name))
            .map_err(|e| unwritable(dir, e))?;
        loop {
            // SAFETY: flock on a descriptor we own for the duration of the call.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(EditLock(f));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
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
    fn an_edit_lock_is_exclusive_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("qcc-editlock-{}", std::process::id()));
        let path = dir.join("keys.json");
        let held = EditLock::take(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let t = std::thread::spawn(move || {
            let _second = EditLock::take(&p).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err(), "waits while held");
        drop(held);
        assert!(rx.recv_timeout(std::time::Duration::from_secs(5)).is_ok(), "taken once released");
        t.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

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

    #[test]
    fn reads_refuse_fifos_devices_and_huge_files() {
        let dir = std::env::temp_dir().join(format!("qcc-fsutil-read-{}", std::process::id()));
        ensure_dir(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_file(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let link = dir.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(read_file(&link).unwrap_err().to_string().contains("not a regular file"));
        let big = dir.join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(READ_MAX + 1).unwrap();
        assert!(read_file(&big).unwrap_err().to_string().contains("larger than"));
        std::fs::write(dir.join("ok"), b"{}").unwrap();
        assert_eq!(read_file(&dir.join("ok")).unwrap(), b"{}");
        assert_eq!(read_file(&dir.join("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
