//! Endpoint caps (`--rpm`, `--tpm`, `--concurrent`): what an endpoint may be given, counted here
//! as requests started and tokens charged over the last minute, plus the estimates of the
//! requests in progress under a `--tpm` cap (each holds its estimate until it ends, as a key's
//! budget reservation does: requests that start together cannot all pass a cap that their
//! answers, charged later, would fill). An endpoint at a cap is skipped
//! as a used-up one is (`headroom.rs`) — never failed, never queued — and picked again as soon as
//! it is under. Callers pass `now`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::store::cluster::Caps;

const MINUTE: Duration = Duration::from_secs(60);

/// An endpoint's load over the last minute.
#[derive(Debug, Default, Clone)]
pub struct Load {
    /// When each request of the last minute started (oldest first).
    starts: VecDeque<Instant>,
    /// Tokens charged in the last minute, with when (oldest first).
    tokens: VecDeque<(Instant, u64)>,
    /// The estimates the requests in progress hold (`Held`), under a tpm cap.
    held: Rc<Cell<u64>>,
}

/// A request's token estimate, held against its endpoint's tpm cap while it is in progress and
/// given back when it is dropped, wherever that is (as `InFlight` counts it): the sum cannot drift.
#[derive(Debug)]
pub struct Held {
    cell: Rc<Cell<u64>>,
    n: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.cell.set(self.cell.get().saturating_sub(self.n));
    }
}

impl Load {
    /// A request starts on the endpoint (only counted when it has an rpm cap).
    pub fn start(&mut self, caps: &Caps, now: Instant) {
        if caps.rpm.is_some() {
            prune(&mut self.starts, now, |t| *t);
            self.starts.push_back(now);
        }
    }

    /// A request that may use `estimate` tokens starts on the endpoint: held until it ends (only
    /// with a tpm cap; `None` otherwise).
    pub fn hold(&self, caps: &Caps, estimate: u64) -> Option<Held> {
        caps.tpm?;
        self.held.set(self.held.get().saturating_add(estimate));
        Some(Held { cell: Rc::clone(&self.held), n: estimate })
    }

    /// An answer of the endpoint was charged `n` tokens (only counted with a tpm cap).
    pub fn charge(&mut self, caps: &Caps, n: u64, now: Instant) {
        if caps.tpm.is_some() {
            prune(&mut self.tokens, now, |(t, _)| *t);
            self.tokens.push_back((now, n));
        }
    }

    /// Whether one more request would go past a cap; `in_flight`: the endpoint's requests now.
    pub fn at_cap(&self, caps: &Caps, in_flight: u32, now: Instant) -> bool {
        let recent = |t: &Instant| now.saturating_duration_since(*t) < MINUTE;
        caps.concurrent.is_some_and(|c| in_flight >= c)
            || caps.rpm.is_some_and(|r| self.starts.iter().rev().take_while(|t| recent(t)).count() as u64 >= r)
            || caps.tpm.is_some_and(|m| {
                let charged = self.tokens.iter().rev().take_while(|(t, _)| recent(t)).map(|(_, n)| n).sum::<u64>();
                charged.saturating_add(self.held.get()) >= m
            })
    }
}

fn prune<T>(q: &mut VecDeque<T>, now: Instant, at: impl Fn(&T) -> Instant) {
    while q.front().is_some_and(|x| now.saturating_duration_since(at(x)) >= MINUTE) {
        q.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_holds_for_a_minute_then_lets_go() {
        let t0 = Instant::now();
        let caps = Caps { rpm: Some(2), tpm: None, concurrent: None };
        let mut l = Load::default();
        l.start(&caps, t0);
        assert!(!l.at_cap(&caps, 0, t0));
        l.start(&caps, t0 + Duration::from_secs(1));
        assert!(l.at_cap(&caps, 0, t0 + Duration::from_secs(2)));
        assert!(!l.at_cap(&caps, 0, t0 + Duration::from_secs(60)), "the first start is a minute old");
        let caps = Caps { rpm: None, tpm: Some(100), concurrent: Some(1) };
        let mut l = Load::default();
        l.charge(&caps, 60, t0);
        assert!(!l.at_cap(&caps, 0, t0));
        assert!(l.at_cap(&caps, 1, t0), "one in flight is the concurrency cap");
        l.charge(&caps, 40, t0);
        assert!(l.at_cap(&caps, 0, t0) && !l.at_cap(&caps, 0, t0 + MINUTE));
        assert!(!Load::default().at_cap(&Caps::default(), 1000, t0), "no caps, no limit");
    }

    #[test]
    fn estimates_in_progress_count_against_a_tpm_cap_until_they_end() {
        let t0 = Instant::now();
        let caps = Caps { rpm: None, tpm: Some(300), concurrent: None };
        let l = Load::default();
        let a = l.hold(&caps, 150);
        assert!(!l.at_cap(&caps, 1, t0));
        let b = l.hold(&caps, 150);
        assert!(l.at_cap(&caps, 2, t0), "two estimates fill it before any answer is charged");
        drop((a, b));
        assert!(!l.at_cap(&caps, 0, t0), "given back when they end");
        assert!(l.hold(&Caps::default(), 10).is_none(), "held only under a tpm cap");
    }
}
