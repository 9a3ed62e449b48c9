//! The proxy's state files: the failure queue (written shortly after each change, once per
//! burst) and token usage (written every few seconds while it changes, and at exit). The loop
//! makes the bytes; the disk thread (`disk.rs`) writes them. A write that fails (full disk,
//! file-size limit) is said once, and once more when it works again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::proxy::EventLoop;
use crate::store::usage::Counts;

/// A burst of queue changes costs one write.
const PERSIST_DELAY: Duration = Duration::from_millis(200);
/// Usage changes with every response: written at most this often (and at exit).
const USAGE_DELAY: Duration = Duration::from_secs(5);

impl EventLoop {
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
            } else {
                self.usage.mark_dirty();
            }
        }
        self.note_write(&path, result);
    }

    /// Note that the failure queue changed; it is written shortly, once per burst.
    pub(in crate::proxy) fn queue_changed(&mut self, now: Instant) {
        if self.persist_at.is_none() && self.failures.is_dirty() {
            self.persist_at = Some(now + PERSIST_DELAY);
        }
    }

    /// Count one response's tokens for endpoint `idx` and `model`, today (UTC).
    /// Client `ck`'s Claude Code session (when it named one) is counted too, with the cost.
    /// Count one response's usage: by endpoint and model, and by the request's session and
    /// client key (`key`: the name its ticket holds), alerting when a budget is crossed.
    pub(in crate::proxy) fn record_usage(
        &mut self,
        idx: usize,
        model: Option<&str>,
        c: &Counts,
        session: Option<&str>,
        key: Option<&std::rc::Rc<str>>,
        now: Instant,
    ) {
        self.usage_day();
        self.usage.record(&self.usage_day.1, &self.endpoints[idx].cfg.id, model.unwrap_or("unknown"), c);
        let cost = model.and_then(|m| self.settings.prices.cost(m, c)).unwrap_or(0.0);
        if let Some(s) = session {
            self.usage.record_session(&self.usage_day.1, s, c, cost);
        }
        if let Some(name) = key {
            let (before, after) = self.usage.record_key(&self.usage_day.1, name, c, cost);
            self.budget_crossed(name, &before, &after, now);
        }
        self.usage_changed(now);
    }

    /// `record_usage` for client `ck`'s exchange: its session and key (the exchange leaves its
    /// phase for the recording, and comes back).
    pub(in crate::proxy) fn charge_exchange(
        &mut self,
        ck: crate::proxy::event::slab::Key,
        idx: usize,
        model: Option<&str>,
        c: &Counts,
        now: Instant,
    ) {
        self.with_exchange(ck, |this, ex, _| {
            this.record_usage(idx, model, c, ex.session.as_deref(), ex.key.as_ref().map(|t| &t.name), now)
        });
    }

    /// A client key's day went past one of its budgets with this response: alert once (a
    /// restart does not alert again: the day's counts before it were already past).
    fn budget_crossed(
        &mut self,
        name: &str,
        before: &crate::store::usage::KeyCounts,
        after: &crate::store::usage::KeyCounts,
        now: Instant,
    ) {
        use crate::policy::limits::{crossed, Used};
        let Some(key) = self.keys.find(name) else { return };
        let used = |c: &crate::store::usage::KeyCounts| Used { tokens: c.tokens(), usd: c.cost_usd };
        for (limit, msg) in crossed(name, &key.entry.limits, used(before), used(after)) {
            self.budget_alert(name, limit, &msg, now);
        }
    }

    /// The usage book changed: it is written within `USAGE_DELAY`.
    pub(in crate::proxy) fn usage_changed(&mut self, now: Instant) {
        if self.usage_at.is_none() {
            self.usage_at = Some(now + USAGE_DELAY);
        }
    }

    /// Today's name in the usage book, "YYYY-MM-DD" (UTC); made once a day, not once a response.
    pub(in crate::proxy) fn usage_day(&mut self) -> &str {
        let day_no = self.usage_day_no();
        if self.usage_day.0 != day_no || self.usage_day.1.is_empty() {
            self.usage_day = (day_no, crate::store::timefmt::date(SystemTime::now()));
        }
        &self.usage_day.1
    }

    /// Today's UTC day number.
    pub(in crate::proxy) fn usage_day_no(&self) -> i64 {
        crate::store::timefmt::day_number(SystemTime::now())
    }

    /// The wall clock in unix seconds.
    pub(in crate::proxy) fn wall_secs(&self) -> u64 {
        SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
