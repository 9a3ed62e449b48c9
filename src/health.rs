//! Per-endpoint health: counters, status and the flip that is logged once.
//!
//! Owned by the event loop (see `failure_queue` for the single-owner invariant);
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
        todo!()
    }
}

#[derive(Debug, Clone)]
pub struct Health {
    pub status: HealthStatus,
    pub consecutive_failures: u32,
    pub total_requests: u64,
    pub failed_requests: u64,
    /// Requests currently in flight to this endpoint (least_connections uses it).
    pub in_flight: u32,
    /// Sum of response times of successful requests, for the average.
    total_response_ms: u64,
    successful_requests: u64,
    /// Not picked before this instant (an upstream's `Retry-After`).
    pub retry_after_until: Option<Instant>,
}

/// A status change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flip {
    pub from: HealthStatus,
    pub to: HealthStatus,
}

impl Health {
    pub fn new() -> Health {
        todo!()
    }
    /// A request to this endpoint completed successfully after `elapsed`.
    pub fn record_success(&mut self, elapsed: Duration) -> Option<Flip> {
        let _ = elapsed;
        todo!()
    }
    /// An attempt failed. `max_failures` consecutive failures make it unhealthy;
    /// fewer make it degraded.
    pub fn record_failure(&mut self, max_failures: u32) -> Option<Flip> {
        let _ = max_failures;
        todo!()
    }
    /// A recovery probe answered 200: healthy again, consecutive failures reset.
    pub fn restore(&mut self) -> Option<Flip> {
        todo!()
    }
    /// Picked only when enabled, not unhealthy, below max_failures, and not inside a Retry-After window.
    pub fn is_usable(&self, enabled: bool, max_failures: u32, now: Instant) -> bool {
        let _ = (enabled, max_failures, now);
        todo!()
    }
    pub fn begin(&mut self) {
        todo!()
    }
    pub fn end(&mut self) {
        todo!()
    }
    pub fn set_retry_after(&mut self, until: Instant) {
        let _ = until;
        todo!()
    }
    /// Percent, 100.0 when there were no requests.
    pub fn success_rate(&self) -> f64 {
        todo!()
    }
    /// Milliseconds, 0.0 when there were no successes.
    pub fn avg_response_ms(&self) -> f64 {
        todo!()
    }
}
