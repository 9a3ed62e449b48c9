//! An upstream connection. Owned by `Net` (`upstream/net.rs`, its slab); whoever it works for
//! (`Owner`) holds only its key.

use std::time::Instant;

use crate::proxy::event::slab::Key;
use crate::proxy::event::transport::Transport;

/// Who an upstream connection is working for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// In its endpoint's idle pool.
    Idle,
    Client(Key),
    /// A recovery probe of this endpoint index.
    Probe(usize),
    /// An alert on its way to a webhook (`shared/notify.rs`); no endpoint.
    Alert,
    /// An answer read for its usage after its client went away (`forward/orphan.rs`).
    Orphan,
}

pub struct Upstream {
    pub transport: Transport,
    pub endpoint: usize,
    /// The endpoint's generation when this connection was opened.
    pub generation: u32,
    pub owner: Owner,
    pub connected: bool,
    /// Came from the idle pool: a close before any response byte is a stale connection,
    /// retried on a fresh one without blaming the endpoint.
    pub reused: bool,
    /// How long it sat idle in the pool before this use (zero for a fresh one): only a rested
    /// connection's close before answering is taken for the idle-close race.
    pub rested: std::time::Duration,
    pub can_read: bool,
    pub can_write: bool,
    pub inbuf: Vec<u8>,
    /// Where reading the current response's head is (interim responses seen, bytes scanned).
    pub head: crate::http::HeadReader,
    pub idle_since: Instant,
    /// The peer's EOF (or an error) was signalled by an event: read until it shows.
    pub hup: bool,
}
