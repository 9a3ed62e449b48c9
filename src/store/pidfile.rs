//! `$QCC_HOME/proxy.pid` (shape of the Python qcc: pid, host, port, start_time) and the lock
//! that makes one state dir serve one running proxy.
//!
//! The lock is `flock` on `$QCC_HOME/proxy.lock`, held for the life of the process: the kernel
//! drops it when the process dies however it dies, so a stale pid file never blocks a start.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PidInfo {
    pub pid: u32,
    pub host: String,
    pub port: u16,
    pub start_time: String,
    /// The cluster served (absent in pid files of older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Started without `--cluster`: it serves what the profile priorities (priority.json) say,
    /// and a restart starts it that way again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_priority: bool,
    /// A random token made at each start that works like the access key on the proxy's admin
    /// routes (`/_qcc/*`, `/metrics`): whoever can read this file (mode 0600) is the proxy's
    /// owner, so `qcc proxy status`, `qcc usage` and the rest work beside client keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_token: Option<String>,
}

impl PidInfo {
    /// The address a client on this host connects to (a wildcard listener is reached on
    /// loopback), without brackets.
    pub fn local_host(&self) -> &str {
        match self.host.as_str() {
            "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            h => h,
        }
    }

    /// Where the running proxy listens, for clients on this host.
    pub fn base_url(&self) -> String {
        let host = self.local_host();
        if host.contains(':') {
            format!("http://[{host}]:{}", self.port)
        } else {
            format!("http://{host}:{}", self.port)
        }
    }
}

pub fn pid_path(home: &Path) -> PathBuf {
    home.join("proxy.pid")
}

/// The running proxy of this state dir, if any. A pid file is trusted only while a process holds
/// the state dir's lock: after a crash the pid may belong to anyone (a reused pid), so a pid file
/// without a held lock is stale and reported as `None`.
pub fn running(home: &Path) -> Result<Option<PidInfo>> {
    if !lock_held(home) {
        return Ok(None);
    }
    let path = pid_path(home);
    let text = match super::fsutil::read_text(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::BadFile { path, problem: e.to_string() }),
    };
    let info: PidInfo = serde_json::from_str(&text)
        .map_err(|e| Error::BadFile { path: path.clone(), problem: format!("invalid pid file: {e}") })?;
    Ok(if process_alive(info.pid) { Some(info) } else { None })
}

/// Whether some process holds `proxy.lock` (a shared lock attempt fails while a proxy has it).
fn lock_held(home: &Path) -> bool {
    let Ok(file) = File::open(home.join("proxy.lock")) else {
        return false;
    };
    // SAFETY: flock on a file descriptor we own; closing it drops our shared lock at once.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Held while the proxy runs; removes the pid file when dropped.
pub struct PidGuard {
    home: PathBuf,
    _lock: File,
}

/// Take the state dir's lock, or explain who holds it.
pub fn lock(home: &Path) -> Result<PidGuard> {
    crate::store::fsutil::ensure_dir(home).map_err(|e| Error::io(format!("cannot create {}", home.display()), e))?;
    let path = home.join("proxy.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let who = match running(home) {
            Ok(Some(info)) => {
                let cluster = info.cluster.as_deref().map(|c| format!(", cluster '{c}'")).unwrap_or_default();
                format!(" (pid {}, {}{cluster})", info.pid, info.base_url())
            }
            _ => String::new(),
        };
        return Err(Error::Failed(format!(
            "qcc proxy is already running for {}{who}; stop it with `qcc proxy stop`",
            home.display()
        )));
    }
    Ok(PidGuard { home: home.to_path_buf(), _lock: file })
}

impl PidGuard {
    pub fn write(&self, info: &PidInfo) -> Result<()> {
        let path = pid_path(&self.home);
        let bytes = serde_json::to_vec(info).map_err(|e| Error::Failed(e.to_string()))?;
        crate::store::fsutil::atomic_write(&path, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }
}

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(pid_path(&self.home));
    }
}
