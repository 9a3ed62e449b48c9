//! The line each request leaves in `proxy.log` (and its record: the dashboard's ring, the
//! counters, the access log, `admin/metrics.rs`), and `with_exchange`, which lends a client's
//! exchange to code that needs the whole loop beside it.

use std::time::Instant;

use crate::proxy::admin::requests::Ended;
use crate::proxy::client::exchange::shown;
use crate::proxy::event::slab::Key;
use crate::proxy::state::{ClientPhase, Exchange};
use crate::proxy::EventLoop;

impl EventLoop {
    /// One line per request; `note` says why a request failed or what happened in its stream.
    pub(in crate::proxy) fn log_request(
        &mut self,
        ck: Key,
        endpoint: Option<usize>,
        status: Option<u16>,
        note: &str,
        now: Instant,
    ) {
        self.with_exchange(ck, |this, ex, pushed| this.log_exchange(ex, pushed, endpoint, status, note, now));
    }

    /// Run `f` on client `ck`'s exchange with the whole loop at hand (and the client's bytes
    /// pushed so far): the exchange leaves its phase for the call, and comes back.
    pub(in crate::proxy) fn with_exchange(&mut self, ck: Key, f: impl FnOnce(&mut EventLoop, &Exchange, u64)) {
        let Some(c) = self.clients.get_mut(ck) else { return };
        if !matches!(c.phase, ClientPhase::Exchange(_)) {
            return;
        }
        let pushed = c.out.pushed();
        let ClientPhase::Exchange(ex) = std::mem::replace(&mut c.phase, ClientPhase::Closing) else { return };
        f(self, &ex, pushed);
        if let Some(c) = self.clients.get_mut(ck) {
            c.phase = ClientPhase::Exchange(ex);
        }
    }

    fn log_exchange(
        &mut self,
        ex: &Exchange,
        pushed: u64,
        endpoint: Option<usize>,
        status: Option<u16>,
        note: &str,
        now: Instant,
    ) {
        let out = pushed - ex.out_start;
        // No status: the upstream broke after the response started (counted as failed).
        let ended = status.map_or(Ended::Failed, Ended::Status);
        self.sh.record_request(ex, endpoint, ended, out, now);
        if log::log_enabled!(log::Level::Info) {
            // One line, written into one buffer (the log thread gets it formatted once more).
            use std::fmt::Write as _;
            let mut line = String::with_capacity(160);
            let _ = write!(line, "{} {} -> ", ex.head.method(), shown(ex.head.target()));
            match endpoint.and_then(|i| self.sh.endpoints.get(i)) {
                Some(ep) => {
                    let _ = write!(line, "{} ({})", ep.cfg.name, ep.cfg.id); // (`EndpointConfig::label`)
                }
                None => line.push('-'),
            }
            let _ = write!(line, " {ended}");
            if !note.is_empty() {
                let _ = write!(line, " ({note})");
            }
            let _ = write!(
                line,
                " attempts={} {}ms session={}",
                ex.attempts,
                now.duration_since(ex.started).as_millis(),
                ex.session_tag().unwrap_or("-")
            );
            if let Some((a, s)) = &ex.model_mapped {
                let _ = write!(line, " model={}->{}", shown(a), shown(s));
            }
            if let Some(ep) = ex.headroom_skip.and_then(|i| self.sh.endpoints.get(i)) {
                let _ = write!(line, " skipped={} (rate limit used up)", ep.cfg.name);
            }
            if let Some(k) = &ex.key {
                let _ = write!(line, " key={}", k.name);
            }
            log::info!("{line}");
        }
    }

    /// `record_usage` for client `ck`'s exchange: its session and key (the exchange leaves its
    /// phase for the recording, and comes back).
    pub(in crate::proxy) fn charge_exchange(
        &mut self,
        ck: crate::proxy::event::slab::Key,
        idx: usize,
        model: Option<&str>,
        c: &crate::store::usage::Counts,
        now: Instant,
    ) {
        self.with_exchange(ck, |this, ex, _| {
            this.sh.record_usage(idx, model, c, ex.session.as_deref(), ex.key.as_ref().map(|t| &t.name), now)
        });
    }
}
