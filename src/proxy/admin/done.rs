//! What the disk thread and the search threads hand back, each to its place: a search's page
//! to the client that waits for it (`logs.rs`); a state file written (`persist.rs`),
//! the keys file read again (the table swapped in, live counters kept), the cluster read after
//! an edit or a reload (applied by `reload.rs`, and the waiting client answered).

use std::time::Instant;

use serde_json::json;

use crate::proxy::admin::reload::error_json;
use crate::proxy::shared::disk::{Done, Edit};
use crate::proxy::state::ClientPhase;
use crate::proxy::EventLoop;

impl EventLoop {
    /// The disk thread finished something: a state file written, or the cluster read.
    pub(in crate::proxy) fn on_disk(&mut self, now: Instant) {
        while let Some(done) = self.sh.disk.try_next() {
            match done {
                Done::Saved { path, result } => self.sh.on_saved(path, result),
                Done::Keys(result) => self.on_keys(result),
                // A cluster a request's URL named, loaded (or not): that request goes on.
                Done::Loaded { edit: Edit::Serve(_), asker, result } => {
                    let error = match *result {
                        Ok(fresh) => {
                            self.apply_reload(fresh, now);
                            None
                        }
                        Err(e) => Some(e),
                    };
                    if let Some(ck) = asker {
                        self.with_conn(ck, now, |conn| conn.named_loaded(error, now));
                        self.drive(ck, now);
                    }
                }
                Done::Loaded { edit, asker, result } => {
                    // A learned rule's write came back (done or refused): one fewer on its way.
                    if let Edit::Set { which, change } = &edit {
                        if change.learned.is_some() {
                            for ep in self.sh.endpoints.iter_mut().filter(|ep| ep.cfg.id == *which) {
                                ep.learning = ep.learning.saturating_sub(1);
                            }
                        }
                    }
                    let (status, body) = match *result {
                        Ok(mut fresh) => {
                            let outcome = std::mem::take(&mut fresh.outcome);
                            crate::proxy::admin::manage::log_edit(&edit, &outcome);
                            let (added, changed, removed) = self.apply_reload(fresh, now);
                            let applied = json!({"added": added, "changed": changed, "removed": removed});
                            match edit {
                                Edit::None => (
                                    200,
                                    json!({"reloaded": true, "added": added, "changed": changed, "removed": removed}),
                                ),
                                Edit::Enable { id, enabled } => {
                                    (200, json!({"endpoint": id, "enabled": enabled, "applied": applied}))
                                }
                                _ => (200, json!({"ok": true, "done": outcome, "applied": applied})),
                            }
                        }
                        Err(e) if matches!(edit, Edit::None) => {
                            log::error!("reload failed, keeping the running configuration: {e}");
                            (409, error_json(&e))
                        }
                        Err(e) => {
                            log::info!("a dashboard edit was refused: {e}");
                            (409, error_json(&e))
                        }
                    };
                    let waiting = asker.and_then(|ck| match self.clients.get(ck).map(|c| &c.phase) {
                        Some(ClientPhase::Waiting { keep_alive }) => Some((ck, *keep_alive)),
                        _ => None,
                    });
                    if let Some((ck, keep_alive)) = waiting {
                        self.respond_json(ck, keep_alive, status, &body, now);
                        self.drive(ck, now);
                    }
                }
            }
        }
    }

    /// A search thread answered: the waiting client gets its page (`logs.rs`).
    pub(in crate::proxy) fn on_searches(&mut self, now: Instant) {
        while let Some((ck, keep_alive, status, body)) = self.searches.next_answer() {
            if matches!(self.clients.get(ck).map(|c| &c.phase), Some(ClientPhase::Waiting { .. })) {
                self.respond_json(ck, keep_alive, status, &body, now);
                self.drive(ck, now);
            }
        }
    }

    /// The keys file was read again: its keys replace the table (live counters kept by name). A
    /// broken file keeps the keys already loaded, said once per problem.
    fn on_keys(&mut self, result: Result<crate::store::keys::KeyFile, String>) {
        match result {
            Ok(file) => {
                let before = self.sh.keys.iter().count();
                self.sh.keys.apply(file);
                let after = self.sh.keys.iter().count();
                if self.sh.keys_problem.take().is_some() || before + after > 0 {
                    log::info!("client keys read: {after} defined");
                }
            }
            Err(e) => {
                if self.sh.keys_problem.as_deref() != Some(e.as_str()) {
                    log::warn!("{e}; keeping the {} client keys already loaded", self.sh.keys.iter().count());
                    self.sh.keys_problem = Some(e);
                }
            }
        }
    }
}
