//! An endpoint's counters for `/metrics` beside its health records: requests by how they ended,
//! and a time-to-first-byte histogram. Data the endpoint holds (`state/endpoint.rs`) and `/metrics`
//! reads (`admin/metrics.rs`), so it lives below both.

/// Upper bounds (seconds) of the time-to-first-byte histogram.
pub const TTFB_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Per-endpoint counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Requests that ended on this endpoint, by class: 2xx, 3xx, 4xx, 5xx, failed, aborted.
    pub requests: [u64; 6],
    pub ttfb_buckets: [u64; TTFB_BUCKETS.len()],
    pub ttfb_sum: f64,
    pub ttfb_count: u64,
}

/// The classes of `Counters::requests`, in order.
pub const CLASSES: [&str; 6] = ["2xx", "3xx", "4xx", "5xx", "failed", "aborted"];

impl Counters {
    pub fn observe_ttfb(&mut self, secs: f64) {
        for (i, le) in TTFB_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.ttfb_buckets[i] += 1;
            }
        }
        self.ttfb_sum += secs;
        self.ttfb_count += 1;
    }
}
