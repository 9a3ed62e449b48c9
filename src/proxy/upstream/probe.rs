//! Recovery probes: every `--verify-interval`, each endpoint in the failure queue gets the
//! tiny real request from the spec, on the loop, alongside traffic. A 200 restores it.

use std::time::Instant;

use crate::proxy::event::io::IoOutcome;
use crate::proxy::event::slab::Key;
use crate::proxy::shared::Shared;
use crate::proxy::state::{timeout_of, Owner, Upstream, CONNECT_TIMEOUT};
use crate::proxy::upstream::net::Net;
use crate::proxy::wire;

/// One probe in flight.
pub struct Probe {
    pub endpoint: usize,
    pub up: Key,
    pub request: Vec<u8>,
    pub sent: usize,
    pub deadline: Instant,
}

impl Probe {
    /// Move the probe on over its connection `up`: its verdict once there is one (a 200 is a
    /// success; any other status, or a failure, is not).
    fn step(&mut self, up: &mut Upstream, scratch: &mut [u8]) -> Option<Result<(), String>> {
        one_shot_step(&self.request, &mut self.sent, up, scratch).map(|r| match r {
            Ok(200) => Ok(()),
            Ok(status) => Err(format!("HTTP {status}")),
            Err(e) => Err(e),
        })
    }
}

impl Net {
    pub(in crate::proxy) fn start_probes(&mut self, sh: &mut Shared, now: Instant) {
        let queued: Vec<String> = sh.failures.ids().map(str::to_string).collect();
        for id in queued {
            if let Some(idx) = sh.endpoints.iter().position(|ep| ep.cfg.id == id) {
                self.start_probe(sh, idx, now);
            }
        }
    }

    pub(in crate::proxy) fn start_probe(&mut self, sh: &mut Shared, idx: usize, now: Instant) {
        let ep = &mut sh.endpoints[idx];
        if ep.probing {
            return;
        }
        if ep.addrs.is_empty() {
            self.resolver.lookup(idx, ep);
            ep.probing = true; // resumed by resume_probes when the lookup answers
            return;
        }
        let key = match self.open_upstream(sh, idx, Owner::Probe(idx), now) {
            Ok(key) => key,
            Err(crate::proxy::OpenError::Local(e)) => {
                // Our own shortage says nothing about the endpoint: try at the next round.
                log::warn!("probe of endpoint {} not started: {e}", sh.endpoints[idx].cfg.label());
                return;
            }
            Err(crate::proxy::OpenError::Endpoint(e)) => {
                log::debug!("probe of endpoint {}: {e}", sh.endpoints[idx].cfg.label());
                self.finish_probe(sh, idx, Err(e), now);
                return;
            }
        };
        let ep = &mut sh.endpoints[idx];
        ep.probing = true;
        let request = wire::probe_request(&ep.cfg, ep.probe_model(&sh.settings.probe_model));
        let deadline = now + timeout_of(&ep.cfg).max(CONNECT_TIMEOUT).max(std::time::Duration::from_secs(30));
        self.probes.push(Probe { endpoint: idx, up: key, request, sent: 0, deadline });
        self.arm(deadline);
    }

    /// A lookup for `idx` finished: a probe waiting for it starts now.
    pub(in crate::proxy) fn resume_probes(&mut self, sh: &mut Shared, idx: usize, now: Instant) {
        let ep = &mut sh.endpoints[idx];
        if ep.probing && !self.probes.iter().any(|p| p.endpoint == idx) {
            ep.probing = false;
            if ep.addrs.is_empty() {
                self.finish_probe(sh, idx, Err("cannot resolve the host".into()), now);
            } else {
                self.start_probe(sh, idx, now);
            }
        }
    }

    pub(in crate::proxy) fn drive_probe(&mut self, sh: &mut Shared, idx: usize, key: Key, now: Instant) {
        let Net { upstreams, probes, scratch, .. } = self;
        let (Some(p), Some(up)) = (probes.iter_mut().find(|p| p.up == key), upstreams.get_mut(key)) else {
            return;
        };
        let verdict = p.step(up, scratch);
        if let Some(outcome) = verdict {
            self.finish_probe(sh, idx, outcome, now);
        }
    }

    /// Record a probe's outcome and release its connection.
    fn finish_probe(&mut self, sh: &mut Shared, idx: usize, outcome: Result<(), String>, now: Instant) {
        self.cancel_probe(sh, idx);
        sh.probe_verdict(idx, outcome, now);
    }

    /// Stop endpoint `idx`'s probe, if one runs, without recording anything.
    pub(in crate::proxy) fn cancel_probe(&mut self, sh: &mut Shared, idx: usize) {
        if let Some(pos) = self.probes.iter().position(|p| p.endpoint == idx) {
            let p = self.probes.swap_remove(pos);
            self.close_upstream(sh, p.up);
        }
        sh.endpoints[idx].probing = false;
    }

    /// Probes whose deadline passed are failures; returns the deadlines still pending.
    pub(in crate::proxy) fn probe_deadlines(&mut self, sh: &mut Shared, now: Instant) -> Vec<Instant> {
        let expired: Vec<usize> = self.probes.iter().filter(|p| p.deadline <= now).map(|p| p.endpoint).collect();
        for idx in expired {
            self.finish_probe(sh, idx, Err("timeout".into()), now);
        }
        self.probes.iter().map(|p| p.deadline).collect()
    }
}

/// A one-request exchange (a probe, an alert): connect, send `request` (`sent` bytes of it are
/// out), read the status line. `Some(Ok(status))` for the final status, `Some(Err(why))` when
/// it failed, `None` while undecided.
pub(in crate::proxy) fn one_shot_step(
    request: &[u8],
    sent: &mut usize,
    up: &mut Upstream,
    scratch: &mut [u8],
) -> Option<Result<u16, String>> {
    if !up.connected {
        if !up.can_write {
            return None;
        }
        match crate::proxy::upstream::pool::connect_done(up) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(format!("connect error: {e}"))),
        }
    }
    while up.can_write && *sent < request.len() {
        match up.transport.write(&request[*sent..]) {
            IoOutcome::Progress(n) => *sent += n,
            IoOutcome::WouldBlock => up.can_write = false,
            IoOutcome::Closed => return Some(Err("closed while sending".into())),
            IoOutcome::Error(e) => return Some(Err(format!("send: {e}"))),
        }
    }
    if up.can_write && up.transport.wants_write() {
        if let IoOutcome::WouldBlock = up.transport.flush() {
            up.can_write = false;
        }
    }
    while up.can_read {
        match up.transport.read(&mut up.inbuf, scratch) {
            IoOutcome::Progress(_) => {}
            IoOutcome::WouldBlock => up.can_read = false,
            IoOutcome::Closed => return Some(Err("closed before a response".into())),
            IoOutcome::Error(e) => return Some(Err(format!("read: {e}"))),
        }
        // Bounded: a head is decided (or refused) within MAX_HEAD_BYTES and MAX_INTERIM.
        match up.head.take(&mut up.inbuf, false) {
            Ok(Some(h)) => return Some(Ok(h.status)),
            Ok(None) => {}
            Err(e) => return Some(Err(format!("bad response: {e}"))),
        }
        if up.transport.wants_write() {
            let _ = up.transport.flush();
        }
    }
    None
}
