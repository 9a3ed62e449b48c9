//! `qcc proxy start`: the single-threaded mio event loop that owns every socket and all
//! proxy state (endpoints, health, failure queue, stats).
//!
//! See ARCHITECTURE.md for the picture. The loop's state is three types: `Shared`
//! (`shared/mod.rs`), `Net` (`upstream/net.rs`, the upstream side) and each client's `Conn`
//! (`client/conn.rs`, a client connection with the other two lent beside it). Its rooms are
//! layers, bottom up: `event/` bytes and sockets; `scan/` what reads and rewrites bodies as they
//! pass; `record/` what a finished request leaves; `state/` the per-socket and per-request types,
//! one file per owner; `upstream/` the upstream connections (`Net`, the pool, the resolver);
//! `eligibility.rs` and `clusters.rs` which endpoint may serve; `shared/` `Shared` and its parts;
//! `client/` the client side; `forward/` attempts and their answers; `admin/` the admin surface;
//! and on top the loop itself (this file, `timers.rs`, `shutdown.rs`). A room names only rooms
//! below it (`scripts/imports.py`).

mod admin;
mod client;
mod clusters;
mod counters;
mod eligibility;
mod event;
mod facts;
mod forward;
mod record;
mod scan;
mod shared;
mod shutdown;
mod state;
mod timers;
mod upstream;
mod wire;

// What the CLI's `health test` shares with the proxy: the TLS setup and the probe request.
pub use event::transport::TlsConfigs;
pub use wire::probe_request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::error::{Error, Result};
use crate::policy::failure_queue::FailureQueue;
use crate::settings::Settings;
use event::slab::{untoken, Key, Slab, KIND_CLIENT, KIND_UPSTREAM};
use event::transport::{alert_tls, tls_for};
use state::{Client, ClientPhase, Endpoint, Owner, Stats, DISK_WAIT};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(4);
/// A burst of failure-queue changes within this window costs one write of the file.
/// Sweeps for expired deadlines run at most this often.
const SWEEP_MIN_GAP: Duration = Duration::from_millis(10);
/// At a stop, a connection already accepted but still without its first request gets this long
/// to send it (it is likely on the wire): no other process can serve it, since it has left the
/// listening socket. Idle keep-alive connections close at once.
const DRAIN_FIRST_REQUEST: Duration = Duration::from_secs(1);
/// The shortest access key a listener off loopback accepts.
const MIN_PUBLIC_KEY: usize = 16;

/// Everything mutable the proxy has, owned by one thread.
///
/// This is the single-owner invariant that replaces the Python version's `asyncio.Lock`:
/// nothing outside this struct's thread can reach the endpoints, the failure queue or the
/// stats; handlers get them as disjoint `&mut` borrows, one event at a time.
pub struct EventLoop {
    poll: Poll,
    /// `None` once draining: closed, so new connections are refused rather than left waiting.
    listener: Option<TcpListener>,
    clients: Slab<Client>,
    /// The upstream side: connections the proxy opens, the resolver, the sweep time (`net.rs`).
    net: upstream::net::Net,
    /// Clients whose pump stopped while still making progress (fairness): driven next turn.
    again: Vec<Key>,
    /// Recovery probes in flight (`forward/probe.rs`).
    probes: forward::probe::Probes,
    /// Answers read for their usage after their clients went away (`forward/orphan.rs`).
    orphans: forward::orphan::Orphans,
    signals: mio::unix::pipe::Receiver,
    /// Set by SIGTERM/SIGINT: no new connections, exit when the last exchange ends or then.
    draining: Option<Instant>,
    /// While draining: until when connections still without a first request are kept.
    drain_fresh_until: Option<Instant>,
    /// Set when accept failed (out of descriptors): when to try again.
    accept_retry: Option<Instant>,
    /// Clients not reading their request body until body memory frees (`budget.rs`).
    bodies: client::budget::BodyBudget,
    /// The request-history search in progress (`admin/logs.rs`).
    searches: admin::logs::Searches,
    /// What every connection reads and updates (`shared.rs`).
    pub(crate) sh: shared::Shared,
}

/// A background proxy leaves its starter's terminal once it listens: stdout and stderr become
/// /dev/null (the starter stops reading them; everything is in proxy.log).
fn detach_output() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto our own standard descriptors; `null` stays open until both are done.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
    }
}

/// Run the proxy in the foreground until SIGTERM/SIGINT has drained it.
pub fn run(mut settings: Settings) -> Result<()> {
    crate::logging::init(settings.log_level, &settings.home, !settings.detached)?;
    event::fds::fit_descriptors(&mut settings);
    let guard = crate::store::pidfile::lock(&settings.home)?;
    let builtin = settings.builtin_default;
    let mut summary = format!(
        "cluster '{}' ({} endpoints, strategy {})",
        settings.main().name,
        settings.main().endpoints.len(),
        settings.strategy.as_str()
    );
    if settings.clusters.len() > 1 {
        let others: Vec<&str> = settings.clusters[1..].iter().map(|c| c.name.as_str()).collect();
        summary.push_str(&format!(", with {}", others.join(", ")));
    }
    let mut ev = EventLoop::new(settings)?;
    guard.write(&crate::store::pidfile::PidInfo {
        pid: std::process::id(),
        host: ev.sh.addr.ip().to_string(),
        port: ev.sh.addr.port(),
        start_time: crate::store::timefmt::iso(SystemTime::now()),
        cluster: Some(ev.sh.clusters[0].name.to_string()),
        by_priority: ev.sh.settings.chain.is_some(),
        control_token: Some(ev.sh.control_token.clone()),
    })?;
    let base = match ev.sh.addr {
        SocketAddr::V4(a) => format!("http://{a}"),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    };
    log::info!("qcc {} proxy listening on {base}, {summary}", env!("CARGO_PKG_VERSION"));
    println!("qcc proxy listening on {base}, {summary}");
    if builtin {
        println!("No cluster configured: forwarding to https://api.anthropic.com with each client's own key.");
        println!(
            "Add endpoints with: qcc endpoint add CLUSTER --url URL --key KEY, then qcc proxy start --cluster CLUSTER"
        );
    }
    println!("ANTHROPIC_BASE_URL={base}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    if ev.sh.settings.detached {
        detach_output();
    }
    crate::sdnotify::notify("READY=1");
    let result = ev.run();
    ev.close_all(Instant::now()); // after an error: every lent connection given back
    drop(guard);
    crate::logging::flush();
    result
}

impl EventLoop {
    pub fn new(settings: Settings) -> Result<EventLoop> {
        let poll = Poll::new().map_err(|e| Error::io("creating the event loop", e))?;
        let mut listener = match event::activation::inherited_listener().map_err(Error::Failed)? {
            Some(std) => TcpListener::from_std(std),
            None => TcpListener::bind(settings.listen)
                .map_err(|e| Error::io(format!("cannot listen on {}", settings.listen), e))?,
        };
        let addr = listener.local_addr().map_err(|e| Error::io("reading the listen address", e))?;
        // Read once here; the disk thread reads it again only when it changes from this.
        let keys_path = crate::store::keys::path(&settings.home);
        let keys_seen = shared::disk::keys_seen(&keys_path);
        let key_file = crate::store::keys::KeyFile::load(&keys_path)?;
        // Checked on the address actually listened on (a passed socket may be anywhere). Client
        // keys (always long) are enough on their own.
        let short = settings.access_key.as_ref().is_some_and(|k| k.chars().count() < MIN_PUBLIC_KEY);
        let none = settings.access_key.is_none() && key_file.keys.is_empty();
        if !addr.ip().is_loopback() && (short || none) {
            let what = if short { "with an access key this short" } else { "without an access key or client keys" };
            return Err(Error::Invalid(format!(
                "refusing to listen on {} {what}: off loopback the key must have at least {MIN_PUBLIC_KEY} \
                 characters (set QCC_ACCESS_KEY, write one to {}, pass --access-key, or make client keys \
                 with `qcc key add NAME`)",
                addr.ip(),
                settings.home.join("access_key").display()
            )));
        }
        // Said at every start: a key that appeared since the last one (a service install made one,
        // say) turns access control on, and the clients that had none get 401 from now on.
        match (&settings.access_key, key_file.keys.len()) {
            (Some(_), n) => log::info!(
                "access control is on: requests need the access key (QCC_ACCESS_KEY, --access-key or {}){}; \
                 qcc env and qcc use pass it on",
                settings.home.join("access_key").display(),
                if n > 0 { format!(" or one of {n} client keys") } else { String::new() }
            ),
            (None, n) if n > 0 => log::info!("access control is on: requests need one of {n} client keys"),
            _ => {}
        }
        let mut keys = shared::keys::ClientKeys::default();
        keys.apply(key_file);
        let mut notifier = shared::notify::Notifier::default();
        let alert_urls = [settings.notify_urls.clone(), settings.config_notify_urls.clone()].concat();
        let alert_tls = match shared::notify::Notifier::any_https(&alert_urls) {
            true => Some(alert_tls(settings.ca_file.as_deref()).map_err(Error::Invalid)?),
            false => None,
        };
        let _none_in_flight = notifier.set_urls(&alert_urls, alert_tls);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::io("registering the listener", e))?;
        let mut signals = event::signals::install().map_err(|e| Error::io("installing signal handlers", e))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| Error::io("registering the signal pipe", e))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("creating a waker", e))?);
        let resolver = upstream::resolver::Resolver::start(waker.clone())
            .map_err(|e| Error::io("starting the resolver thread", e))?;
        let paths = shared::disk::Paths {
            config: settings.config_path.clone(),
            cluster: settings.main().name.clone(),
            chain: settings.chain.clone(),
            priorities: settings.chain.is_some().then(|| settings.home.clone()),
            ca_file: settings.ca_file.clone(),
            access_log: settings.access_log.clone(),
            keys: keys_path,
            keys_seen,
            also: Vec::new(),
        };
        let disk =
            shared::disk::Disk::start(paths, waker.clone()).map_err(|e| Error::io("starting the disk thread", e))?;

        let mut tls_configs = event::transport::TlsConfigs::default();
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let mut endpoints = Vec::new();
        let mut served = Vec::with_capacity(settings.clusters.len());
        for (c, cluster) in settings.clusters.iter().enumerate() {
            for cfg in &cluster.endpoints {
                let tls = tls_for(cfg, settings.ca_file.as_deref(), &mut tls_configs).map_err(Error::Invalid)?;
                endpoints.push(Endpoint::new(cfg.clone(), c, tls));
            }
            let strategy = clusters::strategy(&settings, cluster);
            served.push(clusters::Cluster::new(c, cluster.clone(), strategy, seed.wrapping_add(c as u64)));
        }
        clusters::link(&mut served);
        let now = Instant::now();
        // Resolve every named endpoint up front, so the first request rarely waits.
        for (i, ep) in endpoints.iter_mut().enumerate() {
            if ep.addrs.is_empty() {
                resolver.lookup(i, ep);
            } else {
                ep.resolved_at = Some(now);
            }
        }

        let queue_path = settings.home.join("failure_endpoints.json");
        let (mut failures, warning) = FailureQueue::load(&queue_path);
        if let Some(w) = warning {
            log::warn!("{w}; starting with an empty failure queue");
        }
        let persist_at = if failures.is_dirty() { Some(now) } else { None };
        let (usage, warning) = crate::store::usage::UsageBook::load(&settings.home.join("usage.json"));
        if let Some(w) = warning {
            log::warn!("{w}; starting with empty usage counters");
        }
        let _ = &mut failures;
        let next_probe = now + settings.verify_interval;
        let registry = poll.registry().try_clone().map_err(|e| Error::io("creating the event loop", e))?;
        let net = upstream::net::Net::new(registry, resolver);
        let sh = shared::Shared {
            addr,
            endpoints,
            clusters: shared::ReadOnly::new(served),
            failures,
            stats: Stats::default(),
            gate: shared::guard::Gate::new(addr, &settings.allow_hosts, &settings.allow_origins),
            affinity: upstream::affinity::Affinity::new(settings.affinity_max, settings.affinity_ttl),
            disk,
            queue_path,
            settings: shared::ReadOnly::new(settings),
            persist_at,
            usage,
            usage_at: None,
            usage_day: (0, String::new()),
            failing_files: Vec::new(),
            started: now,
            started_wall: SystemTime::now(),
            history: record::history::History::default(),
            recent: record::requests::Recent::default(),
            refusals: shared::refusals::Refusals::default(),
            keys,
            keys_problem: None,
            body_logs: 0,
            control_token: shared::keys::control_token()?,
            page_token: shared::keys::control_token()?,
            notifier,
            cluster_generation: 0,
            next_probe,
        };
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            clients: Slab::new(),
            net,
            probes: Default::default(),
            orphans: Default::default(),
            again: Vec::new(),
            signals,
            draining: None,
            drain_fresh_until: None,
            accept_retry: None,
            bodies: Default::default(),
            searches: admin::logs::Searches::new(waker),
            sh,
        })
    }

    pub fn run(&mut self) -> Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = if self.again.is_empty() { self.poll_timeout(now) } else { Some(Duration::ZERO) };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::io("waiting for events", e));
            }
            let now = Instant::now();
            // Idle pooled connections first: an EOF among this batch's events closes its
            // connection before a request of the same batch could be written to it.
            for event in events.iter() {
                let (kind, key) = untoken(event.token());
                if kind == KIND_UPSTREAM && self.net.upstreams.get(key).is_some_and(|u| u.owner == Owner::Idle) {
                    let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                    self.on_upstream_event(key, readable, event.is_writable(), event.is_read_closed(), now);
                }
            }
            for key in std::mem::take(&mut self.again) {
                self.drive(key, now);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    SIGNALS => self.on_signals(now),
                    WAKER => {
                        self.on_lookups(now);
                        self.on_disk(now);
                        self.on_searches(now);
                    }
                    t => {
                        let (kind, key) = untoken(t);
                        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                        let writable = event.is_writable() || event.is_write_closed() || event.is_error();
                        let hup = event.is_read_closed() || event.is_error();
                        if kind == KIND_CLIENT {
                            if let Some(c) = self.clients.get_mut(key) {
                                c.can_read |= readable;
                                c.hup |= hup;
                                c.can_write |= writable;
                                self.drive(key, now);
                            }
                        } else if kind == KIND_UPSTREAM {
                            // (an idle one handled above is gone, or reads WouldBlock)
                            self.on_upstream_event(key, readable, writable, hup, now);
                        }
                    }
                }
            }
            self.on_timers(now);
            // Alerts queued this turn (anywhere: `Shared::alert`) start on their way.
            if self.sh.notifier.kicked {
                self.sh.notifier.pump(&mut self.net, now);
            }
            // Access-log lines go to the history thread in batches (every 100 ms at most).
            self.sh.stats.history_dropped += self.sh.disk.send_lines(Some(now));
            if let Some(deadline) = self.draining {
                if self.drain_fresh_until.is_some_and(|t| t <= now) {
                    self.drain_fresh_until = None;
                    self.close_idle_clients(now);
                }
                let busy = self.clients.len();
                if busy == 0 || now >= deadline {
                    if busy > 0 {
                        log::warn!("drain timeout: closing {busy} connections still open");
                    }
                    self.close_all(now);
                    self.sh.persist();
                    self.sh.persist_usage();
                    self.sh.disk.finish(); // the last state writes land before the exit
                    while let Some(done) = self.sh.disk.try_next() {
                        if let shared::disk::Done::Saved { path, result } = done {
                            self.sh.on_saved(path, result);
                        }
                    }
                    log::info!("qcc proxy stopped");
                    return Ok(());
                }
            }
        }
    }

    /// The loop's connections, as the status JSON and `/metrics` report them.
    fn conns(&self) -> shared::Conns {
        let exchanges = self
            .clients
            .keys()
            .filter(|k| matches!(self.clients.get(*k).map(|c| &c.phase), Some(ClientPhase::Exchange(_))))
            .count();
        shared::Conns { clients: self.clients.len(), exchanges, upstreams: self.net.upstreams.len() }
    }

    fn on_upstream_event(&mut self, key: Key, readable: bool, writable: bool, hup: bool, now: Instant) {
        let Some(up) = self.net.upstreams.get_mut(key) else {
            return;
        };
        up.can_read |= readable;
        up.hup |= hup;
        up.can_write |= writable;
        match up.owner {
            Owner::Client(ck) => self.drive(ck, now),
            Owner::Probe(ep) => self.probes.drive(&mut self.net, &mut self.sh, ep, key, now),
            Owner::Alert => self.sh.notifier.drive(&mut self.net, key, now),
            Owner::Orphan => self.orphans.drive(&mut self.net, &mut self.sh, key, now),
            Owner::Idle => self.net.on_idle_event(&mut self.sh.endpoints, key, readable),
        }
    }

    fn on_lookups(&mut self, now: Instant) {
        while let Some(lookup) = self.net.resolver.try_next() {
            let (idx, generation) = match lookup.asker {
                upstream::resolver::Asker::Endpoint { idx, generation } => (idx, generation),
                upstream::resolver::Asker::Webhook(i) => {
                    self.sh.notifier.on_lookup(&mut self.net, i, lookup.result, now);
                    continue;
                }
            };
            let Some(ep) = self.sh.endpoints.get_mut(idx) else {
                continue;
            };
            if generation != ep.generation {
                continue; // for a target a reload replaced; its own lookup is on the way
            }
            ep.resolving = false;
            match lookup.result {
                Ok(addrs) => {
                    ep.addrs = addrs;
                    ep.resolved_at = Some(now);
                    ep.next_addr = 0;
                }
                Err(e) => {
                    log::warn!("endpoint {}: {e}", ep.cfg.label());
                    // Keep old addresses if we had some; waiting requests fail over below.
                }
            }
            self.resume_resolving(idx, now);
        }
    }
}
