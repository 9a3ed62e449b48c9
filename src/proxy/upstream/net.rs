//! `Net`: the upstream side of the loop — every connection the proxy opens itself (attempts',
//! probes', orphaned answers', alerts'), the resolver thread that finds their addresses, the read buffer
//! all sockets share, and when the loop next sweeps deadlines (`arm`). Its methods open, pool and
//! close connections (`pool.rs`), taking the shared state they need as `&mut Shared`. Who uses a
//! connection holds its key and lends `Net` to each step: a client's `Conn` (`client/conn.rs`)
//! for its attempts, `Probes` (`probe.rs`), `Orphans` (`forward/orphan.rs`) and the `Notifier`
//! (`shared/notify.rs`).
//!
//! Single owner: the loop holds the one `Net` (`EventLoop::net`) and lends it out one event at
//! a time.

use std::time::Instant;

use crate::proxy::event::slab::Slab;
use crate::proxy::state::Upstream;
use crate::proxy::upstream::resolver::Resolver;

pub struct Net {
    /// Where connections are registered (a handle on the loop's `Poll`).
    pub registry: mio::Registry,
    pub upstreams: Slab<Upstream>,
    pub resolver: Resolver,
    /// The buffer every socket read goes through (`READ_CHUNK`).
    pub scratch: Vec<u8>,
    /// When the sweep of expired deadlines runs next (`timers.rs`).
    pub next_sweep: Option<Instant>,
}

impl Net {
    pub fn new(registry: mio::Registry, resolver: Resolver) -> Net {
        Net {
            registry,
            upstreams: Slab::new(),
            resolver,
            scratch: vec![0; crate::proxy::event::io::READ_CHUNK],
            next_sweep: None,
        }
    }

    /// Make sure the sweep runs no later than `at`.
    pub fn arm(&mut self, at: Instant) {
        if self.next_sweep.is_none_or(|t| at < t) {
            self.next_sweep = Some(at);
        }
    }
}
