//! The per-socket and per-request state the event loop owns, one file per owner: an endpoint
//! (`endpoint.rs`, owned by `Shared`), an upstream connection (`upstream.rs`, owned by `Net`), a
//! client connection (`client.rs`, owned by the loop's client slab), one request and its
//! attempts (`exchange.rs`, owned by its client), an upstream connection lent to one of them
//! (`lease.rs`), and the request counters (`stats.rs`).
//! The logic that drives them lives in the rooms above (`client/`, `forward/`, `upstream/`).

mod client;
mod endpoint;
mod exchange;
mod lease;
mod stats;
mod upstream;

pub use client::*;
pub use endpoint::*;
pub use exchange::*;
pub use lease::Lease;
pub use stats::*;
pub use upstream::*;
