//! A vendor's refusal that teaches a request rule. An Anthropic-format endpoint's 400 is held
//! (`response.rs`, `Reading::learn`) and read here: when it names one thing the request sent
//! that qcc may leave out (`policy::refusal::learn`: a top-level field, an `anthropic-beta`
//! value, adaptive thinking, `output_config.effort`), the endpoint learns the rule
//! (`EndpointConfig::learned`, written to its `metadata.learned_rules` by the disk thread, so
//! it holds across restarts), is not blamed, and the request goes to it again at once without
//! that thing: a refused request was never processed. Such a retry does not count against the
//! request's attempts; each must teach something new, at most `MAX_LEARNED` per request. Any other
//! 400 is the vendor's answer and goes to the client as it is. `--no-learn` turns this off.

use std::time::Instant;

use crate::policy::health::Outcome;
use crate::policy::refusal::{learn, Sent};
use crate::policy::route::Want;
use crate::proxy::client::conn::Conn;
use crate::proxy::shared::disk::Edit;
use crate::proxy::state::*;

/// Rules one request may teach (each refusal names one thing; Claude Code's newest request has
/// a handful a strict vendor may refuse).
pub const MAX_LEARNED: u8 = 8;

impl Conn<'_> {
    /// The attempt on endpoint `idx` failed with `failure`: when it was a 400 that teaches a rule,
    /// learn it and send the request there again. True when it did (the attempt is dealt with).
    pub(in crate::proxy) fn learn_from_refusal(&mut self, idx: usize, failure: &Failure, now: Instant) -> bool {
        if !matches!(failure, Failure::Status(400)) || !self.sh.settings.learn {
            return false;
        }
        let ClientPhase::Exchange(ex) = &mut self.c.phase else { return false };
        if ex.learned >= MAX_LEARNED {
            return false;
        }
        // What the request sent: its fields (read now if no rule read them), its betas.
        let Exchange { facts, body, head, stash, .. } = &mut **ex;
        let Some((held, _)) = stash.as_ref() else { return false };
        let refusal = held.windows(4).position(|w| w == b"\r\n\r\n").map_or(&held[..0], |i| &held[i + 4..]);
        facts.look(&[], body, Want { model: true, fields: true, ..Want::default() });
        let json = facts.json_body(body);
        let value =
            |name: &str| facts.fields().iter().find(|f| f.name == name).and_then(|f| json.get(f.value.0..f.value.1));
        let object = |name: &str| value(name).and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok());
        let adaptive = object("thinking").is_some_and(|t| t["type"] == "adaptive");
        let effort = object("output_config").is_some_and(|o| o.get("effort").is_some());
        let fields: Vec<&str> = facts.fields().iter().map(|f| f.name.as_str()).collect();
        let header = head.headers().filter(|(n, _)| n.eq_ignore_ascii_case(b"anthropic-beta"));
        let betas: Vec<String> = header
            .flat_map(|(_, v)| String::from_utf8_lossy(v).split(',').map(|b| b.trim().to_string()).collect::<Vec<_>>())
            .collect();
        let betas: Vec<&str> = betas.iter().map(String::as_str).collect();
        let Some(what) = learn(refusal, &Sent { fields: &fields, betas: &betas, adaptive, effort }) else {
            return false;
        };
        let ep = &mut self.sh.endpoints[idx];
        if !ep.cfg.learned.learn(&what) {
            return false; // already a rule: the vendor refuses something else it did not name
        }
        let (label, id) = (ep.cfg.label(), ep.cfg.id.clone());
        log::info!(
            "endpoint {label} refused {}: learned; sent without it from now on (`qcc endpoint set --forget-rules` forgets)",
            what.describe()
        );
        self.sh.history.push(&id, "learned", format!("does not take {}", what.describe()));
        if !self.sh.settings.builtin_default {
            let change =
                crate::store::profiles::EndpointChange { learned: Some(ep.cfg.learned.clone()), ..Default::default() };
            self.sh.disk.load(Edit::Set { which: id, change: Box::new(change) }, None);
            self.sh.endpoints[idx].learning += 1;
        }
        // Not reached, not tried, not an attempt: the vendor refused it before doing anything.
        ex.stash = None;
        ex.reached.remove(idx);
        ex.tried.remove(idx);
        ex.attempts = ex.attempts.saturating_sub(1);
        ex.learned += 1;
        ex.again = Some(idx);
        if let Some(f) = ex.failed.last_mut() {
            f.why = format!("HTTP 400: does not take {} (learned)", what.describe());
        }
        self.sh.stats.retries += 1;
        self.start_attempt(now);
        true
    }

    /// A 400 held only to be read here that taught nothing: the vendor's answer to this request,
    /// passed on as it came (health and the queue as they were), as if relayed. True when it was.
    pub(in crate::proxy) fn pass_on_refusal(&mut self, idx: usize, failure: &Failure, now: Instant) -> bool {
        let Failure::Status(status) = *failure else { return false };
        let cluster = self.sh.endpoints[idx].cluster;
        if self.sh.clusters[cluster].cfg.retry_on.contains(status) {
            return false; // a status that fails over: the usual way
        }
        let c = &mut *self.c;
        let ClientPhase::Exchange(ex) = &mut c.phase else { return false };
        let Some((bytes, must_close)) = ex.stash.take() else { return false };
        let close = !ex.keep_alive || !ex.body_tracker.is_done() || must_close;
        ex.failed.pop(); // (an answer, not a failed attempt)
        ex.first_byte = Some(now);
        c.out.push(&bytes);
        self.sh.endpoints[idx].health.record(Outcome::Answered);
        self.sh.stats.successful += 1;
        self.log_request(Some(idx), Some(status), "", now);
        self.end_exchange(close, now);
        true
    }
}
