//! A request's model renamed for one endpoint (its `model_map`): the JSON body is parsed with
//! serde_json and written back (no string surgery) only when a rule matches; an unmapped body is
//! forwarded byte for byte. Each attempt maps the client's original body, so a failover sends
//! the next endpoint its own mapping of what the client asked for.

use crate::http::BodyFraming;
use crate::store::models::{map, ModelRule};

/// A body rewritten for an endpoint, and the names (client's, endpoint's) for the logs.
pub struct Mapped {
    pub body: Vec<u8>,
    pub from: String,
    pub to: String,
}

/// `body` with its `model` mapped by `rules`, when it is a complete JSON object with a string
/// `model` that a rule matches (and renames). Anything else (not JSON, no model, no rule, a
/// chunked body): `None`, the body goes as it came.
pub fn map_body(rules: &[ModelRule], framing: BodyFraming, body: &[u8]) -> Option<Mapped> {
    if rules.is_empty() || !matches!(framing, BodyFraming::Length(_)) || body.is_empty() {
        return None;
    }
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let from = v.get("model")?.as_str()?.to_string();
    let to = map(rules, &from)?;
    if to == from {
        return None;
    }
    v["model"] = serde_json::Value::String(to.to_string());
    let body = serde_json::to_vec(&v).ok()?;
    Some(Mapped { body, to: to.to_string(), from })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_matching_json_body_is_rewritten_and_the_rest_kept() {
        let rules = vec![ModelRule::parse("claude-*=glm-4.6").unwrap()];
        let body =
            br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"h\u00e9"}],"z":1}"#;
        let m = map_body(&rules, BodyFraming::Length(body.len() as u64), body).expect("mapped");
        let v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(v["model"], "glm-4.6");
        assert_eq!(v["messages"][0]["content"], "hé");
        assert_eq!((m.from.as_str(), m.to.as_str()), ("claude-sonnet-4-5", "glm-4.6"));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["model", "max_tokens", "messages", "z"], "key order kept");
        for other in [&b"not json"[..], br#"{"model":"gpt-5"}"#, br#"{"messages":[]}"#, br#"{"model":3}"#] {
            assert!(map_body(&rules, BodyFraming::Length(other.len() as u64), other).is_none());
        }
        assert!(map_body(&rules, BodyFraming::Chunked, body).is_none());
        assert!(map_body(&[], BodyFraming::Length(body.len() as u64), body).is_none());
    }
}
