//! Signals: SIGHUP re-reads the cluster and reopens the logs; SIGTERM/SIGINT stop the proxy
//! gracefully (drain): no new connections, idle ones closed, busy ones finish their exchange.

use std::time::Instant;

use crate::proxy::event::signals;
use crate::proxy::event::slab::Key;
use crate::proxy::shared::disk;
use crate::proxy::state::*;
use crate::proxy::{EventLoop, DRAIN_FIRST_REQUEST};

impl EventLoop {
    pub(in crate::proxy) fn on_signals(&mut self, now: Instant) {
        for signal in signals::drain(&mut self.signals) {
            match signal {
                signals::Signal::Stop => self.begin_drain(now),
                signals::Signal::Reload => {
                    // After logrotate moved them: both logs are opened again at their paths.
                    crate::logging::reopen();
                    self.sh.disk.reopen_access_log();
                    self.request_reload(disk::Edit::None, None, now);
                }
            }
        }
    }

    /// Stop accepting; idle keep-alive connections close now, busy ones after their current
    /// exchange, new ones that have not sent a request yet after `DRAIN_FIRST_REQUEST`.
    pub(in crate::proxy) fn begin_drain(&mut self, now: Instant) {
        if self.draining.is_some() {
            return;
        }
        let deadline = now + self.sh.settings.drain_timeout;
        self.draining = Some(deadline);
        crate::sdnotify::notify("STOPPING=1");
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let busy = self.clients.keys().filter(|k| self.client_busy(*k)).count();
        log::info!(
            "stopping: no new connections, draining {busy} in-flight requests (up to {:?})",
            self.sh.settings.drain_timeout
        );
        let keys: Vec<Key> = self.clients.keys().collect();
        for key in keys {
            if !self.client_busy(key) {
                if self.clients.get(key).is_some_and(|c| c.heads > 0) {
                    self.close_client(key, now);
                }
            } else if let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(key).map(|c| &mut c.phase) {
                ex.keep_alive = false;
            }
        }
        let fresh_until = now + DRAIN_FIRST_REQUEST.min(self.sh.settings.drain_timeout);
        self.drain_fresh_until = Some(fresh_until);
        self.net.arm(fresh_until);
        self.net.arm(deadline);
    }

    /// Close every connection without a request in progress or bytes to deliver.
    pub(in crate::proxy) fn close_idle_clients(&mut self, now: Instant) {
        let keys: Vec<Key> = self.clients.keys().collect();
        for key in keys {
            if !self.client_busy(key) {
                self.close_client(key, now);
            }
        }
    }

    /// The end: every client closed (a request still in progress is recorded as aborted), every
    /// orphaned answer charged with what it read, every probe stopped, so every lent upstream
    /// connection is given back (`state/lease.rs`). Idempotent.
    pub(in crate::proxy) fn close_all(&mut self, now: Instant) {
        let keys: Vec<Key> = self.clients.keys().collect();
        for key in keys {
            self.close_client(key, now);
        }
        self.orphans.end_all(&mut self.net, &mut self.sh, now);
        self.probes.cancel_all(&mut self.net, &mut self.sh);
    }

    /// A connection with a request in progress or bytes still to deliver.
    pub(in crate::proxy) fn client_busy(&self, key: Key) -> bool {
        self.clients.get(key).is_some_and(|c| {
            !c.out.is_empty()
                || !c.inbuf.is_empty()
                || matches!(c.phase, ClientPhase::Exchange(_) | ClientPhase::Waiting { .. })
        })
    }
}
