//! The admin surface: the `/_qcc/` routes and the dashboard (`routes.rs`), the status JSON
//! (`status.rs`), `/metrics`, the recent-requests ring and the access log (`metrics.rs`), endpoint
//! events (`history.rs`), re-reading the config (`reload.rs`) and the state files (`persist.rs`).

pub(crate) mod history;
pub(crate) mod metrics;
pub(crate) mod persist;
pub(crate) mod reload;
pub(crate) mod routes;
pub(crate) mod status;
