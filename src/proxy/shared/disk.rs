//! File work off the loop: one helper thread writes the state files (temp, fsync, rename),
//! reads the config (a reload, a dashboard edit) and the CA files it names, and watches the
//! keys file, handing results back through a channel and the loop's `Waker` (as `resolver.rs`
//! does for DNS). A second thread appends access-log lines. The loop hands them bytes and
//! paths and never waits on a disk.
//!
//! The threads own no proxy state: each gets a job, does the file work, and sends back what it
//! found. Jobs run in order, so two writes of one file land in the order they were made. The
//! access log's queue is bounded (`HISTORY_QUEUE`): on a stalled disk its lines are dropped and
//! counted, and loads, saves and edits, on their own thread, never wait behind them.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::Waker;

use crate::proxy::event::slab::Key;
use crate::store::cluster::{ClusterConfig, EndpointConfig};
use crate::store::config::ConfigFile;

/// A config change to make before the cluster is read again. The dashboard's edits
/// (`admin/manage.rs`) go through the same store functions as the CLI's commands.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Just read the file again (SIGHUP, `/_qcc/reload`).
    None,
    /// Enable or disable one endpoint (the dashboard), as `qcc endpoint enable|disable` would.
    Enable { id: String, enabled: bool },
    /// `qcc endpoint add`.
    Add(Box<crate::store::config::NewEndpoint>),
    /// `qcc endpoint set` (`which`: a name or an id).
    Set { which: String, change: Box<crate::store::profiles::EndpointChange> },
    /// `qcc endpoint remove`.
    Remove { which: String },
    /// `qcc cluster set`.
    Cluster { retry_on: Option<crate::store::cluster::RetryOn>, strategy: Option<crate::store::cluster::Strategy> },
    /// `qcc key add|set|revoke`.
    Key(KeyEdit),
    /// Serve this cluster of the config too, with its fallbacks, from now on: a request named it
    /// in its URL (`client/named.rs`). Nothing is written.
    Serve(String),
}

#[derive(Debug, Clone)]
pub enum KeyEdit {
    Add { name: String, change: crate::store::keys::KeyChange },
    Set { name: String, change: crate::store::keys::KeyChange },
    Revoke { name: String },
}

/// Who asked for a config read: the answer goes to that client (`None`: a signal).
pub type Asker = Option<Key>;

/// The cluster as read, each endpoint with its TLS configuration (CA files read), ready for
/// the loop to apply.
pub struct Fresh {
    /// The served clusters, the started one first (`store::served::served`).
    pub clusters: Vec<ClusterConfig>,
    /// `settings.prices` over the built-in table, read from the same file.
    pub prices: crate::store::prices::PriceTable,
    /// `settings.notify_urls`, and the TLS configuration for them when one is https.
    pub notify_urls: Vec<String>,
    pub alert_tls: Option<Arc<rustls::ClientConfig>>,
    /// What the edit made, for its answer: a new endpoint's id, a new client key (its only
    /// showing), or `null`.
    pub outcome: serde_json::Value,
    /// Every served cluster's endpoints: the index of its cluster in `clusters`, its config and
    /// its TLS configuration.
    pub endpoints: Vec<(usize, EndpointConfig, Option<Arc<rustls::ClientConfig>>)>,
}

enum Job {
    Save {
        path: PathBuf,
        bytes: Vec<u8>,
    },
    /// A `switch_history` entry added to the profile priorities (`store/priority.rs`).
    Switch {
        home: PathBuf,
        from: String,
        to: String,
        reason: String,
        kind: &'static str,
    },
    Load {
        edit: Edit,
        asker: Asker,
    },
}

pub enum Done {
    Saved {
        path: PathBuf,
        result: std::io::Result<()>,
    },
    Loaded {
        edit: Edit,
        asker: Asker,
        result: Box<Result<Fresh, String>>,
    },
    /// The client keys file changed (or was read for the first time): its keys, or the problem.
    Keys(Result<crate::store::keys::KeyFile, String>),
}

/// How often the keys file is looked at, on a deadline whatever else the thread does: `qcc key
/// add|set|revoke` reach a running proxy within this (a `stat` each time; the file is read only
/// when its size, time or inode changed), well within the second the docs promise.
const KEYS_CHECK: Duration = Duration::from_millis(250);

/// Batches of access-log lines waiting for the disk, at most, and the bytes of one batch (a
/// turn of the loop's lines): at most 16 MiB held for a disk that stalls; more is dropped.
const HISTORY_QUEUE: usize = 64;
const BATCH_MAX: usize = 256 * 1024;
/// A batch goes to the history thread this often, or sooner once it holds this much: a few
/// channel operations and writes a second under load, not one per request.
const BATCH_EVERY: Duration = Duration::from_millis(100);
const BATCH_SOON: usize = 64 * 1024;
/// How long an exit waits for the access log's last lines.
const HISTORY_EXIT_WAIT: Duration = Duration::from_secs(3);

/// What the thread needs to know, fixed at start.
pub struct Paths {
    pub config: PathBuf,
    pub cluster: String,
    /// The started cluster's fallback chain when the priorities set it (`Settings::chain`), as
    /// it was at start.
    pub chain: Option<Vec<String>>,
    /// Serving by priority: the state dir whose priority.json is read again at each reload, so
    /// that `qcc priority set` and `policy` reach the running proxy.
    pub priorities: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// `--access-log` (`-`: stderr).
    pub access_log: Option<PathBuf>,
    /// `$QCC_HOME/keys.json`, watched, and how it was when the loop read it at start.
    pub keys: PathBuf,
    pub keys_seen: Seen,
    /// Clusters served because a request named them (`Edit::Serve`), read with every reload.
    pub also: Vec<String>,
}

pub struct Disk {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// Lines for the access log's thread (bounded), its reopen request (SIGHUP), and word
    /// that it has written its last line.
    lines: Option<SyncSender<Vec<u8>>>,
    /// Lines not yet handed over (`send_lines`), and when the last batch went.
    batch: Vec<u8>,
    batch_sent: Instant,
    reopen: Arc<AtomicBool>,
    history: Option<JoinHandle<()>>,
    history_done: Receiver<()>,
}

impl Disk {
    pub fn start(mut paths: Paths, waker: Arc<Waker>) -> std::io::Result<Disk> {
        let (job_tx, job_rx) = channel::<Job>();
        let (done_tx, done_rx) = channel::<Done>();
        let (line_tx, line_rx) = sync_channel::<Vec<u8>>(HISTORY_QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let (log_path, reopen_asked) = (paths.access_log.clone(), reopen.clone());
        let (history_tx, history_done) = channel::<()>();
        let history = std::thread::Builder::new().name("qcc-history".into()).spawn(move || {
            let mut log = AccessLog::open(log_path.clone());
            while let Ok(line) = line_rx.recv() {
                if reopen_asked.swap(false, Ordering::Relaxed) {
                    log = AccessLog::open(log_path.clone());
                }
                if !line.is_empty() {
                    log.write(&line);
                }
            }
            let _ = history_tx.send(());
        })?;
        let thread = std::thread::Builder::new().name("qcc-disk".into()).spawn(move || {
            let mut keys_seen = paths.keys_seen;
            let mut keys_due = Instant::now() + KEYS_CHECK;
            let send = |done: Done| {
                let sent = done_tx.send(done).is_ok();
                let _ = waker.wake();
                sent
            };
            loop {
                let job = match job_rx.recv_timeout(keys_due.saturating_duration_since(Instant::now())) {
                    Ok(job) => Some(job),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let done = match job {
                    Some(Job::Save { path, bytes }) => {
                        let result = crate::store::fsutil::atomic_write(&path, &bytes);
                        Some(Done::Saved { path, result })
                    }
                    Some(Job::Switch { home, from, to, reason, kind }) => {
                        let result = crate::store::priority::Priorities::edit(&home)
                            .and_then(|mut p| {
                                p.record_switch(Some(&from), &to, &reason, kind);
                                p.save()
                            })
                            .map_err(|e| std::io::Error::other(e.to_string()));
                        Some(Done::Saved { path: crate::store::priority::Priorities::path(&home), result })
                    }
                    Some(Job::Load { edit, asker }) => {
                        if let Edit::Serve(name) = &edit {
                            if !paths.also.contains(name) {
                                paths.also.push(name.clone());
                            }
                        }
                        let result = Box::new(load(&paths, &edit));
                        Some(Done::Loaded { edit, asker, result })
                    }
                    None => None,
                };
                // The keys file on its deadline, and at once after a key edit: its new table
                // reaches the loop before the edit's answer does, so once the page is told `ok`,
                // a revoked key is refused.
                let key_edit = matches!(&done, Some(Done::Loaded { edit: Edit::Key(_), .. }));
                if key_edit || Instant::now() >= keys_due {
                    keys_due = Instant::now() + KEYS_CHECK;
                    if let Some(keys) = check_keys(&paths.keys, &mut keys_seen) {
                        if !send(keys) {
                            break;
                        }
                    }
                }
                if let Some(done) = done {
                    if !send(done) {
                        break;
                    }
                }
            }
        })?;
        Ok(Disk {
            jobs: Some(job_tx),
            done: done_rx,
            thread: Some(thread),
            lines: Some(line_tx),
            batch: Vec::new(),
            batch_sent: Instant::now(),
            reopen,
            history: Some(history),
            history_done,
        })
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            // The thread ends only when this sender is dropped: a send cannot fail while we live.
            let _ = tx.send(job);
        }
    }

    /// Replace `path` with `bytes` atomically; the result comes back as `Done::Saved`.
    pub fn save(&self, path: PathBuf, bytes: Vec<u8>) {
        self.send(Job::Save { path, bytes });
    }

    /// Add a `switch_history` entry (`kind`: failover or auto) to `$QCC_HOME/priority.json`;
    /// the result comes back as `Done::Saved`.
    pub fn record_switch(&self, home: PathBuf, from: String, to: String, reason: String, kind: &'static str) {
        self.send(Job::Switch { home, from, to, reason, kind });
    }

    /// The buffer the next access-log lines go into (a line ends with `\n`). Lines are handed
    /// to the history thread a batch at a time (`send_lines`): one channel operation and one
    /// write per batch, not per request.
    pub fn line_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.batch
    }

    /// When the lines waiting in the batch are due at the history thread (`BATCH_EVERY` after
    /// the last hand-over), if any wait.
    pub fn lines_due(&self) -> Option<Instant> {
        (!self.batch.is_empty()).then_some(self.batch_sent + BATCH_EVERY)
    }

    /// Hand the batch of lines to the history thread when it is due or large (`BATCH_SOON`), or
    /// always (`now` `None`: at exit). Returns how many lines were dropped: its queue is full (a
    /// stalled disk) or the batch outgrew `BATCH_MAX`; the loop never waits.
    pub fn send_lines(&mut self, now: Option<Instant>) -> u64 {
        if self.batch.is_empty() {
            return 0;
        }
        if let Some(now) = now {
            if self.batch.len() < BATCH_SOON && now < self.batch_sent + BATCH_EVERY {
                return 0;
            }
            self.batch_sent = now;
        }
        let batch = std::mem::take(&mut self.batch);
        let lines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count() as u64;
        if batch.len() > BATCH_MAX {
            return lines(&batch);
        }
        match self.lines.as_ref().map(|tx| tx.try_send(batch)) {
            Some(Err(TrySendError::Full(b) | TrySendError::Disconnected(b))) => lines(&b),
            Some(Ok(())) | None => 0,
        }
    }

    /// Reopen the access log before its next line (SIGHUP, after a rotation).
    pub fn reopen_access_log(&self) {
        self.reopen.store(true, Ordering::Relaxed);
        if let Some(tx) = &self.lines {
            let _ = tx.try_send(Vec::new()); // (an empty line wakes the thread; a full queue will)
        }
    }

    /// Read the cluster again (after `edit`); the result comes back as `Done::Loaded`.
    pub fn load(&self, edit: Edit, asker: Asker) {
        self.send(Job::Load { edit, asker });
    }

    pub fn try_next(&self) -> Option<Done> {
        match self.done.try_recv() {
            Ok(d) => Some(d),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }

    /// Finish every job handed over (the last state writes at exit), then stop the thread.
    /// The access log gets a few seconds for its queued lines: a disk that has stalled it must
    /// not stall the exit (its thread is left to the process's end).
    pub fn finish(&mut self) {
        self.send_lines(None);
        self.jobs = None;
        self.lines = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.history_done.recv_timeout(HISTORY_EXIT_WAIT).is_ok() {
            if let Some(t) = self.history.take() {
                let _ = t.join();
            }
        }
    }
}

/// What tells a change of the keys file: (size, mtime ns, inode); zeros when it is missing.
pub type Seen = (u64, i128, u64);

/// The keys file's `Seen` now. Taken before the file is read, so a change during the read is
/// still a change.
pub fn keys_seen(path: &std::path::Path) -> Seen {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => (m.len(), i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()), m.ino()),
        Err(_) => (0, 0, 0),
    }
}

/// `Done::Keys` when the keys file changed since `seen`.
fn check_keys(path: &std::path::Path, seen: &mut Seen) -> Option<Done> {
    let now = keys_seen(path);
    if *seen == now {
        return None;
    }
    *seen = now;
    Some(Done::Keys(crate::store::keys::KeyFile::load(path).map_err(|e| e.to_string())))
}

/// Make the edit (as the CLI's command would), then read the cluster and build its endpoints
/// (reading their CA files).
fn load(paths: &Paths, edit: &Edit) -> Result<Fresh, String> {
    let outcome = make_edit(paths, edit).map_err(|e| e.to_string())?;
    let mut fresh = read_cluster(paths)?;
    fresh.outcome = outcome;
    Ok(fresh)
}

fn make_edit(paths: &Paths, edit: &Edit) -> crate::error::Result<serde_json::Value> {
    use serde_json::json;
    let config = || ConfigFile::edit(&paths.config);
    // The served cluster that has endpoint `which` (an id or a name): the started one first.
    let owner = |c: &ConfigFile, which: &str| -> crate::error::Result<String> {
        let main = paths.cluster.as_str();
        if c.resolve(main, which).is_ok() {
            return Ok(main.to_string());
        }
        let served = crate::store::served::served(c, main, chain_now(paths, c)?.as_deref())?.clusters;
        let found = served.iter().skip(1).find(|cl| c.resolve(&cl.name, which).is_ok());
        Ok(found.map_or(main, |cl| cl.name.as_str()).to_string())
    };
    let cluster = paths.cluster.as_str();
    match edit {
        Edit::None => return Ok(serde_json::Value::Null),
        Edit::Serve(name) => {
            ConfigFile::load(&paths.config)?.cluster(name)?; // one line naming what is wrong
            return Ok(json!({"cluster": name}));
        }
        Edit::Key(k) => {
            let (mut file, _lock) = crate::store::keys::KeyFile::edit(&paths.keys)?;
            let out = match k {
                KeyEdit::Add { name, change } => {
                    json!({"key": file.add(name, change, std::time::SystemTime::now())?, "name": name})
                }
                KeyEdit::Set { name, change } => {
                    file.set(name, change)?;
                    json!({"name": name})
                }
                KeyEdit::Revoke { name } => {
                    json!({"name": name, "revoked": file.revoke(name, std::time::SystemTime::now())?})
                }
            };
            file.save(&paths.keys)?;
            return Ok(out);
        }
        Edit::Enable { id, enabled } => {
            let change = crate::store::profiles::EndpointChange { enabled: Some(*enabled), ..Default::default() };
            let mut c = config()?;
            let cluster = owner(&c, id)?;
            c.update_endpoint(&cluster, id, &change)?;
            c.save()?;
        }
        Edit::Add(new) => {
            let mut c = config()?;
            let (id, name) = c.add_endpoint(cluster, new)?;
            c.save()?;
            return Ok(json!({"endpoint": id, "name": name}));
        }
        Edit::Set { which, change } => {
            let mut c = config()?;
            let cluster = owner(&c, which)?;
            let id = c.resolve(&cluster, which)?;
            c.update_endpoint(&cluster, &id, change)?;
            c.save()?;
            return Ok(json!({"endpoint": id}));
        }
        Edit::Remove { which } => {
            let mut c = config()?;
            let cluster = owner(&c, which)?;
            let id = c.resolve(&cluster, which)?;
            c.remove_endpoint(&cluster, &id)?;
            c.save()?;
            return Ok(json!({"endpoint": id, "removed": true}));
        }
        Edit::Cluster { retry_on, strategy } => {
            let mut c = config()?;
            c.set_cluster(cluster, *retry_on, *strategy)?;
            c.save()?;
        }
    }
    Ok(serde_json::Value::Null)
}

/// The started cluster's fallback chain now: from priority.json as it is, when the proxy serves
/// by priority (a broken file refuses the reload, naming it); else none.
fn chain_now(paths: &Paths, file: &ConfigFile) -> crate::error::Result<Option<Vec<String>>> {
    let Some(home) = &paths.priorities else { return Ok(paths.chain.clone()) };
    let p = crate::store::priority::Priorities::load(home)?;
    if let Some(now) = p.serving().filter(|s| *s != paths.cluster) {
        log::warn!("priority.json now serves '{now}'; this proxy serves '{}' until it restarts", paths.cluster);
    }
    Ok(Some(p.chain_after(&paths.cluster, &file.profile_names())))
}

/// Read the served clusters, build their endpoints (reading their CA files).
fn read_cluster(paths: &Paths) -> Result<Fresh, String> {
    let file = ConfigFile::load(&paths.config).map_err(|e| e.to_string())?;
    let chain = chain_now(paths, &file).map_err(|e| e.to_string())?;
    let served = crate::store::served::served(&file, &paths.cluster, chain.as_deref()).map_err(|e| e.to_string())?;
    for why in &served.skipped {
        log::warn!("{why}");
    }
    let mut clusters = served.clusters;
    // The clusters requests named, each with its chain, while there is room.
    for name in &paths.also {
        let Ok(more) = crate::store::served::served(&file, name, None) else { continue };
        for c in more.clusters {
            if !clusters.iter().any(|have| have.name == c.name) && clusters.len() < crate::store::served::MAX_SERVED {
                clusters.push(c);
            }
        }
    }
    let prices = file.prices().map_err(|e| e.to_string())?;
    let notify_urls = file.notify_urls().map_err(|e| e.to_string())?;
    // CA files are read again (they may have been renewed); endpoints share configs.
    let mut tls_configs = crate::proxy::event::transport::TlsConfigs::default();
    let mut endpoints = Vec::new();
    for (c, cluster) in clusters.iter().enumerate() {
        for cfg in &cluster.endpoints {
            endpoints.push((
                c,
                cfg.clone(),
                crate::proxy::event::transport::tls_for(cfg, paths.ca_file.as_deref(), &mut tls_configs)?,
            ));
        }
    }
    let alert_tls = match crate::proxy::shared::notify::Notifier::any_https(&notify_urls) {
        true => Some(crate::proxy::event::transport::alert_tls(paths.ca_file.as_deref())?),
        false => None,
    };
    Ok(Fresh { clusters, prices, notify_urls, alert_tls, endpoints, outcome: serde_json::Value::Null })
}

/// The access log rotates past this size: `PATH` becomes `PATH.1` (`PATH.1` becomes `PATH.2`
/// ...), `ROTATED_KEPT` of them kept; the request history reads them all, newest first.
const ACCESS_LOG_MAX: u64 = 64 * 1024 * 1024;
const ROTATED_KEPT: usize = 4;

/// The access log file (`--access-log PATH`, by default `$QCC_HOME/access.jsonl`; `-` for
/// stderr), opened, written and rotated by the history thread.
struct AccessLog {
    path: Option<PathBuf>,
    file: Option<std::fs::File>,
    /// Its size, to rotate at `max` (a regular file only: never a FIFO or a device).
    size: u64,
    max: u64,
}

impl AccessLog {
    fn open(path: Option<PathBuf>) -> AccessLog {
        AccessLog::with_max(path, ACCESS_LOG_MAX)
    }

    fn with_max(path: Option<PathBuf>, max: u64) -> AccessLog {
        let file = match path.as_deref() {
            Some(p) if p.as_os_str() != "-" => {
                use std::os::unix::fs::OpenOptionsExt;
                match std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(p) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        log::warn!("cannot open the access log {}: {e}", p.display());
                        None
                    }
                }
            }
            _ => None,
        };
        let regular = file.as_ref().and_then(|f| f.metadata().ok()).filter(std::fs::Metadata::is_file);
        let (size, max) = match regular {
            Some(m) => (m.len(), max),
            None => (0, u64::MAX),
        };
        AccessLog { path, file, size, max }
    }

    fn write(&mut self, line: &[u8]) {
        // A full disk loses log lines, never a request.
        let _ = match (&mut self.file, self.path.as_deref().is_some_and(|p| p.as_os_str() == "-")) {
            (_, true) => std::io::stderr().write_all(line),
            (Some(f), false) => f.write_all(line).map(|()| self.size += line.len() as u64),
            (None, false) => Ok(()),
        };
        if self.size >= self.max {
            self.rotate();
        }
    }

    /// `PATH` -> `PATH.1` -> ... -> `PATH.{ROTATED_KEPT}` (the oldest goes), then a new `PATH`.
    fn rotate(&mut self) {
        let Some(path) = self.path.clone() else { return };
        let numbered = |i: usize| {
            let mut name = path.as_os_str().to_os_string();
            name.push(format!(".{i}"));
            PathBuf::from(name)
        };
        for i in (1..ROTATED_KEPT).rev() {
            let _ = std::fs::rename(numbered(i), numbered(i + 1));
        }
        if let Err(e) = std::fs::rename(&path, numbered(1)) {
            log::warn!("cannot rotate the access log {}: {e}", path.display());
            self.max = u64::MAX; // (said once; it grows on)
            return;
        }
        *self = AccessLog::with_max(Some(path), self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_log_rotates_at_its_size_and_keeps_a_few() {
        let dir = std::env::temp_dir().join(format!("qcc-accesslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.jsonl");
        let mut log = AccessLog::with_max(Some(path.clone()), 100);
        for i in 0..62 {
            log.write(format!("{{\"n\":{i:02}}}\n").as_bytes()); // 9 bytes a line
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        let numbered = |i: usize| dir.join(format!("access.jsonl.{i}"));
        // Rotated after lines 12, 24, 36, 48 and 60 (108 bytes each time).
        assert_eq!(read(path.clone()).lines().count(), 2, "the newest lines in the live file");
        assert!(read(numbered(1)).lines().count() == 12 && read(numbered(1)).contains("\"n\":59"));
        assert!(numbered(ROTATED_KEPT).exists() && !numbered(ROTATED_KEPT + 1).exists(), "a few kept, no more");
        assert!(!read(numbered(ROTATED_KEPT)).contains("\"n\":00"), "the oldest went");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
