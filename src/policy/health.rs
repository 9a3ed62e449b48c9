//! Per-endpoint health: counters, status and the flip that is logged once.
//!
//! Owned by the event loop (see `FailureQueue` for the single-owner invariant);
//! never reads the clock: callers pass `now`.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Unknown,
    Healthy,
    Degraded,
    Unhealthy,
}

impl HealthStatus {
    /// The string used in cache.json and in status JSON: "unknown", "healthy", ...
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "unknown",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// How an attempt on an endpoint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answered as a working endpoint does.
    Ok = 0,
    /// Its own answer to the request (400, 404, ...), relayed as is: no verdict on the endpoint.
    Answered = 1,
    /// Failed and blamed.
    Failed = 2,
    /// A pooled connection lost to the keep-alive race: nobody blamed.
    Race = 3,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Answered, Outcome::Failed, Outcome::Race];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Answered => "answered",
            Outcome::Failed => "failed",
            Outcome::Race => "race",
        }
    }
}

/// An endpoint's health and the one record of how its attempts ended: the health label, the
/// status JSON and `/metrics` all read these counts.
#[derive(Debug, Clone)]
pub struct Health {
    pub status: HealthStatus,
    pub consecutive_failures: u32,
    /// Attempts by outcome (indexed by `Outcome as usize`).
    outcomes: [u64; 4],
    /// Sum of response times of successful requests, for the average.
    total_response_ms: u64,
    /// Not picked before this instant (an upstream's `Retry-After`).
    pub retry_after_until: Option<Instant>,
    /// Time to the response head of the last `LATENCY_SAMPLES` successes, in microseconds
    /// (a ring: `latency_next` is the next slot to overwrite).
    latencies: Vec<u32>,
    latency_next: usize,
}

/// Successes kept for the latency percentiles.
pub const LATENCY_SAMPLES: usize = 1000;

/// A status change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flip {
    pub from: HealthStatus,
    pub to: HealthStatus,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Health {
        Health {
            status: HealthStatus::Unknown,
            consecutive_failures: 0,
            outcomes: [0; 4],
            total_response_ms: 0,
            retry_after_until: None,
            latencies: Vec::new(),
            latency_next: 0,
        }
    }

    fn set(&mut self, to: HealthStatus) -> Option<Flip> {
        let from = std::mem::replace(&mut self.status, to);
        (from != to).then_some(Flip { from, to })
    }

    /// A request to this endpoint completed successfully after `elapsed`.
    pub fn record_success(&mut self, elapsed: Duration) -> Option<Flip> {
        self.outcomes[Outcome::Ok as usize] += 1;
        self.total_response_ms = self.total_response_ms.saturating_add(elapsed.as_millis() as u64);
        let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        if self.latencies.len() < LATENCY_SAMPLES {
            self.latencies.push(us);
        } else {
            self.latencies[self.latency_next] = us;
        }
        self.latency_next = (self.latency_next + 1) % LATENCY_SAMPLES;
        self.consecutive_failures = 0;
        self.set(HealthStatus::Healthy)
    }

    /// An attempt failed. `max_failures` consecutive failures make it unhealthy;
    /// fewer make it degraded.
    pub fn record_failure(&mut self, max_failures: u32) -> Option<Flip> {
        self.outcomes[Outcome::Failed as usize] += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let to = if self.consecutive_failures >= max_failures.max(1) {
            HealthStatus::Unhealthy
        } else {
            HealthStatus::Degraded
        };
        self.set(to)
    }

    /// The operator cleared the failure queue: the verdict is forgotten (unknown, eligible again);
    /// the counters stay.
    pub fn forget_failures(&mut self) -> Option<Flip> {
        self.consecutive_failures = 0;
        self.retry_after_until = None;
        self.set(HealthStatus::Unknown)
    }

    /// A recovery probe answered 200: healthy again, consecutive failures reset.
    pub fn restore(&mut self) -> Option<Flip> {
        self.consecutive_failures = 0;
        self.retry_after_until = None;
        self.set(HealthStatus::Healthy)
    }

    pub fn set_retry_after(&mut self, until: Instant) {
        self.retry_after_until = Some(self.retry_after_until.map_or(until, |u| u.max(until)));
    }

    /// The endpoint's own answer (no verdict), or a pooled connection lost to the keep-alive
    /// race (nobody blamed): counted, health unchanged.
    pub fn record(&mut self, o: Outcome) {
        debug_assert!(matches!(o, Outcome::Answered | Outcome::Race), "success and failure have their own records");
        self.outcomes[o as usize] += 1;
    }

    pub fn count(&self, o: Outcome) -> u64 {
        self.outcomes[o as usize]
    }

    /// Attempts that gave a verdict on the endpoint: successes and failures.
    pub fn total_requests(&self) -> u64 {
        self.count(Outcome::Ok) + self.count(Outcome::Failed)
    }

    pub fn failed_requests(&self) -> u64 {
        self.count(Outcome::Failed)
    }

    /// Picked only when enabled, not unhealthy, below max_failures, and not inside a Retry-After window.
    pub fn is_usable(&self, enabled: bool, max_failures: u32, now: Instant) -> bool {
        enabled
            && self.status != HealthStatus::Unhealthy
            && self.consecutive_failures < max_failures.max(1)
            && self.retry_after_until.is_none_or(|t| t <= now)
    }

    /// Percent, 100.0 when there were no requests.
    pub fn success_rate(&self) -> f64 {
        match self.total_requests() {
            0 => 100.0,
            n => self.count(Outcome::Ok) as f64 * 100.0 / n as f64,
        }
    }

    /// Upstream time to the response head over the last successes, in milliseconds:
    /// (p50, p95, p99, samples); `None` before the first success.
    pub fn latency_percentiles(&self) -> Option<(f64, f64, f64, usize)> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut v = self.latencies.clone();
        v.sort_unstable();
        let at = |q: f64| f64::from(v[((v.len() - 1) as f64 * q).round() as usize]) / 1000.0;
        Some((at(0.50), at(0.95), at(0.99), v.len()))
    }

    /// Milliseconds, 0.0 when there were no successes.
    pub fn avg_response_ms(&self) -> f64 {
        match self.count(Outcome::Ok) {
            0 => 0.0,
            n => self.total_response_ms as f64 / n as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_once_per_change() {
        let mut h = Health::new();
        let flips: Vec<Option<Flip>> = (0..10).map(|_| h.record_failure(3)).collect();
        assert_eq!(flips[0], Some(Flip { from: HealthStatus::Unknown, to: HealthStatus::Degraded }));
        assert_eq!(flips[2], Some(Flip { from: HealthStatus::Degraded, to: HealthStatus::Unhealthy }));
        assert_eq!(flips.iter().filter(|f| f.is_some()).count(), 2);
        assert_eq!((h.total_requests(), h.failed_requests(), h.consecutive_failures), (10, 10, 10));
        assert_eq!(h.restore(), Some(Flip { from: HealthStatus::Unhealthy, to: HealthStatus::Healthy }));
        assert_eq!(h.record_success(Duration::from_millis(30)), None);
        assert_eq!(h.avg_response_ms(), 30.0);
        assert!((h.success_rate() - 100.0 / 11.0).abs() < 1e-9);
    }

    #[test]
    fn usable_rules() {
        let now = Instant::now();
        let mut h = Health::new();
        assert!(h.is_usable(true, 3, now));
        assert!(!h.is_usable(false, 3, now));
        h.record_failure(3);
        assert!(h.is_usable(true, 3, now), "one failure of three: degraded but usable");
        h.record_failure(3);
        h.record_failure(3);
        assert!(!h.is_usable(true, 3, now));
        h.restore();
        h.set_retry_after(now + Duration::from_secs(5));
        assert!(!h.is_usable(true, 3, now + Duration::from_secs(4)));
        assert!(h.is_usable(true, 3, now + Duration::from_secs(5)));
        h.record(Outcome::Answered);
        h.record(Outcome::Race);
        assert_eq!((h.count(Outcome::Answered), h.count(Outcome::Race), h.total_requests()), (1, 1, 3));
    }

    #[test]
    fn latency_percentiles_over_a_bounded_ring() {
        let mut h = Health::new();
        assert!(h.latency_percentiles().is_none());
        for ms in 1..=100u64 {
            h.record_success(Duration::from_millis(ms));
        }
        let (p50, p95, p99, n) = h.latency_percentiles().unwrap();
        assert_eq!((p50, p95, p99, n), (51.0, 95.0, 99.0, 100));
        for _ in 0..5000 {
            h.record_success(Duration::from_millis(7));
        }
        assert_eq!(h.latency_percentiles().unwrap(), (7.0, 7.0, 7.0, LATENCY_SAMPLES));
    }
}
