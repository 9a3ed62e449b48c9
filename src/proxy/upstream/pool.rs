//! Connections to upstreams, from open to close: opened non-blocking (plain or TLS) and
//! registered, returned to and taken from each endpoint's idle pool,
//! idle ones watched and swept, and closed. Attempts and probes both go through here.

use std::time::Instant;

use mio::Interest;

use crate::proxy::event::io::IoOutcome;
use crate::proxy::event::slab::Key;
use crate::proxy::event::slab::{token, KIND_UPSTREAM};
use crate::proxy::event::transport::Transport;
use crate::proxy::state::Lease;
use crate::proxy::state::*;
use crate::proxy::upstream::net::Net;

impl Net {
    /// Start a non-blocking connection to endpoint `idx` for `owner` (plain or TLS) and register
    /// it with the loop; the owner learns on WRITABLE whether it connected.
    pub(in crate::proxy) fn open_upstream(
        &mut self,
        eps: &mut [Endpoint],
        idx: usize,
        owner: Owner,
        now: Instant,
    ) -> std::result::Result<Lease, OpenError> {
        let ep = &mut eps[idx];
        let Some(&addr) = ep.addrs.get(ep.next_addr % ep.addrs.len().max(1)) else {
            return Err(OpenError::Endpoint(format!("no address for {}", ep.cfg.url.host)));
        };
        let tls = ep.tls.clone().map(|cfg| (cfg, ep.cfg.url.host.clone()));
        let tls = tls.as_ref().map(|(cfg, host)| (cfg, host.as_str()));
        let generation = ep.generation;
        match self.open_connection(addr, tls, owner, idx, generation, now) {
            Ok(key) => Ok(Lease::new(key)),
            Err(e) => {
                // Try the next address next time: one dead address must not pin the endpoint.
                let ep = &mut eps[idx];
                ep.next_addr = ep.next_addr.wrapping_add(1);
                Err(e)
            }
        }
    }

    /// Start a non-blocking connection to `addr` (TLS with `tls`: the config and the server
    /// name) for `owner`, and register it with the loop. Endpoints' connections and the alerts'
    /// (`shared/notify.rs`, with no endpoint: `usize::MAX`) are all opened here.
    pub(in crate::proxy) fn open_connection(
        &mut self,
        addr: std::net::SocketAddr,
        tls: Option<(&std::sync::Arc<rustls::ClientConfig>, &str)>,
        owner: Owner,
        endpoint: usize,
        generation: u32,
        now: Instant,
    ) -> std::result::Result<Key, OpenError> {
        let sock = mio::net::TcpStream::connect(addr).map_err(OpenError::from_io)?;
        let _ = sock.set_nodelay(true);
        let mut transport = match tls {
            None => Transport::plain(sock),
            Some((cfg, host)) => {
                Transport::tls(sock, cfg.clone(), host).map_err(|e| OpenError::Endpoint(e.to_string()))?
            }
        };
        let key = self.upstreams.next_key();
        self.registry
            .register(transport.socket(), token(KIND_UPSTREAM, key), Interest::READABLE | Interest::WRITABLE)
            .map_err(OpenError::from_io)?;
        self.upstreams.insert(Upstream {
            transport,
            endpoint,
            generation,
            owner,
            connected: false,
            reused: false,
            rested: std::time::Duration::ZERO,
            can_read: false,
            can_write: false,
            inbuf: Vec::new(),
            head: Default::default(),
            idle_since: now,
            hup: false,
        });
        Ok(key)
    }

    /// The exchange is over without its attempt's answer: the attempt's connection closes.
    pub(in crate::proxy) fn release_attempt(&mut self, eps: &mut [Endpoint], mut ex: Exchange) {
        if let Some(lease) = ex.attempt.take().and_then(|a| a.up) {
            self.close_upstream(eps, lease);
        }
    }

    /// Deregister a connection and take it out (dropping it closes it). Enough for one that is
    /// never pooled (an alert's); `close_key` also takes a pooled one off its idle list.
    pub(in crate::proxy) fn close(&mut self, key: Key) -> Option<Upstream> {
        let mut up = self.upstreams.remove(key)?;
        let _ = self.registry.deregister(up.transport.socket());
        Some(up)
    }

    /// Close a lent connection: the lease ends with it.
    pub(in crate::proxy) fn close_upstream(&mut self, eps: &mut [Endpoint], lease: Lease) {
        self.close_key(eps, lease.end());
    }

    /// Deregister and drop a connection no one holds a lease on (an idle one, an alert's),
    /// wherever it was.
    pub(in crate::proxy) fn close_key(&mut self, eps: &mut [Endpoint], key: Key) {
        if let Some(up) = self.close(key) {
            if up.owner == Owner::Idle {
                if let Some(ep) = eps.get_mut(up.endpoint) {
                    ep.idle.retain(|k| *k != key);
                }
            }
        }
    }

    /// A live idle connection of endpoint `idx`, most recently used first. One the upstream has
    /// closed meanwhile is dropped before a request could be written to it (a request is sent
    /// again to the same endpoint only when it provably never reached it): the loop closes an
    /// idle connection as soon as its FIN or alert arrives, and one idle for a while is also
    /// peeked at, in case that arrival is still in this turn's events. A connection reused
    /// within `PEEK_AFTER` (the common case under load) costs no extra syscall.
    /// It is lent to `owner`, marked reused, with the time it rested.
    pub(in crate::proxy) fn take_pooled(
        &mut self,
        eps: &mut [Endpoint],
        idx: usize,
        owner: Owner,
        now: Instant,
    ) -> Option<Lease> {
        const PEEK_AFTER: std::time::Duration = std::time::Duration::from_millis(500);
        while let Some(k) = eps[idx].idle.pop() {
            let Some(up) = self.upstreams.get_mut(k) else { continue };
            let rested = now.saturating_duration_since(up.idle_since);
            let mut probe = [0u8; 1];
            let live = rested < PEEK_AFTER
                || matches!(up.transport.socket().peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            if live {
                up.owner = owner;
                up.reused = true;
                up.rested = rested;
                return Some(Lease::new(k));
            }
            self.close_key(eps, k);
        }
        None
    }

    /// Return an upstream connection to its endpoint's pool, or close it.
    pub(in crate::proxy) fn release_upstream(&mut self, eps: &mut [Endpoint], lease: Lease, reuse: bool, now: Instant) {
        let k = lease.end();
        let Some(up) = self.upstreams.get_mut(k) else {
            return;
        };
        // A connection the upstream has already closed (its EOF was signalled, or a readiness not
        // yet read turns out to be data or EOF) never goes back: the next request would meet it.
        let mut reuse = reuse && !up.hup;
        if reuse && up.can_read {
            reuse = matches!(up.transport.read(&mut up.inbuf, &mut self.scratch), IoOutcome::WouldBlock);
            up.can_read = false;
        }
        let ep = &mut eps[up.endpoint];
        // A connection to a target that a reload replaced never goes back to the pool: the next
        // request would carry the new key to the old host.
        if reuse && up.generation == ep.generation && !ep.retired && ep.idle.len() < POOL_MAX {
            up.owner = Owner::Idle;
            up.idle_since = now;
            up.inbuf.clear();
            up.head = Default::default();
            ep.idle.push(k);
            self.arm(now + POOL_IDLE);
        } else {
            self.close_key(eps, k);
        }
    }

    /// An event on an idle pooled connection. It has nothing to say: data, EOF or an error
    /// means the server closed it (or broke it). A stale readiness hint reads WouldBlock: keep it.
    pub(in crate::proxy) fn on_idle_event(&mut self, eps: &mut [Endpoint], key: Key, readable: bool) {
        let Some(up) = self.upstreams.get_mut(key) else { return };
        if readable && !matches!(up.transport.read(&mut up.inbuf, &mut self.scratch), IoOutcome::WouldBlock) {
            self.close_key(eps, key);
        } else if let Some(up) = self.upstreams.get_mut(key) {
            up.can_read = false;
        }
    }

    /// Close pooled connections idle for `POOL_IDLE`; when the next one is due.
    pub(in crate::proxy) fn sweep_pool(&mut self, eps: &mut [Endpoint], now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let idle: Vec<Key> = eps.iter().flat_map(|ep| ep.idle.iter().copied()).collect();
        for key in idle {
            let Some(up) = self.upstreams.get(key) else { continue };
            let due = up.idle_since + POOL_IDLE;
            if due <= now {
                self.close_key(eps, key);
            } else if next.is_none_or(|n| due < n) {
                next = Some(due);
            }
        }
        next
    }

    /// Close every idle connection of endpoint `idx` (its target changed, or it left the cluster).
    pub(in crate::proxy) fn drop_pool(&mut self, eps: &mut [Endpoint], idx: usize) {
        for k in std::mem::take(&mut eps[idx].idle) {
            self.close_key(eps, k);
        }
    }
}

/// Why an upstream connection could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Ours: out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM). Never the
    /// endpoint's fault.
    Local(String),
    /// The endpoint's: no address, connect refused at once, a bad TLS name.
    Endpoint(String),
}

impl OpenError {
    pub(crate) fn from_io(e: std::io::Error) -> OpenError {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => OpenError::Local(e.to_string()),
            _ => OpenError::Endpoint(e.to_string()),
        }
    }
}
