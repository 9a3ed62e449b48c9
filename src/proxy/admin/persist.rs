//! The proxy's state files: the failure queue (written shortly after each change, once per
//! burst) and token usage (written every few seconds while it changes, and at exit). The loop
//! makes the bytes; the disk thread (`disk.rs`) writes them. A write that fails (full disk,
//! file-size limit) is said once, and once more when it works again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::proxy::shared::Shared;

/// A burst of queue changes costs one write.
const PERSIST_DELAY: Duration = Duration::from_millis(200);
/// Usage changes with every response: written at most this often (and at exit).
const USAGE_DELAY: Duration = Duration::from_secs(5);

impl Shared {
    /// Write the failure queue if it changed (coalesced by `persist_at`).
    pub(in crate::proxy) fn persist(&mut self) {
        self.persist_at = None;
        if self.failures.is_dirty() {
            let bytes = self.failures.take_bytes(SystemTime::now());
            self.disk.save(self.queue_path.clone(), bytes);
        }
    }

    /// Write the usage file if it changed (coalesced by `usage_at`).
    pub(in crate::proxy) fn persist_usage(&mut self) {
        self.usage_at = None;
        if self.usage.is_dirty() {
            let bytes = self.usage.take_bytes(SystemTime::now());
            self.disk.save(self.usage_path(), bytes);
        }
    }

    /// The disk thread wrote a state file (or could not: then it is written again at the next
    /// change, or at exit).
    pub(in crate::proxy) fn on_saved(&mut self, path: PathBuf, result: std::io::Result<()>) {
        if result.is_err() {
            if path == self.queue_path {
                self.failures.mark_dirty();
            } else if path == self.usage_path() {
                self.usage.mark_dirty();
            } // (a priority history entry is not written again)
        }
        self.note_write(&path, result);
    }

    /// Note that the failure queue changed; it is written shortly, once per burst.
    pub(in crate::proxy) fn queue_changed(&mut self, now: Instant) {
        if self.persist_at.is_none() && self.failures.is_dirty() {
            self.persist_at = Some(now + PERSIST_DELAY);
        }
    }

    /// The usage book changed: it is written within `USAGE_DELAY`.
    pub(in crate::proxy) fn usage_changed(&mut self, now: Instant) {
        if self.usage_at.is_none() {
            self.usage_at = Some(now + USAGE_DELAY);
        }
    }

    pub(in crate::proxy) fn usage_path(&self) -> PathBuf {
        self.settings.home.join("usage.json")
    }

    fn note_write(&mut self, path: &Path, result: std::io::Result<()>) {
        let known = self.failing_files.iter().position(|p| p == path);
        match (result, known) {
            (Ok(()), Some(i)) => {
                self.failing_files.swap_remove(i);
                log::info!("writing {} works again", path.display());
            }
            (Ok(()), None) => {}
            (Err(e), known) => {
                self.stats.state_write_failures += 1;
                if known.is_none() {
                    self.failing_files.push(path.to_path_buf());
                    log::warn!("cannot write {}: {e} (kept in memory; retried at every change)", path.display());
                } else {
                    log::debug!("cannot write {}: {e}", path.display());
                }
            }
        }
    }
}
