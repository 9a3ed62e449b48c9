//! Commands that talk to the running proxy (found through `$QCC_HOME/proxy.pid`):
//! `proxy status`, `proxy stop`, `proxy logs`, `queue status`, `queue clear`, `health status`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::pidfile::{self, PidInfo};

const TIMEOUT: Duration = Duration::from_secs(5);

fn running(home: &Path) -> Result<PidInfo> {
    pidfile::running(home)?.ok_or_else(|| {
        Error::NotRunning(format!(
            "qcc proxy is not running (no live process in {})",
            pidfile::pid_path(home).display()
        ))
    })
}

/// The access key a local client must present, when the proxy was given one.
pub fn access_key(home: &Path) -> Option<String> {
    if let Ok(k) = std::env::var("QCC_ACCESS_KEY") {
        if !k.is_empty() {
            return Some(k);
        }
    }
    let k = crate::store::fsutil::read_text(&home.join("access_key")).ok()?;
    let k = k.trim();
    (!k.is_empty()).then(|| k.to_string())
}

/// The key a Claude Code process the launcher starts (or `qcc env`/`qcc proxy use` sets up)
/// presents: `QCC_CLIENT_KEY` (a person's client key, `qcc key add`), else the access key, else
/// the `proxy-managed` placeholder (a loopback proxy without keys takes any). With client keys
/// defined here and none of those, the placeholder would be refused: said once on stderr.
/// What a Claude Code presents when the proxy wants no key: a placeholder the proxy replaces.
pub const PLACEHOLDER: &str = "proxy-managed";

pub fn launch_key(home: &Path) -> String {
    if let Some(k) = std::env::var("QCC_CLIENT_KEY").ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()) {
        return k;
    }
    if let Some(k) = access_key(home) {
        return k;
    }
    let keys = crate::store::keys::KeyFile::load(&crate::store::keys::path(home)).unwrap_or_default();
    if !keys.keys.is_empty() {
        eprintln!(
            "qcc: warning: this proxy needs a key (client keys exist): set QCC_CLIENT_KEY to yours (`qcc key add NAME`) \
             or give the proxy an access key"
        );
    }
    PLACEHOLDER.to_string()
}

/// One request to the running proxy's `/_qcc/` API; returns the parsed JSON body.
pub(super) fn call(home: &Path, method: &str, path: &str) -> Result<(PidInfo, Value)> {
    let info = running(home)?;
    let base = info.base_url();
    let hostport = base.trim_start_matches("http://");
    let fail = |what: String| Error::Failed(format!("cannot reach qcc proxy at {base}: {what}"));
    let mut auth = access_key(home).map(|k| format!("x-api-key: {k}\r\n")).unwrap_or_default();
    if let Some(t) = &info.control_token {
        auth.push_str(&format!("x-qcc-control: {t}\r\n"));
    }
    if method == "POST" {
        auth.push_str("x-qcc-action: 1\r\n");
    }
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let target = super::client::Target { host: info.local_host(), port: info.port, tls: None, timeout: TIMEOUT };
    let reply = super::client::send(&target, req.as_bytes(), 16 * 1024 * 1024).map_err(fail)?;
    if reply.status != 200 {
        // It was reached: say what it said (a refused reload is not an unreachable proxy).
        let msg = reply.error_message().unwrap_or_else(|| "error".into());
        let status = reply.status;
        return Err(Error::Failed(format!("qcc proxy at {base} refused: HTTP {status}: {}", crate::mask::clean(&msg))));
    }
    let body: Value = serde_json::from_slice(&reply.body).map_err(|e| fail(format!("bad JSON: {e}")))?;
    Ok((info, body))
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A value of the proxy's JSON as a table cell: strings that came from outside (reasons, model
/// names, ids) with their control characters escaped (`mask::clean`).
fn u(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) => crate::mask::clean(s).into_owned(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// The running proxy of this state dir and the cluster it serves, if one answers.
pub fn serving(home: &Path) -> Option<(PidInfo, String)> {
    let (info, s) = call(home, "GET", "/_qcc/status").ok()?;
    let cluster = s.get("cluster")?.as_str()?.to_string();
    Some((info, cluster))
}

/// A running proxy of this state dir has taken a change of the keys file: waits (bounded, 3 s)
/// until `taken` says so of its status JSON's `keys` table, so that a script's next request
/// meets the change (`KEY=$(qcc key add bob); curl …`). True when it has, or no proxy runs.
pub fn keys_taken(home: &Path, taken: impl Fn(&[Value]) -> bool) -> bool {
    let Ok(Some(_)) = pidfile::running(home) else { return true };
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let rows = call(home, "GET", "/_qcc/status").ok().and_then(|(_, s)| s.get("keys")?.as_array().cloned());
        match rows {
            Some(rows) if taken(&rows) => return true,
            None => return true, // (no answer: nothing to wait for)
            Some(_) if Instant::now() >= deadline => return false,
            Some(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}

/// Usage as the running proxy counts it now (`/_qcc/usage`), when one answers.
pub fn usage_live(home: &Path, days: usize) -> Option<crate::store::usage::UsageFile> {
    let (_, v) = call(home, "GET", &format!("/_qcc/usage?days={days}")).ok()?;
    serde_json::from_value(v).ok()
}

/// What the running proxy knows of a Claude Code session (`qcc statusline`).
pub fn session(home: &Path, id: &str) -> Result<Value> {
    Ok(call(home, "GET", &format!("/_qcc/session?id={id}"))?.1)
}

/// The running proxy's status document.
pub fn status_json(home: &Path) -> Result<Value> {
    Ok(call(home, "GET", "/_qcc/status")?.1)
}

/// The running proxy's uptime in seconds, when it answers.
pub fn uptime(home: &Path) -> Option<u64> {
    call(home, "GET", "/_qcc/status").ok()?.1.get("uptime_secs")?.as_u64()
}

pub fn proxy_status(home: &Path, json: bool) -> Result<()> {
    let (info, s) = call(home, "GET", "/_qcc/status")?;
    if json {
        print_json(&s);
        return Ok(());
    }
    println!("qcc proxy {} running, pid {}, {}", u(&s, "/version"), info.pid, info.base_url());
    println!("cluster: {}   strategy: {}   uptime: {}s", u(&s, "/cluster"), u(&s, "/strategy"), u(&s, "/uptime_secs"));
    println!(
        "requests: total {}, successful {}, failed {}, aborted {}, rejected {}, retries {}, in flight {}",
        u(&s, "/requests/total"),
        u(&s, "/requests/successful"),
        u(&s, "/requests/failed"),
        u(&s, "/requests/aborted"),
        u(&s, "/requests/rejected"),
        u(&s, "/requests/retries"),
        u(&s, "/requests/in_flight"),
    );
    print_clusters(&s);
    println!();
    print_health(&s);
    print_headroom(&s);
    println!();
    print_queue(&s);
    Ok(())
}

/// The served clusters, when there are several: each one's routes, chain and what it served.
fn print_clusters(s: &Value) {
    let list = s["clusters"].as_array().map_or(&[][..], Vec::as_slice);
    if list.len() < 2 {
        return;
    }
    println!();
    for c in list {
        let started = if c["started"] == true { " (started for)" } else { "" };
        println!(
            "cluster {}{started}: {} of {} endpoints usable, served {} ({} via a fallback)",
            crate::mask::clean(&u(c, "/name")),
            u(c, "/usable"),
            u(c, "/endpoints"),
            u(c, "/served"),
            u(c, "/fell_back")
        );
        for r in c["routes"].as_array().into_iter().flatten() {
            let line = format!("  route {}: {} -> {}", u(r, "/n"), u(r, "/rule"), u(r, "/to"));
            println!("{}", crate::mask::clean(&line));
        }
        let chain: Vec<String> =
            c["chain"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).map(String::from).collect();
        if !chain.is_empty() {
            println!("  fallback: {}", crate::mask::clean(&chain.join(" -> ")));
        }
    }
}

pub fn health_status(home: &Path, json: bool) -> Result<()> {
    let (_, s) = call(home, "GET", "/_qcc/status")?;
    if json {
        print_json(&serde_json::json!({"cluster": s["cluster"], "endpoints": s["endpoints"]}));
        return Ok(());
    }
    print_health(&s);
    Ok(())
}

pub fn queue_status(home: &Path, json: bool) -> Result<()> {
    let (_, s) = call(home, "GET", "/_qcc/status")?;
    if json {
        print_json(&s["failure_queue"]);
        return Ok(());
    }
    print_queue(&s);
    Ok(())
}

/// Empty the running proxy's queue, or the file when no proxy runs.
pub fn queue_clear(home: &Path) -> Result<()> {
    match call(home, "POST", "/_qcc/queue/clear") {
        Ok((_, v)) => {
            println!("cleared {} endpoints from the running proxy's failure queue", u(&v, "/cleared"));
            Ok(())
        }
        Err(Error::NotRunning(_)) => {
            let path = home.join("failure_endpoints.json");
            // Loading drops the queued ids (as at proxy start) and keeps the counters.
            let (mut q, warning) = crate::policy::failure_queue::FailureQueue::load(&path);
            if let Some(w) = warning {
                return Err(Error::Failed(w));
            }
            let n = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["failed_endpoints"].as_array().map(Vec::len))
                .unwrap_or(0);
            q.save(&path, std::time::SystemTime::now())
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
            println!("proxy not running; cleared {n} endpoints from {}", path.display());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn print_health(s: &Value) {
    println!(
        "{:<20} {:<10} {:<9} {:>4} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9}  URL",
        "ENDPOINT", "ID", "STATUS", "PRIO", "FAILS", "REQS", "FAILED", "SUCCESS%", "AVG_MS", "IN_FLIGHT"
    );
    // Several clusters: each endpoint named with its cluster ("cheap/c1").
    let several = s["clusters"].as_array().is_some_and(|l| l.len() > 1);
    for ep in s["endpoints"].as_array().into_iter().flatten() {
        // No request yet: no success rate to speak of.
        let success = if ep["health"]["total_requests"] == 0 { "-".to_string() } else { u(ep, "/health/success_rate") };
        let name = match several {
            true => crate::mask::clean(&format!("{}/{}", u(ep, "/cluster"), u(ep, "/name"))).into_owned(),
            false => u(ep, "/name"),
        };
        println!(
            "{:<20} {:<10} {:<9} {:>4} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9}  {}{}",
            name,
            u(ep, "/id"),
            u(ep, "/health/status"),
            u(ep, "/priority"),
            u(ep, "/health/consecutive_failures"),
            u(ep, "/health/total_requests"),
            u(ep, "/health/failed_requests"),
            success,
            u(ep, "/health/avg_response_time"),
            u(ep, "/health/in_flight"),
            u(ep, "/base_url"),
            if ep["enabled"] == Value::Bool(false) { "  (disabled)" } else { "" },
        );
    }
}

/// What each endpoint last said of its rate limits (only endpoints that said anything).
fn print_headroom(s: &Value) {
    for ep in s["endpoints"].as_array().into_iter().flatten() {
        let Some(dims) = ep["headroom"]["dimensions"].as_object().filter(|d| !d.is_empty()) else { continue };
        let parts: Vec<String> = dims
            .iter()
            .map(|(dim, w)| format!("{dim} {}/{} until {}", u(w, "/remaining"), u(w, "/limit"), u(w, "/reset")))
            .collect();
        let blocked = ep["headroom"]["blocked_secs"]
            .as_u64()
            .map(|s| format!("  (used up: skipped for {s}s)"))
            .unwrap_or_default();
        println!("rate limit {}: {}{blocked}", u(ep, "/name"), parts.join(", "));
    }
}

fn print_queue(s: &Value) {
    let q = &s["failure_queue"];
    println!(
        "failure queue: {} endpoints  (total_failed {}, total_verified {}, total_recovered {}, total_still_failed {})",
        u(q, "/failed_endpoints_count"),
        u(q, "/stats/total_failed"),
        u(q, "/stats/total_verified"),
        u(q, "/stats/total_recovered"),
        u(q, "/stats/total_still_failed"),
    );
    for id in q["failed_endpoints"].as_array().into_iter().flatten() {
        let id = id.as_str().unwrap_or("?");
        let name = s["endpoints"].as_array().into_iter().flatten().find(|e| e["id"] == id).map(|e| u(e, "/name"));
        match name {
            Some(n) => println!("  {n} ({})", crate::mask::clean(id)),
            None => println!("  {}", crate::mask::clean(id)),
        }
    }
}

/// SIGTERM the running proxy and wait (up to `timeout`) until it has exited.
pub fn proxy_stop(home: &Path, timeout: Duration) -> Result<()> {
    let info = running(home)?;
    let pid = libc::pid_t::try_from(info.pid).map_err(|_| Error::Failed(format!("bad pid {}", info.pid)))?;
    // SAFETY: sending SIGTERM to the pid our own pid file names, just checked alive.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(Error::io(format!("cannot signal pid {pid}"), std::io::Error::last_os_error()));
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !pidfile::process_alive(info.pid) {
            println!("qcc proxy (pid {pid}) stopped");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::Failed(format!(
        "qcc proxy (pid {pid}) is still running {}s after SIGTERM (it drains in-flight requests first)",
        timeout.as_secs()
    )))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Print the last `n` lines of the log; with `follow`, keep printing new lines until Ctrl-C.
pub fn proxy_logs(home: &Path, n: usize, follow: bool) -> Result<()> {
    let path = crate::logging::log_path(home);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Failed(format!(
                "{}: no log yet (the proxy has not run with this QCC_HOME)",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let lines = if lines.last().is_some_and(|l| l.is_empty()) { &lines[..lines.len() - 1] } else { &lines[..] };
    let mut out = std::io::stdout().lock();
    for line in &lines[lines.len().saturating_sub(n)..] {
        let _ = out.write_all(line);
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
    if !follow {
        return Ok(());
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_interrupt as *const () as libc::sighandler_t);
    }
    let mut pos = text.len() as u64;
    let mut buf = Vec::new();
    while !INTERRUPTED.load(Ordering::Relaxed) {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(pos);
        if len < pos {
            pos = 0; // truncated or rotated: start over
        }
        if len > pos {
            buf.clear();
            if file.seek(SeekFrom::Start(pos)).is_ok() && file.read_to_end(&mut buf).is_ok() {
                pos += buf.len() as u64;
                let _ = out.write_all(&buf);
                let _ = out.flush();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// `POST /_qcc/reload`: what changed, as one phrase.
pub fn reload(home: &Path) -> Result<String> {
    let (_, v) = call(home, "POST", "/_qcc/reload")?;
    Ok(format!("{} added, {} changed, {} removed", u(&v, "/added"), u(&v, "/changed"), u(&v, "/removed")))
}

pub fn proxy_reload(home: &Path) -> Result<()> {
    let info = running(home)?;
    let summary = reload(home)?;
    println!("qcc proxy (pid {}) reloaded its cluster: {summary}", info.pid);
    Ok(())
}

/// Ask the running proxy to probe (`query`: "", "?queued=1" or "?endpoint=ID"), wait (bounded)
/// until those probes have finished, and return their history events.
fn probe_now(home: &Path, query: &str) -> Result<Vec<Value>> {
    let (_, v) = call(home, "POST", &format!("/_qcc/probe{query}"))?;
    let ids: Vec<String> =
        v["probing"].as_array().into_iter().flatten().filter_map(|i| i.as_str().map(String::from)).collect();
    // Only what the probes started now found (times are the proxy's, ISO, comparable as text).
    let at = v["at"].as_str().unwrap_or("").to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let (_, s) = call(home, "GET", "/_qcc/status")?;
        let busy = s["endpoints"].as_array().into_iter().flatten().any(|e| {
            e["probing"] == Value::Bool(true) && e["id"].as_str().is_some_and(|id| ids.iter().any(|i| i == id))
        });
        if !busy {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, h) = call(home, "GET", "/_qcc/history?n=500")?;
    let (_, s) = call(home, "GET", "/_qcc/status")?;
    let name_of = |id: &str| {
        s["endpoints"].as_array().into_iter().flatten().find(|e| e["id"] == id).and_then(|e| e["name"].as_str())
    };
    let mut last: Vec<Value> = Vec::new();
    for id in &ids {
        if let Some(e) = h.as_array().into_iter().flatten().rev().find(|e| {
            e["endpoint"].as_str() == Some(id)
                && e["event"].as_str().is_some_and(|k| k.starts_with("probe_"))
                && e["time"].as_str().is_some_and(|t| t >= at.as_str())
        }) {
            let mut e = e.clone();
            e["name"] = Value::from(name_of(id).unwrap_or(id));
            last.push(e);
        }
    }
    Ok(last)
}

fn print_probes(results: &[Value], json: bool) -> Result<()> {
    if json {
        print_json(&Value::Array(results.to_vec()));
    } else if results.is_empty() {
        println!("nothing to probe");
    } else {
        for e in results {
            let ok = e["event"] == "probe_ok";
            println!(
                "{:<20} {:<7} {}  {}",
                u(e, "/name"),
                if ok { "ok" } else { "FAILED" },
                u(e, "/time"),
                u(e, "/detail")
            );
        }
    }
    if results.iter().any(|e| e["event"] != "probe_ok") {
        return Err(Error::Silent(1));
    }
    Ok(())
}

/// `qcc health check`: the running proxy probes every endpoint now.
pub fn health_check(home: &Path, json: bool) -> Result<()> {
    print_probes(&probe_now(home, "")?, json)
}

/// `qcc queue retry ID` / `retry-all`: probe queued endpoints now; restored on success.
pub fn queue_retry(home: &Path, which: Option<&str>) -> Result<()> {
    let mut id = None;
    if let Some(w) = which {
        let (_, s) = call(home, "GET", "/_qcc/status")?;
        let found = endpoint_id(&s, w);
        let queued = found
            .as_deref()
            .is_some_and(|i| s["failure_queue"]["failed_endpoints"].as_array().into_iter().flatten().any(|q| q == i));
        if !queued {
            return Err(Error::Invalid(format!("endpoint {} is not in the failure queue", crate::mask::clean(w))));
        }
        id = found;
    }
    let query = match id.as_deref() {
        Some(id) => format!("?endpoint={id}&queued=1"),
        None => "?queued=1".to_string(),
    };
    print_probes(&probe_now(home, &query)?, false)
}

/// The id of the running proxy's endpoint that `which` names (its id or its name).
fn endpoint_id(status: &Value, which: &str) -> Option<String> {
    let eps = || status["endpoints"].as_array().into_iter().flatten();
    eps()
        .find(|e| e["id"] == which)
        .or_else(|| eps().find(|e| e["name"] == which))
        .and_then(|e| e["id"].as_str().map(str::to_string))
}

/// `qcc queue list`: each queued endpoint with why, since when and the next check.
pub fn queue_list(home: &Path, json: bool) -> Result<()> {
    let (_, s) = call(home, "GET", "/_qcc/status")?;
    let details = &s["failure_queue"]["details"];
    if json {
        print_json(details);
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:<26} {:<26} {:>10}  {:<40} URL",
        "ENDPOINT", "ID", "QUEUED SINCE", "LAST CHECK", "NEXT IN", "REASON"
    );
    for d in details.as_array().into_iter().flatten() {
        println!(
            "{:<20} {:<10} {:<26} {:<26} {:>9}s  {:<40} {}",
            u(d, "/name"),
            u(d, "/id"),
            u(d, "/since"),
            u(d, "/last_check"),
            u(d, "/next_check_in_secs"),
            u(d, "/reason"),
            u(d, "/base_url")
        );
    }
    Ok(())
}

/// `qcc health metrics [ID]`: upstream time to first byte and success rate per endpoint.
pub fn health_metrics(home: &Path, id: Option<&str>, json: bool) -> Result<()> {
    let (_, s) = call(home, "GET", "/_qcc/status")?;
    let eps: Vec<Value> = s["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| id.is_none_or(|i| e["id"].as_str() == Some(i) || e["name"].as_str() == Some(i)))
        .map(|e| {
            serde_json::json!({"name": e["name"], "id": e["id"], "latency_ms": e["latency_ms"], "success_rate": e["health"]["success_rate"],
                "total_requests": e["health"]["total_requests"], "failed_requests": e["health"]["failed_requests"]})
        })
        .collect();
    if let (Some(i), true) = (id, eps.is_empty()) {
        return Err(Error::Invalid(format!("no endpoint '{i}' in the running proxy's cluster")));
    }
    if json {
        print_json(&Value::Array(eps));
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8}",
        "ENDPOINT", "ID", "P50_MS", "P95_MS", "P99_MS", "SAMPLES", "SUCCESS%", "REQS"
    );
    for e in &eps {
        println!(
            "{:<20} {:<10} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8}",
            u(e, "/name"),
            u(e, "/id"),
            u(e, "/latency_ms/p50"),
            u(e, "/latency_ms/p95"),
            u(e, "/latency_ms/p99"),
            u(e, "/latency_ms/samples"),
            if e["total_requests"] == 0 { "-".to_string() } else { u(e, "/success_rate") },
            u(e, "/total_requests")
        );
    }
    Ok(())
}

/// `qcc health history [ID] [-n N]`: the last events of the running proxy's endpoints.
pub fn health_history(home: &Path, id: Option<&str>, n: usize, json: bool) -> Result<()> {
    let query = match id {
        Some(id) => format!("/_qcc/history?endpoint={id}&n={n}"),
        None => format!("/_qcc/history?n={n}"),
    };
    let (_, h) = call(home, "GET", &query)?;
    if json {
        print_json(&h);
        return Ok(());
    }
    for e in h.as_array().into_iter().flatten() {
        println!("{}  {:<10} {:<13} {}", u(e, "/time"), u(e, "/endpoint"), u(e, "/event"), u(e, "/detail"));
    }
    Ok(())
}

/// `qcc health config`: the running proxy's effective intervals and limits.
pub fn health_config(home: &Path, json: bool) -> Result<()> {
    let (_, s) = call(home, "GET", "/_qcc/status")?;
    let mut settings = s["settings"].clone();
    if let Some(o) = settings.as_object_mut() {
        o.insert("strategy".into(), s["strategy"].clone());
        o.insert("affinity".into(), s["affinity"].clone());
    }
    if json {
        print_json(&settings);
        return Ok(());
    }
    for (k, v) in settings.as_object().into_iter().flatten() {
        println!("{k:<26} {v}");
    }
    Ok(())
}
