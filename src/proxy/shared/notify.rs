//! Sending alerts: a JSON POST to each `--notify-url` (and `settings.notify_urls`) for every
//! alert `alerts.rs` and `switches.rs` queue (an endpoint down or back, none left, a cluster's
//! requests moving down its fallback chain, a client key at a limit).
//!
//! Sent by the loop itself, like the probes: a name lookup on the resolver thread, a
//! non-blocking connection (`pool.rs`, plain or TLS), one request, the status line read
//! (`upstream/one_shot.rs`). A slow or dead receiver holds up nothing but its own queue: each
//! receiver has one alert in flight at a time (so they arrive in order), a try has 10 s, a failed
//! one is tried again after 2, 8 and 30 s, then given up with one log line. At most
//! `MAX_QUEUED` alerts wait per receiver; past that the oldest goes (counted).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::proxy::event::slab::Key;
use crate::proxy::state::Owner;
use crate::proxy::upstream::net::Net;
use crate::store::url::{Scheme, WebhookUrl};

const MAX_QUEUED: usize = 64;
const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The waits before the second, third and fourth try; after the fourth the alert is given up.
const BACKOFF: [Duration; 3] = [Duration::from_secs(2), Duration::from_secs(8), Duration::from_secs(30)];
/// Addresses of a receiver are looked up again after this long.
const RESOLVE_TTL: Duration = Duration::from_secs(300);

/// Every alert receiver and what it still has to get.
#[derive(Default)]
pub struct Notifier {
    hooks: Vec<Hook>,
    next_id: usize,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The served clusters (bits by index) whose `all_down` was sent, with no endpoint of
    /// theirs back since.
    pub all_down: u64,
    /// An alert was queued this turn: the loop starts sending it at the turn's end.
    pub kicked: bool,
    pub delivered: u64,
    pub given_up: u64,
    pub dropped: u64,
}

struct Hook {
    /// Names the receiver to the resolver (indices change when the URLs do).
    id: usize,
    url: WebhookUrl,
    addrs: Vec<SocketAddr>,
    resolved_at: Option<Instant>,
    resolving: bool,
    queue: VecDeque<Delivery>,
    send: Option<Send>,
}

struct Delivery {
    event: &'static str,
    body: Rc<[u8]>,
    tries: usize,
    not_before: Instant,
}

struct Send {
    up: Key,
    request: Vec<u8>,
    sent: usize,
    deadline: Instant,
}

impl Notifier {
    /// Receivers from their URLs (checked by the CLI; one that does not parse is said and left
    /// out). Alerts still queued for a URL that stays are kept. `tls`: the TLS configuration for
    /// https receivers, built off the loop (at start, or on the disk thread with a reload).
    /// Returns the connections of removed receivers' alerts in flight, for the caller to close
    /// (a receiver that hangs would otherwise hold its socket for good).
    #[must_use]
    pub fn set_urls(&mut self, urls: &[String], tls: Option<Arc<rustls::ClientConfig>>) -> Vec<Key> {
        if tls.is_some() {
            self.tls = tls;
        }
        let mut old: Vec<Hook> = std::mem::take(&mut self.hooks);
        for u in urls {
            match WebhookUrl::parse(u) {
                Ok(url) if !self.hooks.iter().any(|h| h.url == url) => {
                    let hook = match old.iter().position(|h| h.url == url) {
                        Some(i) => old.swap_remove(i),
                        None => Hook {
                            id: {
                                self.next_id += 1;
                                self.next_id
                            },
                            url,
                            addrs: Vec::new(),
                            resolved_at: None,
                            resolving: false,
                            queue: VecDeque::new(),
                            send: None,
                        },
                    };
                    self.hooks.push(hook);
                }
                Ok(_) => {}
                Err(e) => log::warn!("alerts: {e}; not used"),
            }
        }
        old.into_iter()
            .filter_map(|h| {
                let s = h.send?;
                log::info!("alerts: {} removed with an alert in flight", h.url.shown());
                Some(s.up)
            })
            .collect()
    }

    /// Whether any of `urls` is an https receiver (it needs a TLS configuration).
    pub fn any_https(urls: &[String]) -> bool {
        urls.iter().any(|u| WebhookUrl::parse(u).is_ok_and(|w| w.base.scheme == Scheme::Https))
    }

    pub fn receivers(&self) -> usize {
        self.hooks.len()
    }

    /// Queue one alert's `body` for every receiver; the loop starts sending at the end of this
    /// turn (`Notifier::pump`).
    pub fn queue(&mut self, event: &'static str, body: Vec<u8>, now: Instant) {
        let body: Rc<[u8]> = Rc::from(body);
        for h in &mut self.hooks {
            if h.queue.len() >= MAX_QUEUED {
                // The oldest waiting one goes (never the one in flight, at the front).
                if let Some(d) = h.queue.remove(usize::from(h.send.is_some())) {
                    self.dropped += 1;
                    log::warn!("alerts: {} is not keeping up; dropped a queued {} alert", h.url.shown(), d.event);
                }
            }
            h.queue.push_back(Delivery { event, body: Rc::clone(&body), tries: 0, not_before: now });
        }
        self.kicked = true;
    }

    /// Whether any receiver is set up.
    pub fn any(&self) -> bool {
        !self.hooks.is_empty()
    }

    pub fn queued(&self) -> usize {
        self.hooks.iter().map(|h| h.queue.len()).sum()
    }
}

impl Notifier {
    /// Start the next due alert of every receiver that has none in flight.
    pub fn pump(&mut self, net: &mut Net, now: Instant) {
        self.kicked = false;
        for i in 0..self.hooks.len() {
            let h = &mut self.hooks[i];
            let due = h.send.is_none() && h.queue.front().is_some_and(|d| d.not_before <= now);
            if !due {
                continue;
            }
            if h.addrs.is_empty() || h.resolved_at.is_none_or(|t| now.duration_since(t) > RESOLVE_TTL) {
                if !h.resolving {
                    h.resolving = true;
                    net.resolver.lookup_webhook(h.id, &h.url.base.host, h.url.base.port);
                }
                continue;
            }
            self.start(net, i, now);
        }
    }

    fn start(&mut self, net: &mut Net, i: usize, now: Instant) {
        let h = &self.hooks[i];
        let addr = h.addrs[h.queue.front().map_or(0, |d| d.tries) % h.addrs.len()];
        let https = h.url.base.scheme == Scheme::Https;
        if https && self.tls.is_none() {
            return self.failed(net, i, "no TLS configuration (the CA file could not be read)".into(), now);
        }
        let h = &self.hooks[i];
        let host = h.url.base.host.clone();
        let tls = if https { self.tls.clone() } else { None };
        let Some(d) = h.queue.front() else { return };
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: qcc/{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            h.url.target,
            h.url.base.host(),
            env!("CARGO_PKG_VERSION"),
            d.body.len()
        )
        .into_bytes();
        request.extend_from_slice(&d.body);
        let opened =
            net.open_connection(addr, tls.as_ref().map(|c| (c, host.as_str())), Owner::Alert, usize::MAX, 0, now);
        match opened {
            Ok(up) => {
                let deadline = now + TRY_TIMEOUT;
                self.hooks[i].send = Some(Send { up, request, sent: 0, deadline });
                net.arm(deadline);
            }
            Err(e) => self.failed(net, i, format!("{e:?}"), now),
        }
    }

    /// An alert connection is ready to read or write.
    pub fn drive(&mut self, net: &mut Net, key: Key, now: Instant) {
        let Some(i) = self.hooks.iter().position(|h| h.send.as_ref().is_some_and(|s| s.up == key)) else {
            net.close(key); // its receiver was removed
            return;
        };
        let (Some(up), Some(s)) = (net.upstreams.get_mut(key), self.hooks[i].send.as_mut()) else { return };
        let verdict = crate::proxy::upstream::one_shot::step(&s.request, &mut s.sent, up, &mut net.scratch);
        match verdict {
            None => {}
            Some(Ok(status)) if (200..300).contains(&status) => {
                net.close(key);
                let h = &mut self.hooks[i];
                h.send = None;
                h.queue.pop_front();
                self.delivered += 1;
                self.pump(net, now);
            }
            Some(Ok(status)) => self.failed(net, i, format!("HTTP {status}"), now),
            Some(Err(e)) => self.failed(net, i, e, now),
        }
    }

    /// The try of receiver `i`'s first alert failed: try again later, or give it up.
    fn failed(&mut self, net: &mut Net, i: usize, why: String, now: Instant) {
        let h = &mut self.hooks[i];
        if let Some(s) = h.send.take() {
            net.close(s.up);
        }
        let h = &mut self.hooks[i];
        let Some(d) = h.queue.front_mut() else { return };
        d.tries += 1;
        match BACKOFF.get(d.tries - 1) {
            Some(wait) => {
                log::debug!("alert {} to {}: {why}; trying again in {} s", d.event, h.url.shown(), wait.as_secs());
                d.not_before = now + *wait;
                let at = d.not_before;
                net.arm(at);
            }
            None => {
                log::warn!("alert {} to {} given up after {} tries: {why}", d.event, h.url.shown(), d.tries);
                h.queue.pop_front();
                self.given_up += 1;
                self.pump(net, now);
            }
        }
    }

    /// Receiver `id`'s addresses arrived (or could not be found).
    pub fn on_lookup(&mut self, net: &mut Net, id: usize, result: Result<Vec<SocketAddr>, String>, now: Instant) {
        let Some(i) = self.hooks.iter().position(|h| h.id == id) else { return };
        let h = &mut self.hooks[i];
        h.resolving = false;
        match result {
            Ok(addrs) => {
                h.addrs = addrs;
                h.resolved_at = Some(now);
                self.pump(net, now);
            }
            Err(e) if h.send.is_none() && !h.queue.is_empty() => self.failed(net, i, e, now),
            Err(_) => {}
        }
    }

    /// Tries past their time fail; alerts whose wait is over start. Returns what is still due.
    pub fn deadlines(&mut self, net: &mut Net, now: Instant) -> Vec<Instant> {
        let late: Vec<usize> =
            (0..self.hooks.len()).filter(|&i| self.hooks[i].send.as_ref().is_some_and(|s| s.deadline <= now)).collect();
        for i in late {
            self.failed(net, i, "no answer within 10 s".into(), now);
        }
        self.pump(net, now);
        let mut due = Vec::new();
        for h in &self.hooks {
            match (&h.send, h.queue.front()) {
                (Some(s), _) => due.push(s.deadline),
                (None, Some(d)) if d.not_before > now => due.push(d.not_before),
                _ => {}
            }
        }
        due
    }
}
