//! The admin surface: the `/_qcc/` routes and the dashboard (`routes.rs`), the status JSON
//! (`status.rs`), `/metrics` (`metrics.rs`), what a finished request leaves: counters, a record
//! in the recent-requests ring and its access-log line (`finished.rs`, over `record/`), what the
//! disk thread hands back (`done.rs`), re-reading the config (`reload.rs`), the state files
//! (`persist.rs`), what each alert says (`alerts.rs`; `shared/notify.rs` sends them), the client
//! keys as they are shown (`keys.rs`), the request history searched off the loop (`logs.rs`) and
//! the dashboard's edits (`manage.rs`), both of which read their query with `query.rs`.

pub(crate) mod alerts;
pub(crate) mod done;
pub(crate) mod finished;
pub(crate) mod keys;
pub(crate) mod logs;
pub(crate) mod manage;
pub(crate) mod metrics;
pub(crate) mod persist;
pub(crate) mod query;
pub(crate) mod reload;
pub(crate) mod routes;
pub(crate) mod session;
pub(crate) mod status;
