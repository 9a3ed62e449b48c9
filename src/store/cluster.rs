//! A cluster as qcc serves it, read from the Python qcc's config shape: each endpoint's fields
//! (`EndpointConfig`), and the cluster's rules: `RetryOn`, which upstream statuses fail over (a
//! status in it is the endpoint's failure, blamed and retried elsewhere; any other is the
//! upstream's answer to the request, relayed as is), and `Strategy`, how an endpoint is picked.
//! These are data every layer above reads (the CLI, the policies, the proxy), so they live here.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::store::names::{check_id, check_name, fnv_id};
use crate::store::url::BaseUrl;

/// The longest duration qcc accepts from a file or a flag (a day): every deadline made from one
/// stays far inside what `Instant + Duration` can represent.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// One endpoint as the proxy uses it (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// 8 hex characters.
    pub id: String,
    /// What people call it (`metadata.name`, where the Python qcc keeps what it does not know;
    /// when absent, the URL's host, made unique in the cluster). Unique in its cluster.
    pub name: String,
    pub url: BaseUrl,
    /// Empty: forward the client's own credentials untouched (the built-in default endpoint).
    pub api_key: String,
    pub weight: u32,
    pub priority: u32,
    pub enabled: bool,
    pub max_failures: u32,
    pub timeout_secs: u64,
    /// Extra trusted CA (PEM) for this endpoint, field `ca_file`.
    pub ca_file: Option<PathBuf>,
    /// The request's model renamed for this endpoint (`metadata.model_map`).
    pub model_map: Vec<crate::store::models::ModelRule>,
    /// The model of this endpoint's recovery probe (`metadata.probe_model`).
    pub probe_model: Option<String>,
    /// What it speaks (`metadata.format`, with `metadata.max_tokens_field` and
    /// `metadata.reasoning_effort` for an OpenAI-format one).
    pub format: Format,
    /// What it may be given (`metadata.rpm`, `.tpm`, `.concurrent`): a skip at the cap.
    pub caps: Caps,
    /// What it is not sent (`metadata.rules`: by hand or a preset), and what its refusals taught
    /// (`metadata.learned_rules`): `store/rules.rs`.
    pub rules: crate::store::rules::Rules,
    pub learned: crate::store::rules::Rules,
}

/// An endpoint's caps: requests a minute, tokens a minute, requests at once (`None`: no cap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub concurrent: Option<u32>,
}

impl Caps {
    pub const FIELDS: [&'static str; 3] = ["rpm", "tpm", "concurrent"];

    fn from_meta(meta: Option<&Value>) -> Result<Caps, String> {
        let field = |name: &str| -> Result<Option<u64>, String> {
            match meta.and_then(|m| m.get(name)) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .map(Some)
                    .ok_or(format!("\"metadata.{name}\" is not a whole number of at least 1")),
            }
        };
        let concurrent = field("concurrent")?.map(|c| u32::try_from(c).unwrap_or(u32::MAX));
        Ok(Caps { rpm: field("rpm")?, tpm: field("tpm")?, concurrent })
    }

    /// `{"rpm", "tpm", "concurrent"}` (a missing cap as null), or null without any.
    pub fn to_json(self) -> Value {
        if self == Caps::default() {
            return Value::Null;
        }
        serde_json::json!({"rpm": self.rpm, "tpm": self.tpm, "concurrent": self.concurrent})
    }
}

/// `--rpm`, `--tpm`, `--concurrent` as given (`Some(None)`: `none`, the cap removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapsChange(pub Vec<(&'static str, Option<u64>)>);

impl CapsChange {
    /// The fields of `Caps::FIELDS` as `get` gives them: a whole number of at least 1, or none.
    pub fn from_fields(get: impl Fn(&str) -> Option<String>) -> Result<CapsChange, String> {
        let mut out = Vec::new();
        for f in Caps::FIELDS {
            let Some(v) = get(f).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else { continue };
            let n = match v.as_str() {
                "none" => None,
                _ => Some(v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    format!("--{f} {:?}: give a whole number of at least 1, or none", crate::mask::clean(&v))
                })?),
            };
            out.push((f, n));
        }
        Ok(CapsChange(out))
    }

    /// Write into an endpoint's `metadata`.
    pub fn apply(&self, meta: &mut Map<String, Value>) {
        for (f, n) in &self.0 {
            match n {
                Some(n) => meta.insert(f.to_string(), Value::from(*n)),
                None => meta.remove(*f),
            };
        }
    }
}

/// The API an endpoint speaks: Anthropic's Messages (forwarded as it comes), or OpenAI's Chat
/// Completions (translated both ways, `src/translate/`), with what such an endpoint takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Anthropic,
    OpenAi {
        /// The limit goes as `max_completion_tokens` (else `max_tokens`).
        max_completion_tokens: bool,
        /// `thinking` goes as `reasoning_effort` (else it is left out).
        reasoning_effort: bool,
    },
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Anthropic => "anthropic",
            Format::OpenAi { .. } => "openai",
        }
    }

    pub fn is_openai(self) -> bool {
        matches!(self, Format::OpenAi { .. })
    }

    /// `--format`'s value: "anthropic" or "openai".
    pub fn check_name(name: &str) -> Result<(), String> {
        match name {
            "anthropic" | "openai" => Ok(()),
            other => Err(format!("format {:?}: give anthropic or openai", crate::mask::clean(other))),
        }
    }

    /// `--max-tokens-field`'s value.
    pub fn check_max_tokens_field(name: &str) -> Result<(), String> {
        match name {
            "max_tokens" | "max_completion_tokens" => Ok(()),
            other => Err(format!(
                "max tokens field {:?}: give max_tokens or max_completion_tokens",
                crate::mask::clean(other)
            )),
        }
    }

    /// An endpoint's format from its `metadata`.
    fn from_meta(meta: Option<&Value>) -> Result<Format, String> {
        let field = |name: &str| meta.and_then(|m| m.get(name)).filter(|v| !v.is_null());
        let name = match field("format") {
            None => "anthropic",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err("\"metadata.format\" is not a string".into()),
        };
        Format::check_name(name)?;
        if name == "anthropic" {
            return Ok(Format::Anthropic);
        }
        let max_completion_tokens = match field("max_tokens_field") {
            None => false,
            Some(Value::String(s)) => {
                Format::check_max_tokens_field(s)?;
                s == "max_completion_tokens"
            }
            Some(_) => return Err("\"metadata.max_tokens_field\" is not a string".into()),
        };
        let reasoning_effort = match field("reasoning_effort") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("\"metadata.reasoning_effort\" is not true or false".into()),
        };
        Ok(Format::OpenAi { max_completion_tokens, reasoning_effort })
    }
}

impl EndpointConfig {
    /// It has no key of its own: the client's own credential goes through (`--pass-through`, and
    /// the built-in default endpoint).
    pub fn passes_through(&self) -> bool {
        self.api_key.is_empty()
    }

    /// Its request rules, by hand or preset and learned together (`store/rules.rs`): it has any.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty() || !self.learned.is_empty()
    }

    /// A top-level field it is not sent.
    pub fn drops_field(&self, name: &str) -> bool {
        self.rules.drops_field(name) || self.learned.drops_field(name)
    }

    /// An `anthropic-beta` value it is not sent.
    pub fn drops_beta(&self, value: &str) -> bool {
        self.rules.drops_beta(value) || self.learned.drops_beta(value)
    }

    /// It is not sent some `anthropic-beta` values.
    pub fn drops_betas(&self) -> bool {
        !self.rules.drop_betas.is_empty() || !self.learned.drop_betas.is_empty()
    }

    /// What adaptive thinking becomes for it (a learned rule over a written one).
    pub fn adaptive_thinking(&self) -> Option<crate::store::rules::AdaptiveThinking> {
        self.learned.adaptive_thinking.or(self.rules.adaptive_thinking)
    }

    /// The top-level field `output_config.effort` moves to for it.
    pub fn effort_to(&self) -> Option<&str> {
        self.rules.effort_to.as_deref().or(self.learned.effort_to.as_deref())
    }

    /// `output_config.effort` is taken out for it (left out, or moved: `effort_to`).
    pub fn drops_effort(&self) -> bool {
        self.rules.drop_effort || self.learned.drop_effort || self.effort_to().is_some()
    }

    /// How log lines and messages name it: `name (id)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.id)
    }

    /// An endpoint with the Python package's defaults: priority 1, weight 100, enabled,
    /// 3 failures, 30 s.
    pub fn new(id: String, url: BaseUrl, api_key: &str) -> EndpointConfig {
        EndpointConfig {
            name: url.host.clone(),
            id,
            url,
            api_key: api_key.to_string(),
            weight: 100,
            priority: 1,
            enabled: true,
            max_failures: 3,
            timeout_secs: 30,
            ca_file: None,
            model_map: Vec::new(),
            probe_model: None,
            format: Format::Anthropic,
            caps: Caps::default(),
            rules: Default::default(),
            learned: Default::default(),
        }
    }
}

/// `--format`, `--max-tokens-field`, `--reasoning-effort` as given to `endpoint add`/`set`
/// (validated): what they write into the endpoint's `metadata`. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatChange {
    pub format: Option<String>,
    pub max_tokens_field: Option<String>,
    pub reasoning_effort: Option<bool>,
}

impl FormatChange {
    /// The fields named `format`, `max_tokens_field` and `reasoning_effort` (on/off, true/false)
    /// as `get` gives them (the CLI's flags, the dashboard's parameters), checked.
    pub fn from_fields(get: impl Fn(&str) -> Option<String>) -> Result<FormatChange, String> {
        let format = get("format").map(|f| f.trim().to_ascii_lowercase()).filter(|f| !f.is_empty());
        if let Some(f) = &format {
            Format::check_name(f)?;
        }
        let max_tokens_field = get("max_tokens_field").map(|f| f.trim().to_string()).filter(|f| !f.is_empty());
        if let Some(f) = &max_tokens_field {
            Format::check_max_tokens_field(f)?;
        }
        let reasoning_effort = match get("reasoning_effort").as_deref().map(str::trim) {
            None | Some("") => None,
            Some("on" | "true" | "yes") => Some(true),
            Some("off" | "false" | "no") => Some(false),
            Some(other) => return Err(format!("reasoning effort {:?}: give on or off", crate::mask::clean(other))),
        };
        Ok(FormatChange { format, max_tokens_field, reasoning_effort })
    }

    /// Write into an endpoint's `metadata` (format "anthropic" is the default: removed).
    pub fn apply(&self, meta: &mut Map<String, Value>) {
        match self.format.as_deref() {
            Some("anthropic") => {
                meta.remove("format");
            }
            Some(f) => {
                meta.insert("format".into(), Value::String(f.to_string()));
            }
            None => {}
        }
        if let Some(f) = &self.max_tokens_field {
            meta.insert("max_tokens_field".into(), Value::String(f.clone()));
        }
        if let Some(r) = self.reasoning_effort {
            meta.insert("reasoning_effort".into(), Value::Bool(r));
        }
    }
}

/// A cluster (a profile with `endpoints`) or a single-endpoint profile.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    pub endpoints: Vec<EndpointConfig>,
    /// The statuses that fail over (`retry_on` in the profile; default today's set).
    pub retry_on: RetryOn,
    /// The strategy stored for the cluster (`strategy` in the profile), when one is.
    pub strategy: Option<Strategy>,
    /// Where some of its requests go instead (`routes`; `routes.rs`), first match wins.
    pub routes: Vec<super::routes::Route>,
    /// The clusters that take a request none of its endpoints can (`fallback`), in order.
    pub fallback: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    PriorityFailover,
    Weighted,
    RoundRobin,
    Random,
    LeastConnections,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::PriorityFailover,
        Strategy::Weighted,
        Strategy::RoundRobin,
        Strategy::Random,
        Strategy::LeastConnections,
    ];

    /// Parses "priority_failover", "weighted", "round_robin", "random", "least_connections".
    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::PriorityFailover => "priority_failover",
            Strategy::Weighted => "weighted",
            Strategy::RoundRobin => "round_robin",
            Strategy::Random => "random",
            Strategy::LeastConnections => "least_connections",
        }
    }
}

/// A set of HTTP status codes (100-599), a bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn([u64; 10]);

/// Today's set: the statuses an endpoint answers when it, not the request, is the problem.
pub const DEFAULT_RETRY_ON: [u16; 8] = [500, 502, 503, 504, 529, 429, 401, 403];

impl Default for RetryOn {
    fn default() -> RetryOn {
        RetryOn::from_codes(&DEFAULT_RETRY_ON).unwrap_or(RetryOn([0; 10]))
    }
}

impl RetryOn {
    /// The set of `codes`; an error names a code that is not a status a server answers with
    /// (100 to 599; 2xx and 3xx never fail over).
    pub fn from_codes(codes: &[u16]) -> Result<RetryOn, String> {
        let mut set = RetryOn([0; 10]);
        for &c in codes {
            if !(400..600).contains(&c) {
                return Err(format!("status {c}: only 4xx and 5xx statuses can fail over"));
            }
            set.0[(c / 64) as usize] |= 1 << (c % 64);
        }
        Ok(set)
    }

    /// `"500,502,529"` (spaces allowed).
    pub fn parse(list: &str) -> Result<RetryOn, String> {
        let codes: Result<Vec<u16>, String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u16>().map_err(|_| format!("{s:?} is not a status code")))
            .collect();
        RetryOn::from_codes(&codes?)
    }

    pub fn contains(&self, status: u16) -> bool {
        status < 640 && self.0[(status / 64) as usize] & (1 << (status % 64)) != 0
    }

    pub fn codes(&self) -> Vec<u16> {
        (400..600).filter(|&c| self.contains(c)).collect()
    }
}

/// A single-endpoint profile (the shape `qcc add` writes) as its one endpoint at priority 1.
///
/// Only `base_url` and `api_key` are read: the profile's other fields (`priority: "primary"`,
/// `enabled`, ...) are profile-level in the Python package and say nothing about the endpoint.
/// A profile with no `base_url` has no endpoint.
pub(super) fn single_endpoint(
    name: &str,
    profile: &Map<String, Value>,
) -> std::result::Result<Option<EndpointConfig>, String> {
    let base = match profile.get("base_url") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => return Err("\"base_url\" is not a string".into()),
    };
    let api_key = match profile.get("api_key") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s,
        Some(_) => return Err("\"api_key\" is not a string".into()),
    };
    let mut ep = EndpointConfig::new(fnv_id(name), BaseUrl::parse(base)?, api_key);
    // A single-endpoint profile's endpoint is called what the profile is, when that is a name.
    if check_name(name).is_ok() {
        ep.name = name.to_string();
    }
    Ok(Some(ep))
}

pub(super) fn parse_endpoint(ep: &Value) -> std::result::Result<EndpointConfig, String> {
    let obj = ep.as_object().ok_or("not a JSON object")?;
    let id = obj.get("id").and_then(Value::as_str).ok_or("missing \"id\"")?.to_string();
    check_id(&id)?;
    let name = match obj.get("metadata").and_then(|m| m.get("name")) {
        None | Some(Value::Null) => String::new(), // named after its host below
        Some(Value::String(n)) => {
            check_name(n).map_err(|e| format!("endpoint {id}: {e}"))?;
            n.clone()
        }
        Some(_) => return Err(format!("endpoint {id}: \"metadata.name\" is not a string")),
    };
    let meta = obj.get("metadata");
    let model_map = crate::store::models::from_json(meta.and_then(|m| m.get("model_map")))
        .map_err(|e| format!("endpoint {id}: {e}"))?;
    let probe_model = match meta.and_then(|m| m.get("probe_model")) {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => {
            crate::store::models::check_probe_model(m).map_err(|e| format!("endpoint {id}: {e}"))?;
            Some(m.clone())
        }
        Some(_) => return Err(format!("endpoint {id}: \"metadata.probe_model\" is not a string")),
    };
    let format = Format::from_meta(meta).map_err(|e| format!("endpoint {id}: {e}"))?;
    let caps = Caps::from_meta(meta).map_err(|e| format!("endpoint {id}: {e}"))?;
    let rules = crate::store::rules::Rules::from_json(meta.and_then(|m| m.get("rules")), "rules")
        .map_err(|e| format!("endpoint {id}: {e}"))?;
    let learned = crate::store::rules::Rules::from_json(meta.and_then(|m| m.get("learned_rules")), "learned_rules")
        .map_err(|e| format!("endpoint {id}: {e}"))?;
    let base = obj.get("base_url").and_then(Value::as_str).ok_or(format!("endpoint {id}: missing \"base_url\""))?;
    let url = BaseUrl::parse(base).map_err(|e| format!("endpoint {id}: {e}"))?;
    let num = |field: &str, default: u64| -> std::result::Result<u64, String> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.ceil() as u64))
                .ok_or(format!("endpoint {id}: \"{field}\" is not a non-negative number")),
        }
    };
    let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let timeout_secs = num("timeout", 30)?.max(1);
    if timeout_secs > MAX_TIMEOUT_SECS {
        return Err(format!("endpoint {id}: \"timeout\" {timeout_secs} is more than {MAX_TIMEOUT_SECS} seconds"));
    }
    Ok(EndpointConfig {
        api_key: obj.get("api_key").and_then(Value::as_str).unwrap_or("").to_string(),
        weight: to_u32(num("weight", 100)?),
        priority: to_u32(num("priority", 1)?),
        enabled: obj.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        max_failures: to_u32(num("max_failures", 3)?).max(1),
        timeout_secs,
        ca_file: obj.get("ca_file").and_then(Value::as_str).filter(|s| !s.is_empty()).map(PathBuf::from),
        model_map,
        probe_model,
        format,
        caps,
        rules,
        learned,
        name,
        id,
        url,
    })
}

/// `base`, or `base-2`, `base-3` ...: the first that no endpoint of `others` is called (nor has
/// as its id).
pub(super) fn unique_name(base: &str, others: &[EndpointConfig]) -> String {
    let taken: std::collections::HashSet<&str> = others.iter().flat_map(|e| [e.name.as_str(), e.id.as_str()]).collect();
    crate::store::names::first_free(base, &taken)
}

/// Give every endpoint without a stored name its host's, made unique; refuse two endpoints of
/// one name, or a name that is another endpoint's id (a command could not tell them apart).
pub(super) fn name_endpoints(endpoints: &mut [EndpointConfig]) -> std::result::Result<(), String> {
    use std::collections::{HashMap, HashSet};
    let ids: HashMap<String, usize> = endpoints.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, e) in endpoints.iter().enumerate().filter(|(_, e)| !e.name.is_empty()) {
        if let Some(j) = names.insert(e.name.clone(), i) {
            return Err(format!(
                "two endpoints are called '{}' ({} and {}); names must be unique in a cluster",
                e.name, endpoints[j].id, e.id
            ));
        }
    }
    let mut taken: HashSet<String> = names.keys().chain(ids.keys()).cloned().collect();
    // Where the search for a free `host-K` resumes, per host (many endpoints on one host).
    let mut next: HashMap<String, usize> = HashMap::new();
    for (i, ep) in endpoints.iter_mut().enumerate() {
        if ep.name.is_empty() {
            let base = crate::store::names::host_of(&ep.url.to_string());
            let name = if taken.contains(&base) {
                let k = next.entry(base.clone()).or_insert(2);
                while taken.contains(&format!("{base}-{k}")) {
                    *k += 1;
                }
                format!("{base}-{k}")
            } else {
                base
            };
            taken.insert(name.clone());
            names.insert(name.clone(), i);
            ep.name = name;
        }
    }
    for (name, &i) in &names {
        if let Some(&j) = ids.get(name).filter(|&&j| j != i) {
            return Err(format!(
                "endpoint {} is called '{name}', which is the id of endpoint {}",
                endpoints[i].id, endpoints[j].name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_and_refuse_what_cannot_fail_over() {
        let d = RetryOn::default();
        assert!(d.contains(529) && d.contains(401) && !d.contains(404) && !d.contains(200));
        assert_eq!(d.codes(), vec![401, 403, 429, 500, 502, 503, 504, 529]);
        let s = RetryOn::parse("500, 529").unwrap();
        assert_eq!(s.codes(), vec![500, 529]);
        assert!(RetryOn::parse("200").is_err());
        assert!(RetryOn::parse("5xx").is_err());
        assert!(RetryOn::parse("700").is_err());
        assert!(RetryOn::parse("").unwrap().codes().is_empty());
    }
}
