//! The dashboard's edits: endpoints (add, edit, rotate a key, remove), the cluster's rules and
//! client keys, each a `POST` under `/_qcc/config/` or `/_qcc/keys/`. Fields come as query
//! parameters; a secret (an endpoint's API key) only in the `x-qcc-key` header, so it never sits
//! in a URL. Each becomes the `Edit` the CLI's command would make (`shared/disk.rs`): the disk
//! thread edits the file with the same store functions, writes it atomically, and the cluster is
//! applied live; the page gets the result or the exact error. A new client key is in its answer
//! once; no answer carries an endpoint's key.
//!
//! Who may: `routes.rs` lets through only the access key, an `--admin` client key or the CLI's
//! control token when keys are configured; without any key (loopback), only the page's own
//! per-process token (`x-qcc-token`, in the page the proxy served) and `x-qcc-action: 1`.

use serde_json::Value;

use crate::http::RequestHead;
use crate::proxy::admin::query::Params;
use crate::proxy::shared::disk::{Edit, KeyEdit};
use crate::store::config::NewEndpoint;
use crate::store::keys::KeyChange;

/// The edit-specific readings of a query's parameters.
impl Params {
    /// Model-map rules, one per line or comma; an empty value clears them.
    fn model_map(&self) -> Result<Option<Vec<crate::store::models::ModelRule>>, String> {
        let Some(v) = self.get("model_map") else { return Ok(None) };
        v.split(['\n', ','])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(crate::store::models::ModelRule::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn probe_model(&self) -> Result<Option<String>, String> {
        let m = self.get("probe_model").map(|m| m.trim().to_string());
        if let Some(m) = m.as_deref().filter(|m| !m.is_empty()) {
            crate::store::models::check_probe_model(m)?;
        }
        Ok(m)
    }

    fn format(&self) -> Result<crate::store::cluster::FormatChange, String> {
        crate::store::cluster::FormatChange::from_fields(|n| self.text(n))
    }

    fn key_change(&self) -> Result<KeyChange, String> {
        let mut c = KeyChange::from_fields(|n| self.text(n), str::to_string).map_err(|e| e.to_string())?;
        c.admin = self.flag("admin");
        Ok(c)
    }
}

/// The secret of an edit: the `x-qcc-key` header.
fn secret(head: &RequestHead) -> Option<String> {
    head.headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"x-qcc-key"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The edit a request asks for, or the reason it is not one (empty: no such edit).
pub fn edit_of(path: &str, p: &Params, head: &RequestHead) -> Result<Edit, String> {
    let which = || p.text("endpoint").ok_or_else(|| "give ?endpoint=NAME|ID".to_string());
    let name = || p.text("name").ok_or_else(|| "give ?name=NAME".to_string());
    Ok(match path {
        "/_qcc/config/endpoint/add" => {
            let base_url = p.text("url").ok_or("give ?url=URL")?;
            let key = secret(head).ok_or("give the endpoint's API key in the x-qcc-key header")?;
            Edit::Add(Box::new(NewEndpoint {
                base_url: base_url.trim_end_matches('/').to_string(),
                key,
                priority: p.number("priority")?.unwrap_or(NewEndpoint::DEFAULT_PRIORITY),
                weight: p.number("weight")?.unwrap_or(NewEndpoint::DEFAULT_WEIGHT),
                timeout: p.number("timeout")?.unwrap_or(NewEndpoint::DEFAULT_TIMEOUT),
                max_failures: p.number("max_failures")?.unwrap_or(NewEndpoint::DEFAULT_MAX_FAILURES),
                ca_file: None,
                name: p.text("name"),
                model_map: p.model_map()?.unwrap_or_default(),
                probe_model: p.probe_model()?.filter(|m| !m.is_empty()),
                format: p.format()?,
                caps: crate::store::cluster::CapsChange::from_fields(|n| p.text(n))?,
                rules: Default::default(),
            }))
        }
        "/_qcc/config/endpoint/set" => {
            let change = crate::store::profiles::EndpointChange {
                url: p.text("url").map(|u| u.trim_end_matches('/').to_string()),
                key: secret(head),
                priority: p.number("priority")?,
                weight: p.number("weight")?,
                timeout: p.number("timeout")?,
                max_failures: p.number("max_failures")?,
                enabled: p.flag("enabled"),
                name: p.text("name"),
                model_map: p.model_map()?,
                probe_model: p.probe_model()?,
                format: p.format()?,
                caps: crate::store::cluster::CapsChange::from_fields(|n| p.text(n))?,
                rules: Default::default(),
                learned: None,
            };
            Edit::Set { which: which()?, change: Box::new(change) }
        }
        "/_qcc/config/endpoint/remove" => Edit::Remove { which: which()? },
        "/_qcc/config/cluster" => {
            let retry_on = p.text("retry_on").map(|r| crate::store::cluster::RetryOn::parse(&r)).transpose()?;
            let strategy = p
                .text("strategy")
                .map(|s| crate::store::cluster::Strategy::parse(&s).ok_or(format!("unknown strategy {s:?}")))
                .transpose()?;
            if retry_on.is_none() && strategy.is_none() {
                return Err("give ?retry_on=CODES and/or ?strategy=S".into());
            }
            Edit::Cluster { retry_on, strategy }
        }
        "/_qcc/keys/add" => Edit::Key(KeyEdit::Add { name: name()?, change: p.key_change()? }),
        "/_qcc/keys/set" => {
            let change = p.key_change()?;
            if change.is_empty() {
                return Err("nothing to change".into());
            }
            Edit::Key(KeyEdit::Set { name: name()?, change })
        }
        "/_qcc/keys/revoke" => Edit::Key(KeyEdit::Revoke { name: name()? }),
        _ => return Err(String::new()),
    })
}

/// Whether `path` is one of the edits here.
pub fn is_edit(path: &str) -> bool {
    path.starts_with("/_qcc/config/") || path.starts_with("/_qcc/keys/")
}

/// One log line for an edit the dashboard made (names and ids; never a key).
pub fn log_edit(edit: &Edit, outcome: &Value) {
    let what = match edit {
        Edit::None => return,
        Edit::Enable { id, enabled } => format!("endpoint {id} {}", if *enabled { "enabled" } else { "disabled" }),
        Edit::Add(_) => format!("endpoint {} added", outcome["name"].as_str().unwrap_or("?")),
        Edit::Set { which, change } => {
            format!(
                "endpoint {} changed{}",
                crate::mask::clean(which),
                if change.key.is_some() { " (new key)" } else { "" }
            )
        }
        Edit::Remove { which } => format!("endpoint {} removed", crate::mask::clean(which)),
        Edit::Cluster { .. } => "cluster rules changed".into(),
        Edit::Serve(name) => format!("cluster '{name}' served too (a request named it)"),
        Edit::Key(KeyEdit::Add { name, .. }) => format!("client key '{name}' added"),
        Edit::Key(KeyEdit::Set { name, .. }) => format!("client key '{name}' changed"),
        Edit::Key(KeyEdit::Revoke { name }) => format!("client key '{name}' revoked"),
    };
    log::info!("{what} from the dashboard");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_request_head;

    #[test]
    fn edits_parse_from_query_and_header_and_bad_ones_say_why() {
        let head =
            parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\nx-qcc-key: sk-new-0000\r\n\r\n").unwrap().unwrap();
        let p = Params::parse(
            "url=https%3A%2F%2Fa.example%2F&name=a%20b&priority=2&model_map=opus*%3Dglm-4.6%0Ahaiku*%3Dglm-air",
        );
        let Edit::Add(new) = edit_of("/_qcc/config/endpoint/add", &p, &head).unwrap() else { panic!("add") };
        assert_eq!((new.base_url.as_str(), new.key.as_str(), new.priority), ("https://a.example", "sk-new-0000", 2));
        assert_eq!((new.name.as_deref(), new.model_map.len()), (Some("a b"), 2));
        let bare = parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap().unwrap();
        assert!(edit_of("/_qcc/config/endpoint/add", &p, &bare).unwrap_err().contains("x-qcc-key"));
        assert!(edit_of("/_qcc/config/endpoint/set", &Params::parse("endpoint=a&priority=x"), &bare)
            .unwrap_err()
            .contains("whole number"));
        assert!(edit_of("/_qcc/keys/add", &Params::parse("name=bob&rpm=-1"), &bare).unwrap_err().contains("rpm"));
        assert!(edit_of("/_qcc/config/cluster", &Params::parse("strategy=fastest"), &bare)
            .unwrap_err()
            .contains("unknown"));
        assert!(matches!(
            edit_of("/_qcc/keys/revoke", &Params::parse("name=bob"), &bare),
            Ok(Edit::Key(KeyEdit::Revoke { .. }))
        ));
        assert_eq!(edit_of("/_qcc/config/nope", &p, &bare).unwrap_err(), "");
    }
}
