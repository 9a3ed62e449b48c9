//! `qcc health test`: one real probe request per endpoint (the request the recovery probe
//! sends), concurrently, each bounded by its endpoint's timeout; no proxy needed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::cluster::EndpointConfig;
use crate::store::config::ConfigFile;
use crate::store::url::Scheme;

/// The model of the probe request unless one is given (the proxy's `--probe-model` default too).
/// A current small model.
pub const DEFAULT_PROBE_MODEL: &str = "claude-haiku-4-5";

/// The verdict on one endpoint.
pub struct Verdict {
    pub status: Option<u16>,
    pub latency_ms: u128,
    pub reason: String,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.status == Some(200)
    }
}

/// One probe per endpoint, concurrently (a thread each), each within its endpoint's timeout.
pub fn probe_all(eps: &[EndpointConfig], model: &str) -> Vec<Verdict> {
    let mut tls = crate::proxy::TlsConfigs::default();
    let handles: Vec<_> = eps
        .iter()
        .map(|ep| {
            // The endpoint's own probe model, else its mapping of `model`.
            let own =
                ep.probe_model.clone().or_else(|| crate::store::models::map(&ep.model_map, model).map(str::to_string));
            let (ep, model) = (ep.clone(), own.unwrap_or_else(|| model.to_string()));
            let config = match ep.url.scheme {
                Scheme::Http => Ok(None),
                Scheme::Https => {
                    let extra: Vec<&std::path::Path> = ep.ca_file.as_deref().into_iter().collect();
                    tls.get(&extra).map(Some)
                }
            };
            std::thread::spawn(move || match config {
                Ok(config) => probe(&ep, config, &model),
                Err(e) => Verdict { status: None, latency_ms: 0, reason: e },
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or(Verdict { status: None, latency_ms: 0, reason: "probe thread failed".into() }))
        .collect()
}

pub fn health_test(cluster: Option<&str>, id: Option<&str>, json_out: bool, model: Option<&str>) -> Result<()> {
    let config = ConfigFile::load_user()?;
    let name = match cluster.or(config.default_profile()) {
        Some(n) => n.to_string(),
        None => return Err(Error::Usage("`qcc health test` needs a CLUSTER (there is no default profile)".into())),
    };
    let cluster = config.cluster(&name)?;
    // (an endpoint by name or by id)
    let eps: Vec<EndpointConfig> =
        cluster.endpoints.into_iter().filter(|e| id.is_none_or(|i| e.id == i || e.name == i)).collect();
    if eps.is_empty() {
        return Err(Error::Invalid(format!("no endpoint '{}' in '{name}'", id.unwrap_or(""))));
    }
    // The proxy's own default probe model, unless given.
    let model =
        model.map(str::to_string).unwrap_or_else(|| config.test_model().unwrap_or(DEFAULT_PROBE_MODEL).to_string());
    let verdicts = probe_all(&eps, &model);
    let ok = Verdict::ok;
    if json_out {
        let list: Vec<Value> = eps
            .iter()
            .zip(&verdicts)
            .map(|(ep, v)| {
                json!({"id": ep.id, "name": ep.name, "base_url": ep.url.to_string(), "ok": ok(v), "status": v.status,
                       "latency_ms": v.latency_ms, "reason": v.reason})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(list)).unwrap_or_default());
    } else {
        println!("{:<20} {:<7} {:>6} {:>10}  {:<40} URL", "ENDPOINT", "VERDICT", "HTTP", "LATENCY_MS", "REASON");
        for (ep, v) in eps.iter().zip(&verdicts) {
            println!(
                "{:<20} {:<7} {:>6} {:>10}  {:<40} {}",
                crate::mask::clean(&ep.name),
                if ok(v) { "ok" } else { "FAILED" },
                v.status.map_or("-".to_string(), |s| s.to_string()),
                v.latency_ms,
                crate::mask::clean(&v.reason),
                ep.url
            );
        }
        for (ep, _) in eps.iter().zip(&verdicts).filter(|(_, v)| model_unknown(v)) {
            eprintln!(
                "qcc: hint: {} does not know the model it was asked for (at {}); name one it serves: \
                 qcc endpoint set CLUSTER {} --model-map 'claude-*=MODEL'",
                crate::mask::clean(&ep.name),
                crate::mask::mask_url(&probe_url(ep)),
                crate::mask::clean(&ep.name)
            );
        }
    }
    if verdicts.iter().all(ok) {
        Ok(())
    } else {
        Err(Error::Silent(1))
    }
}

/// A refusal that says the provider does not know the model asked for (so `--model-map` is the
/// fix, not the key or the URL).
pub fn model_unknown(v: &Verdict) -> bool {
    let r = v.reason.to_ascii_lowercase();
    v.status.is_some_and(|s| (400..500).contains(&s))
        && r.contains("model")
        && ["not found", "not exist", "unknown", "invalid", "not supported", "no such", "does not"]
            .iter()
            .any(|w| r.contains(w))
}

/// The URL a probe of `ep` went to (said beside a refusal).
pub fn probe_url(ep: &EndpointConfig) -> String {
    let path = crate::translate::upstream_path(&ep.format).unwrap_or("/v1/messages");
    format!("{}{path}", ep.url)
}

fn probe(ep: &EndpointConfig, tls: Option<Arc<rustls::ClientConfig>>, model: &str) -> Verdict {
    let started = Instant::now();
    let target = super::client::Target {
        host: &ep.url.host,
        port: ep.url.port,
        tls,
        timeout: Duration::from_secs(ep.timeout_secs.max(1)),
    };
    // An error's message is in its body; a 200's body is not needed beyond a little.
    let reply = super::client::send(&target, &crate::proxy::probe_request(ep, model), 64 * 1024);
    let latency_ms = started.elapsed().as_millis();
    match reply {
        Ok(r) if r.status == 200 => Verdict { status: Some(200), latency_ms, reason: "answered".into() },
        Ok(r) => Verdict {
            status: Some(r.status),
            latency_ms,
            reason: r.error_message().unwrap_or_else(|| format!("HTTP {}", r.status)),
        },
        Err(e) => Verdict { status: None, latency_ms, reason: e },
    }
}
