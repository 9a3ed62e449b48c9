//! The admin surface: the `/_qcc/` routes and the dashboard (`routes.rs`), the status JSON
//! (`status.rs`), `/metrics`, the recent-requests ring and the access log (`metrics.rs`), endpoint
//! events (`history.rs`), re-reading the config (`reload.rs`), the state files (`persist.rs`),
//! alerts to webhooks (`notify.rs`), the client keys as they are shown (`keys.rs`), the request
//! history searched off the loop (`logs.rs`) and the dashboard's edits (`manage.rs`), both of
//! which read their query with `query.rs`.

pub(crate) mod history;
pub(crate) mod keys;
pub(crate) mod logs;
pub(crate) mod manage;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod persist;
pub(crate) mod query;
pub(crate) mod reload;
pub(crate) mod routes;
pub(crate) mod status;
