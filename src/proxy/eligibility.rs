//! The one question every choice of endpoint asks: may this endpoint serve this exchange now?
//! The pick (`clusters::pick`), the hold before the first byte (`forward/pump.rs`), the retry
//! check (`forward/outcome.rs`), the headroom note and the local answers (`forward/attempt.rs`)
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

use super::state::{Endpoint, Exchange};
pub use crate::policy::eligibility::{Eligibility, Reason};

/// May endpoint `i` (`ep`) serve `ex` now? `born`: when the endpoint's cluster slot got its
/// cluster (`Cluster::born`; `clusters::eligibility` looks it up).
pub fn eligibility(
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
    if ep.lacks_count_tokens && ex.head.path_bytes() == crate::translate::COUNT_TOKENS {
        return Excluded(Reason::Lacks);
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
    // A queued pass-through endpoint is never probed (it has no credential but a client's): at
    // each probe round the next request is its probe, once a `retry-after` it was given passed.
    if ep.probe_by_request && ep.health.retry_after_until.is_none_or(|t| t <= now) {
        return Usable;
    }
    if failures.contains(&ep.cfg.id) {
        return LastResort(Reason::Queued);
    }
    if !ep.health.is_usable(true, ep.cfg.max_failures, now) {
        return LastResort(Reason::Unhealthy);
    }
    Usable
}
