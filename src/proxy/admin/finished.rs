//! What a request leaves behind when it ends: its endpoint's request counters, a record in the
//! recent-requests ring (`requests.rs`), its line in the access log (handed to the disk's
//! history thread), and its line in `proxy.log`.

use std::time::{Instant, SystemTime};

use crate::mask::shown;
use crate::proxy::record::requests::{set, Ended, MAX_PATH_SHOWN};
use crate::proxy::shared::Shared;
use crate::proxy::state::Exchange;

impl Shared {
    /// A request ended (any way): the dashboard's ring, the counters, the access log.
    pub(in crate::proxy) fn record_request(
        &mut self,
        ex: &Exchange,
        endpoint: Option<usize>,
        status: Ended,
        out: u64,
        now: Instant,
    ) {
        if let Some(ep) = endpoint.and_then(|i| self.endpoints.get_mut(i)) {
            ep.counters.requests[status.class()] += 1;
        }
        let mut r = self.recent.take_slot();
        r.at = SystemTime::now();
        set(&mut r.method, ex.head.method());
        set(&mut r.path, crate::mask::clip(ex.head.target(), MAX_PATH_SHOWN));
        let ep = endpoint.and_then(|i| self.endpoints.get(i));
        set(&mut r.endpoint, ep.map_or("-", |ep| ep.cfg.id.as_str()));
        set(&mut r.endpoint_name, ep.map_or("-", |ep| ep.cfg.name.as_str()));
        set(&mut r.cluster, ep.map_or("", |ep| &*self.clusters[ep.cluster].name));
        r.route.clear();
        if let Some(rule) = ex.facts.route().and_then(|n| self.clusters[0].routes.get(n)) {
            use std::fmt::Write;
            let _ = write!(r.route, "{}", rule.describe());
        }
        let (asked, sent) = ex.model_mapped.as_ref().map_or(("", ""), |(a, s)| (a.as_str(), s.as_str()));
        set(&mut r.model_requested, crate::store::usage::model_name(asked));
        set(&mut r.model_sent, sent);
        let skipped = ex.headroom_skip.and_then(|i| self.endpoints.get(i)).map_or("", |e| e.cfg.name.as_str());
        set(&mut r.skipped_for_headroom, skipped);
        r.status = status;
        r.attempts = ex.attempts;
        r.body_log.clear();
        if let (Some(dir), Some(log)) = (self.settings.log_bodies.as_ref(), ex.body_log.as_ref()) {
            self.body_logs += 1;
            let path = dir.join(format!("body-{:03}.txt", self.body_logs % crate::proxy::record::bodies::FILES));
            set(&mut r.body_log, &path.display().to_string());
            self.disk.save(path, log.file());
        }
        r.ttfb_ms = ex.first_byte.map(|t| t.duration_since(ex.started).as_millis());
        r.duration_ms = now.duration_since(ex.started).as_millis();
        r.bytes_in = ex.head.raw.len() as u64 + ex.body.len() as u64 + ex.body_dropped;
        r.bytes_out = out;
        set(&mut r.session, ex.session_tag().unwrap_or(""));
        set(&mut r.key, ex.key.as_ref().map_or("", |k| &k.name));
        r.failed.clear();
        for f in &ex.failed {
            let ep = self.endpoints.get(f.endpoint);
            let (id, name) = ep.map_or(("-", "-"), |e| (e.cfg.id.as_str(), e.cfg.name.as_str()));
            r.failed.push((id.to_string(), name.to_string(), f.why.clone(), f.ms));
        }
        r.skipped.clear();
        for &(i, why) in &ex.skipped {
            let ep = self.endpoints.get(i);
            let (id, name) = ep.map_or(("-", "-"), |e| (e.cfg.id.as_str(), e.cfg.name.as_str()));
            r.skipped.push((id.to_string(), name.to_string(), why.as_str()));
        }
        // The last attempt is told here unless it is one of the failed ones.
        let last_failed = ex.failed.len() >= usize::from(ex.attempts);
        r.last_ms = ex.last_start.filter(|_| !last_failed).map(|t| now.saturating_duration_since(t).as_millis());
        let model = ex.tokens.as_ref().and_then(|(m, _)| m.as_deref()).unwrap_or("");
        set(&mut r.model, crate::store::usage::model_name(model));
        r.tokens = ex.tokens.as_ref().map(|(_, t)| t.clone());
        set(&mut r.priced_as, ex.priced_as.as_deref().unwrap_or(""));
        if self.settings.access_log.is_some() {
            // Into this turn's batch (`Disk::send_lines`); a Vec cannot fail to take bytes.
            let batch = self.disk.line_buffer();
            let _ = serde_json::to_writer(&mut *batch, &r.line());
            batch.push(b'\n');
        }
        self.recent.push(r);
    }

    /// A request ended: its record (`record_request`) and its one line in `proxy.log`; `note`
    /// says why it failed or what happened in its stream.
    pub(in crate::proxy) fn log_exchange(
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
        self.record_request(ex, endpoint, ended, out, now);
        if log::log_enabled!(log::Level::Info) {
            // One line, written into one buffer (the log thread gets it formatted once more).
            use std::fmt::Write as _;
            let mut line = String::with_capacity(160);
            let _ = write!(line, "{} {} -> ", ex.head.method(), shown(ex.head.target()));
            match endpoint.and_then(|i| self.endpoints.get(i)) {
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
            if let Some(ep) = ex.headroom_skip.and_then(|i| self.endpoints.get(i)) {
                let _ = write!(line, " skipped={} (rate limit used up)", ep.cfg.name);
            }
            if let Some(k) = &ex.key {
                let _ = write!(line, " key={}", k.name);
            }
            log::info!("{line}");
        }
    }
}
