//! The one question every choice of endpoint asks: may this endpoint serve this exchange now?
//! The pick (`clusters::pick`), the hold before the first byte (`upstream/pump.rs`), the retry
//! check (`answer/outcome.rs`), the headroom note and the local answers (`upstream/attempt.rs`)
//! all ask `eligibility` and nothing else, so a rule (a dialect that cannot take a request, a
//! cap, a cluster slot reused by a reload) holds in every one of them at once.
//!
//! The answer is `Usable`, `LastResort` (only its health says no, or it was tried and provably
//! never reached: health may be stale, so when nothing is usable such an endpoint is still tried),
//! or `Excluded` with the reason (never tried for this request, not even as a last resort). The
//! reasons are said in the request history (`skipped`), so "why was my endpoint skipped?" has an
//! answer. Pure: the caller passes the exchange, the endpoint and the shared state's parts, and `now`.

use std::time::Instant;

use crate::policy::failure_queue::FailureQueue;

use super::clusters::Cluster;
use super::state::{Endpoint, Exchange};

/// Whether an endpoint may serve an exchange now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    Usable,
    /// Only when nothing is usable: its health says no (it may be stale), or it was tried and
    /// the request never reached it (its connect failed).
    LastResort(Reason),
    /// Never, for this request.
    Excluded(Reason),
}

/// Why an endpoint is not simply usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Disabled, or gone from the config (retired by a reload).
    Disabled,
    /// Of a cluster outside the request's chain, or of a cluster slot a reload gave to another
    /// cluster after the request began.
    OtherCluster,
    /// Its format cannot take this request (a path other than `POST /v1/messages` on an
    /// OpenAI-format endpoint, or content with no Chat Completions form: the request's facts
    /// say which).
    Dialect,
    /// The request may have reached it already: never sent twice.
    Reached,
    /// At one of its caps (`--rpm`, `--tpm`, `--concurrent`).
    AtCap,
    /// Its rate-limit headers say it is used up until their reset.
    NoHeadroom,
    /// Tried by this request; its connect failed, so it never got the request.
    Tried,
    /// In the failure queue, waiting for its probe.
    Queued,
    /// Its health says no (failures in a row, a `retry-after` running).
    Unhealthy,
}

impl Reason {
    /// As the request history and the logs say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Disabled => "disabled",
            Reason::OtherCluster => "another cluster's",
            Reason::Dialect => "its format cannot take this request",
            Reason::Reached => "already tried",
            Reason::AtCap => "at a cap",
            Reason::NoHeadroom => "rate limit used up",
            Reason::Tried => "tried, never reached",
            Reason::Queued => "in the failure queue",
            Reason::Unhealthy => "unhealthy",
        }
    }
}

impl Eligibility {
    pub fn is_usable(self) -> bool {
        self == Eligibility::Usable
    }

    /// Usable, or a last resort: the request may still go there.
    pub fn may_serve(self) -> bool {
        !matches!(self, Eligibility::Excluded(_))
    }

    /// Why it is not usable (`None`: it is).
    pub fn reason(self) -> Option<Reason> {
        match self {
            Eligibility::Usable => None,
            Eligibility::LastResort(r) | Eligibility::Excluded(r) => Some(r),
        }
    }
}

/// May endpoint `i` (`ep`, of `clusters[ep.cluster]`) serve `ex` now?
pub fn eligibility(
    ex: &Exchange,
    i: usize,
    ep: &Endpoint,
    clusters: &[Cluster],
    failures: &FailureQueue,
    now: Instant,
) -> Eligibility {
    let born = clusters.get(ep.cluster).map_or(u64::MAX, |c| c.born);
    eligibility_born(ex, i, ep, born, failures, now)
}

/// `eligibility`, given when the endpoint's cluster slot got its cluster (`Cluster::born`).
pub fn eligibility_born(
    ex: &Exchange,
    i: usize,
    ep: &Endpoint,
    born: u64,
    failures: &FailureQueue,
    now: Instant,
) -> Eligibility {
    use Eligibility::{Excluded, LastResort, Usable};
    if !ep.cfg.enabled || ep.retired {
        return Excluded(Reason::Disabled);
    }
    if (ex.reach >> ep.cluster) & 1 == 0 || born > ex.since {
        return Excluded(Reason::OtherCluster);
    }
    if !ex.dialect_takes(ep) {
        return Excluded(Reason::Dialect);
    }
    if ex.reached.contains(i) {
        return Excluded(Reason::Reached);
    }
    if ep.load.at_cap(&ep.cfg.caps, ep.in_flight.get(), now) {
        return Excluded(Reason::AtCap);
    }
    if ep.headroom.blocked(now) {
        return Excluded(Reason::NoHeadroom);
    }
    if ex.tried.contains(i) {
        return LastResort(Reason::Tried);
    }
    if failures.contains(&ep.cfg.id) {
        return LastResort(Reason::Queued);
    }
    if !ep.health.is_usable(true, ep.cfg.max_failures, now) {
        return LastResort(Reason::Unhealthy);
    }
    Usable
}

/// Whether some endpoint other than `except` may still serve `ex` (usable or as a last resort):
/// a retry, or holding a stream's start for one, is worth it.
pub fn another_may_serve(
    ex: &Exchange,
    except: Option<usize>,
    endpoints: &[Endpoint],
    clusters: &[Cluster],
    failures: &FailureQueue,
    now: Instant,
) -> bool {
    endpoints
        .iter()
        .enumerate()
        .any(|(i, ep)| Some(i) != except && eligibility(ex, i, ep, clusters, failures, now).may_serve())
}
