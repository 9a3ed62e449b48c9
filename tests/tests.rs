//! The one integration-test binary: runs the built `qcc` against mock upstreams on 127.0.0.1.

mod support;

mod affinity;
mod alerts;
mod blame;
mod budgets;
mod classify;
mod cli;
mod clusters;
mod compat;
mod edges;
mod eligibility;
mod failover;
mod firsthour;
mod headroom;
mod history;
mod hostile;
mod keys;
mod launch;
mod live;
mod manage;
mod memory;
mod models;
mod observe;
mod openai;
mod ops;
mod profiles;
mod proxy;
mod restart;
mod routing;
mod security;
mod soak;
mod streams;
mod sync;
mod tls;
mod vendors;
