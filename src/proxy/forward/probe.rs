//! Recovery probes: every `--verify-interval`, each endpoint in the failure queue gets the
//! tiny real request from the spec, on the loop, alongside traffic. A 200 restores it.
//!
//! `Probes` are the loop's (`EventLoop::probes`); their connections are `Net`'s, and their
//! verdicts go to `Shared` (`forward/verdict.rs`): both are lent to each call.

use std::time::Instant;

use crate::proxy::event::slab::Key;
use crate::proxy::shared::Shared;
use crate::proxy::state::Lease;
use crate::proxy::state::{timeout_of, Owner, Upstream, CONNECT_TIMEOUT};
use crate::proxy::upstream::net::Net;
use crate::proxy::upstream::one_shot;
use crate::proxy::wire;

/// The probes in flight, at most one per endpoint.
#[derive(Default)]
pub struct Probes {
    list: Vec<Probe>,
}

/// One probe in flight.
struct Probe {
    endpoint: usize,
    up: Lease,
    request: Vec<u8>,
    sent: usize,
    deadline: Instant,
}

impl Probe {
    /// Move the probe on over its connection `up`: its verdict once there is one (a 200 is a
    /// success; any other status, or a failure, is not).
    fn step(&mut self, up: &mut Upstream, scratch: &mut [u8]) -> Option<Result<(), String>> {
        one_shot::step(&self.request, &mut self.sent, up, scratch).map(|r| match r {
            Ok(200) => Ok(()),
            Ok(status) => Err(format!("HTTP {status}")),
            Err(e) => Err(e),
        })
    }
}

impl Probes {
    /// A probe round: every endpoint in the failure queue.
    pub fn start_all(&mut self, net: &mut Net, sh: &mut Shared, now: Instant) {
        let queued: Vec<String> = sh.failures.ids().map(str::to_string).collect();
        for id in queued {
            if let Some(idx) = sh.endpoints.iter().position(|ep| ep.cfg.id == id) {
                self.start(net, sh, idx, now);
            }
        }
    }

    pub fn start(&mut self, net: &mut Net, sh: &mut Shared, idx: usize, now: Instant) {
        let ep = &mut sh.endpoints[idx];
        if ep.probing {
            return;
        }
        // A pass-through endpoint has no credential of its own, and qcc keeps none of a client's:
        // the next client request is its probe (`eligibility.rs`).
        if ep.cfg.passes_through() {
            ep.probe_by_request = true;
            return;
        }
        if ep.addrs.is_empty() {
            net.resolver.lookup(idx, ep);
            ep.probing = true; // resumed by `resume` when the lookup answers
            return;
        }
        let lease = match net.open_upstream(&mut sh.endpoints, idx, Owner::Probe(idx), now) {
            Ok(lease) => lease,
            Err(crate::proxy::upstream::pool::OpenError::Local(e)) => {
                // Our own shortage says nothing about the endpoint: try at the next round.
                log::warn!("probe of endpoint {} not started: {e}", sh.endpoints[idx].cfg.label());
                return;
            }
            Err(crate::proxy::upstream::pool::OpenError::Endpoint(e)) => {
                log::debug!("probe of endpoint {}: {e}", sh.endpoints[idx].cfg.label());
                self.finish(net, sh, idx, Err(e), now);
                return;
            }
        };
        let ep = &mut sh.endpoints[idx];
        ep.probing = true;
        let request = wire::probe_request(&ep.cfg, ep.probe_model(&sh.settings.probe_model));
        let deadline = now + timeout_of(&ep.cfg).max(CONNECT_TIMEOUT).max(std::time::Duration::from_secs(30));
        self.list.push(Probe { endpoint: idx, up: lease, request, sent: 0, deadline });
        net.arm(deadline);
    }

    /// A lookup for `idx` finished: a probe waiting for it starts now.
    pub fn resume(&mut self, net: &mut Net, sh: &mut Shared, idx: usize, now: Instant) {
        let ep = &mut sh.endpoints[idx];
        if ep.probing && !self.list.iter().any(|p| p.endpoint == idx) {
            ep.probing = false;
            if ep.addrs.is_empty() {
                self.finish(net, sh, idx, Err("cannot resolve the host".into()), now);
            } else {
                self.start(net, sh, idx, now);
            }
        }
    }

    /// Endpoint `idx`'s probe connection `key` is ready.
    pub fn drive(&mut self, net: &mut Net, sh: &mut Shared, idx: usize, key: Key, now: Instant) {
        let (Some(p), Some(up)) = (self.list.iter_mut().find(|p| p.up.key() == key), net.upstreams.get_mut(key)) else {
            return;
        };
        if let Some(outcome) = p.step(up, &mut net.scratch) {
            self.finish(net, sh, idx, outcome, now);
        }
    }

    /// Record a probe's outcome and release its connection.
    fn finish(&mut self, net: &mut Net, sh: &mut Shared, idx: usize, outcome: Result<(), String>, now: Instant) {
        self.cancel(net, sh, idx);
        sh.probe_verdict(idx, outcome, now);
    }

    /// Stop endpoint `idx`'s probe, if one runs, without recording anything.
    pub fn cancel(&mut self, net: &mut Net, sh: &mut Shared, idx: usize) {
        if let Some(pos) = self.list.iter().position(|p| p.endpoint == idx) {
            let p = self.list.swap_remove(pos);
            net.close_upstream(&mut sh.endpoints, p.up);
        }
        sh.endpoints[idx].probing = false;
    }

    /// Stop every probe (the proxy stops).
    pub fn cancel_all(&mut self, net: &mut Net, sh: &mut Shared) {
        while let Some(p) = self.list.first() {
            let idx = p.endpoint;
            self.cancel(net, sh, idx);
        }
    }

    /// Probes whose deadline passed are failures; returns the deadlines still pending.
    pub fn deadlines(&mut self, net: &mut Net, sh: &mut Shared, now: Instant) -> Vec<Instant> {
        let expired: Vec<usize> = self.list.iter().filter(|p| p.deadline <= now).map(|p| p.endpoint).collect();
        for idx in expired {
            self.finish(net, sh, idx, Err("timeout".into()), now);
        }
        self.list.iter().map(|p| p.deadline).collect()
    }
}
