//! Time in the loop: how long `poll` may sleep, the timers (state-file writes, probes, the accept
//! retry) and the sweep that fires expired deadlines. Deadlines are derived from state (phase
//! start, last byte) and checked by a sweep whose time is the earliest pending deadline.

use std::time::{Duration, Instant};

use crate::proxy::event::slab::Key;
use crate::proxy::state::*;
use crate::proxy::{EventLoop, SWEEP_MIN_GAP};

impl EventLoop {
    /// How long poll may sleep: until the earliest deadline we know of.
    pub(in crate::proxy) fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let mut next = self.sh.next_probe;
        if let Some(t) = self.net.next_sweep {
            next = next.min(t);
        }
        for t in
            [self.sh.persist_at, self.sh.usage_at, self.accept_retry, self.sh.disk.lines_due()].into_iter().flatten()
        {
            next = next.min(t);
        }
        Some(next.saturating_duration_since(now))
    }

    pub(in crate::proxy) fn on_timers(&mut self, now: Instant) {
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            self.accept(now);
        }
        if self.sh.persist_at.is_some_and(|t| t <= now) {
            self.sh.persist();
        }
        if self.sh.usage_at.is_some_and(|t| t <= now) {
            self.sh.persist_usage();
        }
        if self.sh.next_probe <= now {
            self.sh.affinity.expire(now);
            self.probes.start_all(&mut self.net, &mut self.sh, now);
            self.sh.next_probe = now + self.sh.settings.verify_interval;
        }
        if self.net.next_sweep.is_some_and(|t| t <= now) {
            self.sweep(now);
        }
    }

    /// Fire every expired deadline and work out when the next one is due.
    pub(in crate::proxy) fn sweep(&mut self, now: Instant) {
        self.bodies.wake(&mut self.again);
        let mut next: Option<Instant> = None;
        let mut upd = |t: Instant| {
            if next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        if let Some(due) = self.net.sweep_pool(&mut self.sh.endpoints, now) {
            upd(due);
        }
        let keys: Vec<Key> = self.clients.keys().collect();
        for key in keys {
            if let Some(due) = self.client_deadline(key) {
                if due <= now {
                    self.on_client_deadline(key, now);
                    // A deadline may have queued a response (408): write it now.
                    self.drive(key, now);
                    if let Some(again) = self.client_deadline(key) {
                        upd(again.max(now + SWEEP_MIN_GAP));
                    }
                } else {
                    upd(due);
                }
            }
        }
        for due in self.sh.notifier.deadlines(&mut self.net, now) {
            upd(due);
        }
        if let Some(due) = self.orphans.deadlines(&mut self.net, &mut self.sh, now) {
            upd(due);
        }
        for due in self.probes.deadlines(&mut self.net, &mut self.sh, now) {
            upd(due);
        }
        self.net.next_sweep = next.map(|t| t.max(now + SWEEP_MIN_GAP));
    }

    pub(in crate::proxy) fn client_deadline(&self, key: Key) -> Option<Instant> {
        let c = self.clients.get(key)?;
        match &c.phase {
            ClientPhase::ReadingHead if c.inbuf.is_empty() && c.heads == 0 => Some(
                c.since + self.sh.settings.idle_timeout.min(self.sh.settings.header_timeout).min(FIRST_BYTE_TIMEOUT),
            ),
            ClientPhase::ReadingHead if c.inbuf.is_empty() => Some(c.since + self.sh.settings.idle_timeout),
            ClientPhase::ReadingHead => Some(c.since + self.sh.settings.header_timeout),
            ClientPhase::Closing => Some(c.since + LINGER),
            ClientPhase::Waiting { .. } => Some(c.since + DISK_WAIT),
            ClientPhase::Exchange(ex) => match &ex.attempt {
                Some(a) => Some(a.deadline),
                // Waiting for the rest of the body before an attempt could start.
                None => Some(c.since + self.sh.settings.idle_timeout),
            },
        }
    }

    pub(in crate::proxy) fn on_client_deadline(&mut self, key: Key, now: Instant) {
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        match &c.phase {
            ClientPhase::ReadingHead if c.inbuf.is_empty() => self.close_client(key, now),
            ClientPhase::ReadingHead => {
                self.sh.stats.bad_requests += 1;
                log::info!("client {}: request head not complete within --header-timeout -> 408", c.peer);
                self.with_conn(key, now, |conn| {
                    conn.respond_local_error(408, "request head not received in time", now)
                });
            }
            ClientPhase::Closing => self.close_client(key, now),
            ClientPhase::Waiting { .. } => {
                let peer = c.peer;
                if let Some((status, body)) = self.searches.overdue(key) {
                    self.respond_json(key, false, status, &body, now);
                } else {
                    log::warn!("client {peer}: the config was not read within {DISK_WAIT:?} -> 503");
                    let msg = "the proxy could not read its config in time";
                    self.with_conn(key, now, |conn| conn.respond_local_error(503, msg, now));
                }
            }
            ClientPhase::Exchange(_) => {
                if self.with_conn(key, now, |conn| conn.on_exchange_deadline(now)) == Some(true) {
                    self.close_client(key, now);
                }
            }
        }
    }
}
