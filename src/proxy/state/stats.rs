//! Request counters of the running proxy. Owned by `Shared`.

/// Request counters of the running proxy.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// The client went away before its response was complete.
    pub aborted: u64,
    pub retries: u64,
    /// Requests answered by the proxy itself (413, 408, 503 no endpoint): counted in `total`.
    pub rejected: u64,
    /// Heads that never became a request (400, 431, 408 slow head): not in `total`.
    pub bad_requests: u64,
    /// Wrong or missing access key (401): not in `total`, never forwarded.
    pub unauthorized: u64,
    /// Refused by a client key's limit (429): counted in `total`, never forwarded.
    pub limited: u64,
    /// Refused for a foreign `Host` or `Origin` (403, or 400 for a missing/repeated Host):
    /// not in `total`, never forwarded.
    pub forbidden: u64,
    /// 200 streams that failed before any content and were retried elsewhere.
    pub stream_retries: u64,
    /// Streams that carried an in-stream `error` event.
    pub stream_errors: u64,
    /// Messages replies whose usage could not be read (an encoded body).
    pub usage_unread: u64,
    /// Failed writes of the state files (full disk, file-size limit).
    pub state_write_failures: u64,
    /// Pooled upstream connections that closed before answering a request written to them
    /// (the keep-alive race): the attempt failed, the endpoint was not blamed.
    pub pool_races: u64,
    /// Access-log lines dropped because the disk did not keep up (`shared/disk.rs`).
    pub history_dropped: u64,
    /// Requests sent again on a fresh connection after a rested pooled one closed before
    /// answering (`forward/response.rs`, `is_stale`).
    pub stale_retries: u64,
}
