//! What qcc keeps on disk: the user's config (`cache.json`), base URLs, the pid file and the
//! state-dir lock, atomic writes, and the timestamp format the Python qcc uses.

pub mod bytes;
pub mod cluster;
pub mod config;
pub mod fsutil;
pub mod keys;
pub mod models;
pub mod names;
pub mod pidfile;
pub mod presets;
pub mod prices;
pub mod priority;
pub mod profiles;
pub mod proxy_flags;
pub mod requestlog;
pub mod routes;
pub mod rules;
pub mod served;
pub mod sync;
pub mod timefmt;
pub mod url;
pub mod usage;
