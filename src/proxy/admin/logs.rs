//! `GET /_qcc/logs`: the request history for the dashboard, searched off the loop. Each search
//! runs on a thread of its own (`store/requestlog.rs` reads the access log backwards in blocks);
//! the asking client waits (`ClientPhase::Waiting`) and gets the page when the thread hands it
//! back through the channel and the loop's `Waker`. One search at a time: another meanwhile gets
//! 429. The loop never reads the log itself, so a search of a large log stalls no request.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use mio::Waker;

use crate::proxy::event::slab::Key;
use crate::store::requestlog::{self, Cursor, Filter};

/// Entries per page, at most.
const MAX_PAGE: usize = 200;

/// The search thread's answer: for which client, its keep-alive wish, the JSON.
pub type Answer = (Key, bool, u16, Value);

pub struct Searches {
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    running: bool,
    /// The client waiting for the running search.
    client: Option<Key>,
    /// How a search thread wakes the loop when it is done.
    waker: Arc<Waker>,
}

/// What a search past its time says (the thread's own answer, or the loop's at `DISK_WAIT`).
const TOO_LONG: &str = "the request-history search ran out of time: narrow it (since, endpoint, status, key)";

impl Searches {
    pub fn new(waker: Arc<Waker>) -> Searches {
        let (tx, rx) = channel();
        Searches { tx, rx, running: false, client: None, waker }
    }

    /// Start a search of the access log (`settings.access_log`) for client `ck` (its query
    /// string `query`, its keep-alive wish); the client waits for it. `Err`: the answer to give
    /// at once, when the search cannot run.
    pub fn start(
        &mut self,
        ck: Key,
        keep_alive: bool,
        query: &str,
        settings: &crate::settings::Settings,
    ) -> Result<(), (u16, Value)> {
        let params = crate::proxy::admin::query::Params::parse(query);
        let bad = |msg: String| json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}});
        let Some(path) = settings.access_log.clone().filter(|p| p.as_os_str() != "-") else {
            let msg = "this proxy keeps no request history: it was started with --no-access-log (or --access-log -)";
            return Err((409, bad(msg.into())));
        };
        let filter = Filter::from_fields(|name| params.text(name), "", std::time::SystemTime::now())
            .map_err(|e| (400, bad(e)))?;
        let at = params.text("cursor").and_then(|c| Cursor::parse(&c));
        let n = params.text("n").and_then(|n| n.parse().ok()).unwrap_or(50usize).clamp(1, MAX_PAGE);
        if self.running {
            let msg = "a search is running; try again in a moment";
            return Err((429, json!({"type": "error", "error": {"type": "rate_limit_error", "message": msg}})));
        }
        // Stopped by the thread itself within its limit (before the loop's `DISK_WAIT`).
        let deadline = Instant::now() + settings.search_limit.min(crate::proxy::DISK_WAIT / 2);
        let (tx, waker) = (self.tx.clone(), Arc::clone(&self.waker));
        let spawned = std::thread::Builder::new().name("qcc-search".into()).spawn(move || {
            lower_priority();
            let started = Instant::now();
            let files = requestlog::files(&path);
            let answer = match requestlog::search(&files, &filter, at, n, Some(deadline)) {
                Ok(page) => (
                    200,
                    json!({"entries": page.entries, "next": page.next.map(|c| c.to_string()),
                    "scanned_bytes": page.scanned_bytes, "files": files.len(), "ms": started.elapsed().as_millis()}),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    (504, json!({"type": "error", "error": {"type": "timeout_error", "message": TOO_LONG}}))
                }
                Err(e) => (
                    500,
                    json!({"type": "error", "error": {"type": "api_error",
                    "message": format!("reading {}: {e}", path.display())}}),
                ),
            };
            let _ = tx.send((ck, keep_alive, answer.0, answer.1));
            let _ = waker.wake();
        });
        if spawned.is_err() {
            return Err((
                503,
                json!({"type": "error", "error": {"type": "api_error", "message": "cannot start a search"}}),
            ));
        }
        self.running = true;
        self.client = Some(ck);
        Ok(())
    }

    /// A search thread's answer, if one came: for which client, its keep-alive wish, the JSON.
    pub fn next_answer(&mut self) -> Option<Answer> {
        let answer = self.rx.try_recv().ok()?;
        self.running = false;
        self.client = None;
        Some(answer)
    }

    /// Client `ck` waited past `DISK_WAIT`: when it waits for a search, the search's own
    /// message (a 504); `None` when it waits for something else.
    pub fn overdue(&mut self, ck: Key) -> Option<(u16, Value)> {
        if self.client != Some(ck) {
            return None;
        }
        self.client = None; // (its thread stops at its own deadline; its answer goes nowhere)
        Some((504, json!({"type": "error", "error": {"type": "timeout_error", "message": TOO_LONG}})))
    }
}

/// A search yields the CPU to the loop: this thread's nice value goes to 10 (Linux sets it per
/// thread; elsewhere the search keeps the default).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id; a failure only leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}
