//! `GET /_qcc/logs`: the request history for the dashboard, searched off the loop. Each search
//! runs on a thread of its own (`store/requestlog.rs` reads the access log backwards in blocks);
//! the asking client waits (`ClientPhase::Waiting`) and gets the page when the thread hands it
//! back through the channel and the loop's `Waker`. One search at a time: another meanwhile gets
//! 429. The loop never reads the log itself, so a search of a large log stalls no request.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::proxy::event::slab::Key;
use crate::proxy::state::ClientPhase;
use crate::proxy::EventLoop;
use crate::store::requestlog::{self, Cursor, Filter};

/// Entries per page, at most.
const MAX_PAGE: usize = 200;

/// The search thread's answer: for which client, its keep-alive wish, the JSON.
type Answer = (Key, bool, u16, Value);

pub struct Searches {
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    running: bool,
    /// The client waiting for the running search.
    client: Option<Key>,
}

impl Default for Searches {
    fn default() -> Searches {
        let (tx, rx) = channel();
        Searches { tx, rx, running: false, client: None }
    }
}

/// What a search past its time says (the thread's own answer, or the loop's at `DISK_WAIT`).
const TOO_LONG: &str = "the request-history search ran out of time: narrow it (since, endpoint, status, key)";

impl EventLoop {
    /// Start a search for client `ck` (its query string `query`), or answer at once when it
    /// cannot run.
    pub(in crate::proxy) fn start_search(&mut self, ck: Key, keep_alive: bool, query: &str, now: Instant) {
        let params = crate::proxy::admin::query::Params::parse(query);
        let bad = |msg: String| json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}});
        let Some(path) = self.sh.settings.access_log.clone().filter(|p| p.as_os_str() != "-") else {
            let msg = "this proxy keeps no request history: it was started with --no-access-log (or --access-log -)";
            return self.respond_json(ck, keep_alive, 409, &bad(msg.into()), now);
        };
        let filter = match Filter::from_fields(|name| params.text(name), "", std::time::SystemTime::now()) {
            Ok(f) => f,
            Err(e) => return self.respond_json(ck, keep_alive, 400, &bad(e), now),
        };
        let at = params.text("cursor").and_then(|c| Cursor::parse(&c));
        let n = params.text("n").and_then(|n| n.parse().ok()).unwrap_or(50usize).clamp(1, MAX_PAGE);
        if self.searches.running {
            let msg = "a search is running; try again in a moment";
            let body = json!({"type": "error", "error": {"type": "rate_limit_error", "message": msg}});
            return self.respond_json(ck, keep_alive, 429, &body, now);
        }
        if let Some(c) = self.clients.get_mut(ck) {
            c.phase = ClientPhase::Waiting { keep_alive };
            c.since = now;
            self.arm(now + crate::proxy::DISK_WAIT);
        }
        self.searches.running = true;
        self.searches.client = Some(ck);
        // Stopped by the thread itself within its limit (before the loop's `DISK_WAIT`).
        let deadline = Instant::now() + self.sh.settings.search_limit.min(crate::proxy::DISK_WAIT / 2);
        let (tx, waker) = (self.searches.tx.clone(), Arc::clone(&self.waker));
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
            self.searches.running = false;
            let body = json!({"type": "error", "error": {"type": "api_error", "message": "cannot start a search"}});
            self.respond_json(ck, keep_alive, 503, &body, now);
        }
    }

    /// A search thread answered: the waiting client gets its page.
    pub(in crate::proxy) fn on_searches(&mut self, now: Instant) {
        while let Ok((ck, keep_alive, status, body)) = self.searches.rx.try_recv() {
            self.searches.running = false;
            self.searches.client = None;
            if matches!(self.clients.get(ck).map(|c| &c.phase), Some(ClientPhase::Waiting { .. })) {
                self.respond_json(ck, keep_alive, status, &body, now);
                self.drive(ck, now);
            }
        }
    }
}

impl EventLoop {
    /// Client `ck` waited past `DISK_WAIT`: when it waits for a search, the search's own
    /// message (a 504); `false` when it waits for something else.
    pub(in crate::proxy) fn search_overdue(&mut self, ck: Key, now: Instant) -> bool {
        if self.searches.client != Some(ck) {
            return false;
        }
        self.searches.client = None; // (its thread stops at its own deadline; its answer goes nowhere)
        let body = json!({"type": "error", "error": {"type": "timeout_error", "message": TOO_LONG}});
        self.respond_json(ck, false, 504, &body, now);
        true
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
