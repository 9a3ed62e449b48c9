//! `qcc proxy start`: the single-threaded mio event loop that owns every socket and all
//! proxy state (endpoints, health, failure queue, stats).
//!
//! See ARCHITECTURE.md for the picture. Submodules: `exchange` drives a client request
//! through its attempts, `probe` verifies queued endpoints, `status` renders `/_qcc/status`.

mod admin;
mod answer;
mod client;
mod event;
mod state;
mod upstream;
mod wire;

// What the CLI's `health test` shares with the proxy: the TLS setup and the probe request.
pub use upstream::transport::TlsConfigs;
pub use wire::probe_request;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::error::{Error, Result};
use crate::policy::balancer::Balancer;
use crate::policy::failure_queue::FailureQueue;
use crate::settings::Settings;
use event::slab::{Key, Slab};
use state::{Client, ClientPhase, Endpoint, Owner, Stats, Upstream, DISK_WAIT, FIRST_BYTE_TIMEOUT, LINGER, POOL_IDLE};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(4);
const KIND_CLIENT: usize = 2;
const KIND_UPSTREAM: usize = 3;
/// A burst of failure-queue changes within this window costs one write of the file.
/// Sweeps for expired deadlines run at most this often.
const SWEEP_MIN_GAP: Duration = Duration::from_millis(10);
/// At a stop, a connection already accepted but still without its first request gets this long
/// to send it (it is likely on the wire): no other process can serve it, since it has left the
/// listening socket. Idle keep-alive connections close at once.
const DRAIN_FIRST_REQUEST: Duration = Duration::from_secs(1);
/// The shortest access key a listener off loopback accepts.
const MIN_PUBLIC_KEY: usize = 16;
/// Bytes read per socket read.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

fn token(kind: usize, key: Key) -> Token {
    Token(((key.gen as usize) << 32) | ((key.index as usize) << 2) | kind)
}

fn untoken(t: Token) -> (usize, Key) {
    (t.0 & 3, Key { index: ((t.0 >> 2) & 0x3fff_ffff) as u32, gen: (t.0 >> 32) as u32 })
}

/// The TLS configuration an endpoint needs (none for http://). Fails only on a bad CA file.
fn tls_for(
    cfg: &crate::store::config::EndpointConfig,
    global_ca: Option<&std::path::Path>,
    tls_configs: &mut upstream::transport::TlsConfigs,
) -> std::result::Result<Option<Arc<rustls::ClientConfig>>, String> {
    match cfg.url.scheme {
        crate::store::url::Scheme::Http => Ok(None),
        crate::store::url::Scheme::Https => {
            let extra: Vec<&std::path::Path> = global_ca.into_iter().chain(cfg.ca_file.as_deref()).collect();
            Ok(Some(tls_configs.get(&extra)?))
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
    fn from_io(e: std::io::Error) -> OpenError {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => OpenError::Local(e.to_string()),
            _ => OpenError::Endpoint(e.to_string()),
        }
    }
}

/// Everything mutable the proxy has, owned by one thread.
///
/// This is the single-owner invariant that replaces the Python version's `asyncio.Lock`:
/// nothing outside this struct's thread can reach the endpoints, the failure queue or the
/// stats; handlers get them as disjoint `&mut` borrows, one event at a time.
pub struct EventLoop {
    poll: Poll,
    /// `None` once draining: closed, so new connections are refused rather than left waiting.
    listener: Option<TcpListener>,
    pub(crate) addr: SocketAddr,
    clients: Slab<Client>,
    upstreams: Slab<Upstream>,
    endpoints: Vec<Endpoint>,
    balancer: Balancer,
    failures: FailureQueue,
    stats: Stats,
    resolver: upstream::resolver::Resolver,
    settings: Settings,
    /// Host/Origin/preflight checks (`guard.rs`), built from the settings and the bound address.
    gate: client::guard::Gate,
    queue_path: PathBuf,
    scratch: Vec<u8>,
    /// Clients whose pump stopped while still making progress (fairness): driven next turn.
    again: Vec<Key>,
    next_sweep: Option<Instant>,
    next_probe: Instant,
    persist_at: Option<Instant>,
    /// Token usage per day, endpoint and model (`$QCC_HOME/usage.json`), and when to write it.
    usage: crate::store::usage::UsageBook,
    usage_at: Option<Instant>,
    /// (UTC day number, its "YYYY-MM-DD"), the usage book's current bucket name.
    usage_day: (u64, String),
    /// State files whose last write failed (reported once, and once when they work again).
    failing_files: Vec<PathBuf>,
    probes: Vec<upstream::probe::Probe>,
    started: Instant,
    started_wall: SystemTime,
    signals: mio::unix::pipe::Receiver,
    /// Set by SIGTERM/SIGINT: no new connections, exit when the last exchange ends or then.
    draining: Option<Instant>,
    /// While draining: until when connections still without a first request are kept.
    drain_fresh_until: Option<Instant>,
    /// Set when accept failed (out of descriptors): when to try again.
    accept_retry: Option<Instant>,
    /// Clients not reading their request body until body memory frees (`budget.rs`).
    body_waiters: Vec<Key>,
    /// Session -> endpoint bindings (`affinity.rs`).
    affinity: upstream::affinity::Affinity,
    /// Recent endpoint events (`history.rs`).
    history: admin::history::History,
    /// Recent requests and requests per second (the dashboard), and the access log (`metrics.rs`).
    recent: admin::metrics::Recent,
    /// The thread that does the file work: state files, the access log, config reads (`disk.rs`).
    disk: event::disk::Disk,
    /// Wrong keys per client address, and the rate of refusal log lines (`refusals.rs`).
    refusals: client::refusals::Refusals,
}

/// Run the proxy in the foreground until SIGTERM/SIGINT has drained it.
pub fn run(mut settings: Settings) -> Result<()> {
    crate::logging::init(settings.log_level, &settings.home)?;
    event::limits::fit_descriptors(&mut settings);
    let guard = crate::store::pidfile::lock(&settings.home)?;
    let builtin = settings.builtin_default;
    let summary = format!(
        "cluster '{}' ({} endpoints, strategy {})",
        settings.cluster.name,
        settings.cluster.endpoints.len(),
        settings.strategy.as_str()
    );
    let mut ev = EventLoop::new(settings)?;
    guard.write(&crate::store::pidfile::PidInfo {
        pid: std::process::id(),
        host: ev.addr.ip().to_string(),
        port: ev.addr.port(),
        start_time: crate::store::timefmt::iso(SystemTime::now()),
    })?;
    let base = match ev.addr {
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
    crate::sdnotify::notify("READY=1");
    let result = ev.run();
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
        // Checked on the address actually listened on (a passed socket may be anywhere).
        if !addr.ip().is_loopback() && settings.access_key.as_ref().is_none_or(|k| k.chars().count() < MIN_PUBLIC_KEY) {
            let what =
                if settings.access_key.is_some() { "with an access key this short" } else { "without an access key" };
            return Err(Error::Invalid(format!(
                "refusing to listen on {} {what}: off loopback the key must have at least {MIN_PUBLIC_KEY} \
                 characters (set QCC_ACCESS_KEY, write one to {}, or pass --access-key)",
                addr.ip(),
                settings.home.join("access_key").display()
            )));
        }
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
        let paths = event::disk::Paths {
            config: settings.config_path.clone(),
            cluster: settings.cluster.name.clone(),
            ca_file: settings.ca_file.clone(),
            access_log: settings.access_log.clone(),
        };
        let disk = event::disk::Disk::start(paths, waker).map_err(|e| Error::io("starting the disk thread", e))?;

        let mut tls_configs = upstream::transport::TlsConfigs::default();
        let mut endpoints = Vec::with_capacity(settings.cluster.endpoints.len());
        for cfg in &settings.cluster.endpoints {
            let tls = tls_for(cfg, settings.ca_file.as_deref(), &mut tls_configs).map_err(Error::Invalid)?;
            endpoints.push(Endpoint::new(cfg.clone(), tls));
        }
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
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            addr,
            clients: Slab::new(),
            upstreams: Slab::new(),
            endpoints,
            balancer: Balancer::new(settings.strategy, seed),
            failures,
            stats: Stats::default(),
            resolver,
            next_probe: now + settings.verify_interval,
            gate: client::guard::Gate::new(addr, &settings.allow_hosts, &settings.allow_origins),
            affinity: upstream::affinity::Affinity::new(settings.affinity_max, settings.affinity_ttl),
            disk,
            queue_path,
            settings,
            scratch: vec![0; READ_CHUNK],
            again: Vec::new(),
            next_sweep: None,
            persist_at,
            usage,
            usage_at: None,
            usage_day: (0, String::new()),
            failing_files: Vec::new(),
            probes: Vec::new(),
            started: now,
            started_wall: SystemTime::now(),
            signals,
            draining: None,
            drain_fresh_until: None,
            accept_retry: None,
            body_waiters: Vec::new(),
            history: admin::history::History::default(),
            recent: admin::metrics::Recent::default(),
            refusals: client::refusals::Refusals::default(),
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
                if kind == KIND_UPSTREAM && self.upstreams.get(key).is_some_and(|u| u.owner == Owner::Idle) {
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
                    self.persist();
                    self.persist_usage();
                    self.disk.finish(); // the last state writes land before the exit
                    while let Some(done) = self.disk.try_next() {
                        if let event::disk::Done::Saved { path, result } = done {
                            self.on_saved(path, result);
                        }
                    }
                    log::info!("qcc proxy stopped");
                    return Ok(());
                }
            }
        }
    }

    fn on_signals(&mut self, now: Instant) {
        for signal in event::signals::drain(&mut self.signals) {
            match signal {
                event::signals::Signal::Stop => self.begin_drain(now),
                event::signals::Signal::Reload => {
                    // After logrotate moved them: both logs are opened again at their paths.
                    crate::logging::reopen();
                    self.disk.reopen_access_log();
                    self.request_reload(event::disk::Edit::None, None, now);
                }
            }
        }
    }

    /// Stop accepting; idle keep-alive connections close now, busy ones after their current
    /// exchange, new ones that have not sent a request yet after `DRAIN_FIRST_REQUEST`.
    fn begin_drain(&mut self, now: Instant) {
        if self.draining.is_some() {
            return;
        }
        let deadline = now + self.settings.drain_timeout;
        self.draining = Some(deadline);
        crate::sdnotify::notify("STOPPING=1");
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let busy = self.clients.keys().filter(|k| self.client_busy(*k)).count();
        log::info!(
            "stopping: no new connections, draining {busy} in-flight requests (up to {:?})",
            self.settings.drain_timeout
        );
        let keys: Vec<Key> = self.clients.keys().collect();
        for key in keys {
            if !self.client_busy(key) {
                if self.clients.get(key).is_some_and(|c| c.heads > 0) {
                    self.close_client(key, now);
                }
            } else if let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(key).map(|c| &mut c.phase) {
                ex.keep_alive = false;
            }
        }
        let fresh_until = now + DRAIN_FIRST_REQUEST.min(self.settings.drain_timeout);
        self.drain_fresh_until = Some(fresh_until);
        self.arm(fresh_until);
        self.arm(deadline);
    }

    /// Close every connection without a request in progress or bytes to deliver.
    fn close_idle_clients(&mut self, now: Instant) {
        let keys: Vec<Key> = self.clients.keys().collect();
        for key in keys {
            if !self.client_busy(key) {
                self.close_client(key, now);
            }
        }
    }

    /// A connection with a request in progress or bytes still to deliver.
    fn client_busy(&self, key: Key) -> bool {
        self.clients.get(key).is_some_and(|c| {
            !c.out.is_empty()
                || !c.inbuf.is_empty()
                || matches!(c.phase, ClientPhase::Exchange(_) | ClientPhase::Waiting { .. })
        })
    }

    /// How long poll may sleep: until the earliest deadline we know of.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let mut next = self.next_probe;
        if let Some(t) = self.next_sweep {
            next = next.min(t);
        }
        for t in [self.persist_at, self.usage_at, self.accept_retry].into_iter().flatten() {
            next = next.min(t);
        }
        Some(next.saturating_duration_since(now))
    }

    /// Make sure the sweep runs no later than `at`.
    fn arm(&mut self, at: Instant) {
        if self.next_sweep.is_none_or(|t| at < t) {
            self.next_sweep = Some(at);
        }
    }

    fn on_upstream_event(&mut self, key: Key, readable: bool, writable: bool, hup: bool, now: Instant) {
        let Some(up) = self.upstreams.get_mut(key) else {
            return;
        };
        up.can_read |= readable;
        up.hup |= hup;
        up.can_write |= writable;
        match up.owner {
            Owner::Client(ck) => self.drive(ck, now),
            Owner::Probe(ep) => self.drive_probe(ep, key, now),
            Owner::Idle => {
                // An idle connection has nothing to say: data, EOF or an error means the server
                // closed it (or broke it). A stale readiness hint reads WouldBlock: keep it.
                if readable
                    && !matches!(up.transport.read(&mut up.inbuf, &mut self.scratch), event::io::IoOutcome::WouldBlock)
                {
                    self.close_upstream(key);
                } else if let Some(up) = self.upstreams.get_mut(key) {
                    up.can_read = false;
                }
            }
        }
    }

    fn on_lookups(&mut self, now: Instant) {
        while let Some(lookup) = self.resolver.try_next() {
            let Some(ep) = self.endpoints.get_mut(lookup.endpoint) else {
                continue;
            };
            if lookup.generation != ep.generation {
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
                    log::warn!("endpoint {}: {e}", ep.cfg.id);
                    // Keep old addresses if we had some; waiting requests fail over below.
                }
            }
            self.resume_resolving(lookup.endpoint, now);
        }
    }

    /// Start a non-blocking connection to endpoint `idx` for `owner` (plain or TLS) and register
    /// it with the loop; the owner learns on WRITABLE whether it connected.
    fn open_upstream(&mut self, idx: usize, owner: Owner, now: Instant) -> std::result::Result<Key, OpenError> {
        let ep = &mut self.endpoints[idx];
        let Some(&addr) = ep.addrs.get(ep.next_addr % ep.addrs.len().max(1)) else {
            return Err(OpenError::Endpoint(format!("no address for {}", ep.cfg.url.host)));
        };
        let opened = mio::net::TcpStream::connect(addr).map_err(OpenError::from_io).and_then(|sock| {
            let _ = sock.set_nodelay(true);
            match &ep.tls {
                None => Ok(upstream::transport::Transport::plain(sock)),
                Some(cfg) => upstream::transport::Transport::tls(sock, cfg.clone(), &ep.cfg.url.host)
                    .map_err(|e| OpenError::Endpoint(e.to_string())),
            }
        });
        let mut transport = match opened {
            Ok(t) => t,
            Err(e) => {
                // Try the next address next time: one dead address must not pin the endpoint.
                ep.next_addr = ep.next_addr.wrapping_add(1);
                return Err(e);
            }
        };
        let key = self.upstreams.next_key();
        self.poll
            .registry()
            .register(transport.socket(), token(KIND_UPSTREAM, key), Interest::READABLE | Interest::WRITABLE)
            .map_err(OpenError::from_io)?;
        let generation = ep.generation;
        self.upstreams.insert(Upstream {
            transport,
            endpoint: idx,
            generation,
            owner,
            connected: false,
            reused: false,
            can_read: false,
            can_write: false,
            inbuf: Vec::new(),
            head_scan: Default::default(),
            idle_since: now,
            hup: false,
        });
        Ok(key)
    }

    /// Deregister and drop an upstream connection, wherever it was.
    fn close_upstream(&mut self, key: Key) {
        if let Some(mut up) = self.upstreams.remove(key) {
            let _ = self.poll.registry().deregister(up.transport.socket());
            if up.owner == Owner::Idle {
                if let Some(ep) = self.endpoints.get_mut(up.endpoint) {
                    ep.idle.retain(|k| *k != key);
                }
            }
        }
    }

    fn close_client(&mut self, key: Key, now: Instant) {
        if let Some(mut c) = self.clients.remove(key) {
            let _ = self.poll.registry().deregister(&mut c.sock);
            if let ClientPhase::Exchange(ex) = c.phase {
                let out = c.out.pushed() - ex.out_start;
                self.abandon_exchange(*ex, out, now);
            }
        }
    }

    fn on_timers(&mut self, now: Instant) {
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            self.accept(now);
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist();
        }
        if self.usage_at.is_some_and(|t| t <= now) {
            self.persist_usage();
        }
        if self.next_probe <= now {
            self.affinity.expire(now);
            self.start_probes(now);
            self.next_probe = now + self.settings.verify_interval;
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sweep(now);
        }
    }

    /// Fire every expired deadline and work out when the next one is due.
    fn sweep(&mut self, now: Instant) {
        self.wake_body_waiters();
        let mut next: Option<Instant> = None;
        let mut upd = |t: Instant| {
            if next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        let idle: Vec<Key> = self.upstreams.keys().collect();
        for key in idle {
            let Some(up) = self.upstreams.get(key) else {
                continue;
            };
            if up.owner == Owner::Idle {
                let due = up.idle_since + POOL_IDLE;
                if due <= now {
                    self.close_upstream(key);
                } else {
                    upd(due);
                }
            }
        }
        let keys: Vec<Key> = self.clients.keys().collect();
        for key in keys {
            if let Some(due) = self.client_deadline(key) {
                if due <= now {
                    self.on_client_deadline(key, now);
                    // A deadline may have queued a response (408): write it now.
                    self.drive(key, now);
                    if let Some(again) = self.client_deadline(key) {
                        upd(again.max(now + SWEEP_MIN_GAP));
                    }
                } else {
                    upd(due);
                }
            }
        }
        for due in self.probe_deadlines() {
            upd(due);
        }
        self.next_sweep = next.map(|t| t.max(now + SWEEP_MIN_GAP));
    }

    fn client_deadline(&self, key: Key) -> Option<Instant> {
        let c = self.clients.get(key)?;
        match &c.phase {
            ClientPhase::ReadingHead if c.inbuf.is_empty() && c.heads == 0 => {
                Some(c.since + self.settings.idle_timeout.min(self.settings.header_timeout).min(FIRST_BYTE_TIMEOUT))
            }
            ClientPhase::ReadingHead if c.inbuf.is_empty() => Some(c.since + self.settings.idle_timeout),
            ClientPhase::ReadingHead => Some(c.since + self.settings.header_timeout),
            ClientPhase::Closing => Some(c.since + LINGER),
            ClientPhase::Waiting { .. } => Some(c.since + DISK_WAIT),
            ClientPhase::Exchange(ex) => match &ex.attempt {
                Some(a) => Some(a.deadline),
                // Waiting for the rest of the body before an attempt could start.
                None => Some(c.since + self.settings.idle_timeout),
            },
        }
    }

    fn on_client_deadline(&mut self, key: Key, now: Instant) {
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        match &c.phase {
            ClientPhase::ReadingHead if c.inbuf.is_empty() => self.close_client(key, now),
            ClientPhase::ReadingHead => {
                self.stats.bad_requests += 1;
                log::info!("client {}: request head not complete within --header-timeout -> 408", c.peer);
                self.respond_local_error(key, 408, "request head not received in time", now);
            }
            ClientPhase::Closing => self.close_client(key, now),
            ClientPhase::Waiting { .. } => {
                log::warn!("client {}: the config was not read within {DISK_WAIT:?} -> 503", c.peer);
                self.respond_local_error(key, 503, "the proxy could not read its config in time", now);
            }
            ClientPhase::Exchange(_) => self.on_exchange_deadline(key, now),
        }
    }
}
