//! A request that no endpoint may serve now (`eligibility.rs` said so of every one): answered
//! by the dialect that cannot take it when only such endpoints are left (a token count or the
//! model list locally, a 400 saying why a request has no form there), else a 503 that says what
//! is wrong: the cluster, how many endpoints each reason keeps out, and the fix, with
//! `retry-after` the soonest one may serve again and `x-should-retry: false` when none will
//! without the operator.

use std::time::Instant;

use crate::proxy::client::conn::{Ask, Conn};
use crate::proxy::clusters::eligibility;
use crate::proxy::eligibility::{Eligibility, Reason};
use crate::proxy::state::*;
use crate::translate;

impl Conn<'_> {
    /// No endpoint may serve the request. When the only ones that could are of a format that
    /// cannot take it (an OpenAI-format cluster asked for a token count, the models, or a PDF),
    /// qcc answers for them: the local answer of that format, or a 400 saying why the request
    /// has no form there. Anything else (disabled, at a cap, used up, every try spent): 503.
    pub(in crate::proxy) fn nowhere_to_go(&mut self, now: Instant) {
        let (_, dialect, other) = self.chances(now);
        let ClientPhase::Exchange(ex) = &self.c.phase else {
            return;
        };
        if let (0, Some(format), false) = (ex.attempts, dialect, other) {
            if let Some(why) = ex.untranslatable() {
                let why = why.to_string();
                self.sh.stats.bad_requests += 1;
                self.respond_local_error(400, &why, now);
                return;
            }
            self.answer_locally(&format);
            return;
        }
        self.sh.stats.rejected += 1;
        let (msg, retry_after, hopeless) = self.why_unavailable(now);
        log::info!("{msg} -> 503");
        self.respond_unavailable(&msg, retry_after, hopeless, now);
    }

    /// What a request that no endpoint may serve is told: its cluster, each reason with how many
    /// endpoints it keeps out, and the fix; `retry-after` the soonest any of them may serve
    /// again (a probe, a rate limit's reset, a cap's slot); `true` when none will without the
    /// operator (all disabled, none there, or none of a dialect that takes the request).
    fn why_unavailable(&self, now: Instant) -> (String, Option<u64>, bool) {
        let ClientPhase::Exchange(ex) = &self.c.phase else {
            return ("No available endpoints".into(), None, false);
        };
        let (endpoints, clusters, failures) = (&self.sh.endpoints, &self.sh.clusters, &self.sh.failures);
        let name = clusters.get(ex.cluster).map_or("?", |c| &*c.name);
        let mut counts = [0usize; Reason::COUNT];
        let mut soonest: Option<u64> = None;
        let mut soon = |secs: u64| soonest = Some(soonest.map_or(secs, |s: u64| s.min(secs)).max(1));
        for (i, e) in endpoints.iter().enumerate() {
            let Some(why) = eligibility(ex, i, e, clusters, failures, now).reason() else { continue };
            if why == Reason::OtherCluster || (why == Reason::Disabled && e.retired) {
                continue;
            }
            // (Tried or reached: both "already tried".)
            if let Some(n) = counts.get_mut(if why == Reason::Tried { Reason::Reached } else { why } as usize) {
                *n += 1;
            }
            match why {
                Reason::NoHeadroom => {
                    soon(e.headroom.blocked_until.map_or(60, |t| t.saturating_duration_since(now).as_secs()))
                }
                Reason::AtCap => soon(1),
                Reason::Queued | Reason::Unhealthy | Reason::Tried => {
                    soon(self.sh.next_probe.saturating_duration_since(now).as_secs())
                }
                _ => {}
            }
        }
        let total: usize = counts.iter().sum();
        if total == 0 {
            let msg = format!(
                "cluster '{name}' has no endpoints; add one: qcc endpoint add {name} --url URL --key-file FILE"
            );
            return (msg, None, true);
        }
        let said: Vec<String> = [
            (Reason::Disabled, "disabled"),
            (Reason::AtCap, "at its cap"),
            (Reason::NoHeadroom, "with its rate limit used up"),
            (Reason::Queued, "in the failure queue"),
            (Reason::Unhealthy, "unhealthy"),
            (Reason::Reached, "already tried by this request"),
            (Reason::Dialect, "of a format that cannot take this request"),
            (Reason::Lacks, "lacking this API"),
        ]
        .iter()
        .filter(|(r, _)| counts[*r as usize] > 0)
        .map(|(r, what)| format!("{} {what}", counts[*r as usize]))
        .collect();
        let hopeless =
            counts[Reason::Disabled as usize] + counts[Reason::Dialect as usize] + counts[Reason::Lacks as usize]
                == total;
        let fix = if counts[Reason::Disabled as usize] == total {
            format!("; enable one: qcc endpoint enable {name} NAME")
        } else if hopeless {
            format!("; add an endpoint that takes it, or enable one: qcc endpoint list {name}")
        } else {
            soonest.map_or_else(String::new, |s| format!("; one may serve again in {s} s"))
        };
        let noun = if total == 1 { "endpoint" } else { "endpoints" };
        let msg = format!("No available endpoints: cluster '{name}' has {total} {noun}, {}{fix}", said.join(", "));
        (msg, if hopeless { None } else { soonest }, hopeless)
    }

    /// What the request's chain offers it now: (some endpoint is usable, the dialect of one that
    /// is excluded only for its dialect, some may serve it, usable or as a last resort).
    pub(in crate::proxy) fn chances(&self, now: Instant) -> (bool, Option<crate::store::cluster::Format>, bool) {
        let ClientPhase::Exchange(ex) = &self.c.phase else {
            return (false, None, false);
        };
        let (endpoints, clusters, failures) = (&self.sh.endpoints, &self.sh.clusters, &self.sh.failures);
        let (mut usable, mut dialect, mut other) = (false, None, false);
        for (i, e) in endpoints.iter().enumerate() {
            match eligibility(ex, i, e, clusters, failures, now) {
                Eligibility::Excluded(Reason::Dialect | Reason::Lacks) => dialect = dialect.or(Some(e.cfg.format)),
                Eligibility::Excluded(_) => {}
                Eligibility::Usable => (usable, other) = (true, true),
                Eligibility::LastResort(_) => other = true,
            }
        }
        (usable, dialect, other)
    }

    /// The local answer of the dialect that cannot take the request (`translate::local_answer`).
    pub(in crate::proxy) fn answer_locally(&mut self, format: &crate::store::cluster::Format) {
        let ClientPhase::Exchange(ex) = &self.c.phase else {
            return;
        };
        let reach = ex.reach;
        let live = self.sh.endpoints.iter().filter(|e| e.cfg.enabled && !e.retired && (reach >> e.cluster) & 1 == 1);
        let (status, body) =
            translate::local_answer(format, ex.head.path_bytes(), ex.json_body(), live.map(|e| &e.cfg));
        let keep_alive = ex.keep_alive && ex.body_tracker.is_done();
        self.ask = Some(Ask::Reply { keep_alive, status, body });
    }
}
