//! A client that hangs up while its answer is still coming is charged all the same. Its
//! upstream connection is kept a short, bounded while (`ORPHAN_READ_FOR`, `ORPHAN_READ_BYTES`; at most
//! `ORPHANS_MAX` at once) and read to its end, unrelayed, for the final usage; what cannot be had
//! by then is charged from what was read: `message_start`'s input and the output estimated from
//! the deltas seen (`Scan::usage_so_far`), and, when the answer never said its input (a
//! translated stream says it only at its end), the request's input as its reservation estimates
//! it. The key's reservation is held until the charge.

use std::time::{Duration, Instant};

use crate::http::BodyTracker;
use crate::proxy::event::io::IoOutcome;
use crate::proxy::event::slab::Key;
use crate::proxy::scan::Scan;
use crate::proxy::shared::Shared;
use crate::proxy::state::KeyTicket;
use crate::proxy::state::Lease;
use crate::proxy::state::{AttemptPhase, Exchange, Owner, Upstream};
use crate::proxy::upstream::net::Net;

/// How long an answer nobody waits for is read, at most, for its usage.
const ORPHAN_READ_FOR: Duration = Duration::from_secs(5);
/// How much of it, at most.
const ORPHAN_READ_BYTES: usize = 1024 * 1024;
/// Orphaned answers read at once, at most; past that one is charged at once from what was read.
const ORPHANS_MAX: usize = 64;

/// An answer read for its usage after its client went away.
struct Orphan {
    /// Its connection, lent to it once it is kept (`None` while it is only charged).
    up: Option<Lease>,
    endpoint: usize,
    tracker: BodyTracker,
    scan: Scan,
    /// An OpenAI-format endpoint's answer is read on through its translation.
    translation: Option<Box<crate::proxy::scan::translation::Translation>>,
    session: Option<String>,
    key: Option<KeyTicket>,
    /// The model the client asked for, when the endpoint got another name (priced by it when the
    /// answering model has no price).
    asked: Option<String>,
    /// The request's input as its key's reservation estimates it (its size): charged when the
    /// answer never said its input (a translated stream says it only at its end).
    input_estimate: u64,
    deadline: Instant,
    read: usize,
}

/// Orphaned answers: those being read for their usage; the loop's (`EventLoop::orphans`). Their connections are `Net`'s
/// and their charges go to `Shared`: both are lent to each call.
#[derive(Default)]
pub struct Orphans {
    list: Vec<Orphan>,
}

impl Orphans {
    /// The client went away (or the exchange was cut short): its request is recorded as
    /// aborted, its answer read on for its usage when it has started, its upstream closed;
    /// no endpoint is blamed. `out`: the bytes the client got of it.
    pub fn abandon(&mut self, net: &mut Net, sh: &mut Shared, mut ex: Exchange, out: u64, now: Instant) {
        sh.stats.aborted += 1;
        log::info!("{} {} aborted by the client", ex.head.method(), ex.head.target());
        let endpoint = ex.attempt.as_ref().map(|a| a.endpoint);
        sh.record_request(&ex, endpoint, crate::proxy::record::requests::Ended::Aborted, out, now);
        self.keep(net, sh, &mut ex, now); // charged all the same
        net.release_attempt(&mut sh.endpoints, ex);
    }

    /// When the exchange's answer has started and carries usage, keep its upstream connection to
    /// read the rest for the usage (or charge what was read at once, at the bound).
    fn keep(&mut self, net: &mut Net, sh: &mut Shared, ex: &mut Exchange, now: Instant) {
        let Some(a) = ex.attempt.as_mut() else { return };
        if !matches!(a.phase, AttemptPhase::Relaying | AttemptPhase::Priming) {
            return;
        }
        let Some(up) = a.up.as_ref().map(Lease::key) else { return };
        let (Some(tracker), Some(scan)) = (a.resp_body.take(), a.scan.take()) else { return };
        let mut d = Orphan {
            up: None,
            endpoint: a.endpoint,
            tracker,
            scan,
            translation: a.translation.take(),
            asked: a.mapped.as_ref().map(|m| m.from.clone()),
            session: ex.session.take(),
            // The key's slot among its requests in progress is free now (its client is gone); only
            // its reservation waits for the charge.
            key: ex.key.take().map(|mut k| {
                k._in_flight = None;
                k
            }),
            input_estimate: (ex.body.len() as u64).saturating_add(ex.body_dropped)
                / crate::policy::limits::BYTES_PER_TOKEN,
            deadline: now + ORPHAN_READ_FOR,
            read: 0,
        };
        if self.list.len() >= ORPHANS_MAX || net.upstreams.get(up).is_none() {
            d.charge(sh, now);
            return;
        }
        d.up = a.up.take(); // the orphan holds the connection now
        if let Some(u) = net.upstreams.get_mut(up) {
            u.owner = Owner::Orphan;
        }
        self.list.push(d);
        net.arm(now + ORPHAN_READ_FOR);
        self.drive(net, sh, up, now); // what was already read, and what waits on the socket
    }

    /// An orphan's connection is readable: read on, bounded, unrelayed; charge at its end.
    pub fn drive(&mut self, net: &mut Net, sh: &mut Shared, key: Key, now: Instant) {
        let Some(i) = self.list.iter().position(|d| d.up.as_ref().is_some_and(|l| l.key() == key)) else {
            net.close_key(&mut sh.endpoints, key);
            return;
        };
        let Some(up) = net.upstreams.get_mut(key) else { return };
        if self.list[i].read_on(up, &mut net.scratch) {
            self.end(net, sh, i, now);
        }
    }

    /// Orphans past their time end (charged from what was read); the next such time.
    pub fn deadlines(&mut self, net: &mut Net, sh: &mut Shared, now: Instant) -> Option<Instant> {
        while let Some(i) = self.list.iter().position(|d| d.deadline <= now) {
            self.end(net, sh, i, now);
        }
        self.list.iter().map(|d| d.deadline).min()
    }

    /// The proxy stops: every orphan is charged with what it has.
    pub fn end_all(&mut self, net: &mut Net, sh: &mut Shared, now: Instant) {
        while !self.list.is_empty() {
            self.end(net, sh, 0, now);
        }
    }

    fn end(&mut self, net: &mut Net, sh: &mut Shared, i: usize, now: Instant) {
        let mut d = self.list.swap_remove(i);
        if let Some(lease) = d.up.take() {
            net.close_upstream(&mut sh.endpoints, lease);
        }
        d.charge(sh, now);
    }
}

impl Orphan {
    /// Read on, bounded, unrelayed, feeding the scanner; true once the answer ended (or its
    /// bound was reached, or the connection closed).
    fn read_on(&mut self, up: &mut Upstream, scratch: &mut [u8]) -> bool {
        let d = self;
        let mut ended = false;
        loop {
            match d.tracker.advance_observing(&up.inbuf, |data| d.scan.feed(data)) {
                Ok(n) => {
                    up.inbuf.drain(..n);
                    d.read += n;
                }
                Err(_) => ended = true,
            }
            if ended || d.tracker.is_done() || d.read > ORPHAN_READ_BYTES || !up.can_read {
                ended |= d.tracker.is_done() || d.read > ORPHAN_READ_BYTES;
                break;
            }
            match crate::proxy::scan::translation::read(
                d.translation.as_deref_mut(),
                &mut up.transport,
                &mut up.inbuf,
                scratch,
                None,
            ) {
                IoOutcome::Progress(_) => {}
                IoOutcome::WouldBlock => up.can_read = false,
                IoOutcome::Closed | IoOutcome::Error(_) => {
                    up.can_read = false;
                    ended = true;
                }
            }
        }
        if up.transport.wants_write() {
            let _ = up.transport.flush();
        }
        ended
    }

    /// Charge what was read: the final usage, or what the deltas seen say.
    fn charge(&mut self, sh: &mut Shared, now: Instant) {
        let d = self;
        let Some((model, mut tokens, estimated)) = d.scan.usage_so_far() else {
            log::info!("client gone before its answer reported usage: nothing charged");
            return;
        };
        let input_unsaid = estimated && tokens.input == 0 && tokens.cache_creation == 0 && tokens.cache_read == 0;
        if input_unsaid {
            tokens.input = d.input_estimate;
        }
        let key = d.key.as_ref().map(|t| &t.name);
        let asked = d.asked.as_deref();
        sh.record_usage(d.endpoint, model.as_deref(), asked, &tokens.counts(), d.session.as_deref(), key, now);
        let how = match (estimated, input_unsaid) {
            (false, _) => "the answer's final usage",
            (true, false) => "output estimated from the deltas read",
            (true, true) => "input estimated from the request's size, output from the deltas read",
        };
        log::info!(
            "client gone mid-answer: charged {} input, {} output tokens ({how})",
            tokens.input + tokens.cache_creation + tokens.cache_read,
            tokens.output
        );
        d.key = None; // the reservation is given back once the charge is counted
    }
}
