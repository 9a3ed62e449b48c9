//! A request's model renamed for one endpoint (its `model_map`). The body is read once with
//! serde_json, borrowing: only `model` is kept, as the raw JSON text it was in the body, so its
//! place is known; the rest is checked and skipped without a copy. When a rule matches, the new
//! body is the old one with that one value spliced (no re-serialisation of a 200 KB request);
//! an unmapped body is forwarded byte for byte. Each attempt maps the client's original body, so
//! a failover sends the next endpoint its own mapping of what the client asked for.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::http::BodyFraming;
use crate::store::models::{map, ModelRule};

/// A body rewritten for an endpoint, and the names (client's, endpoint's) for the logs.
pub struct Mapped {
    /// The new body, or (with `splice`) what replaces part of the client's.
    pub body: Vec<u8>,
    /// `(at, len)`: the body sent is the client's with its bytes `at..at + len` replaced by
    /// `body` — no copy of the rest is made.
    pub splice: Option<(usize, usize)>,
    pub from: String,
    pub to: String,
}

impl Mapped {
    /// The length of the body sent, the client's being `client`.
    pub fn len(&self, client: &[u8]) -> usize {
        match self.splice {
            None => self.body.len(),
            Some((_, old)) => client.len() - old + self.body.len(),
        }
    }

    /// The body sent from `offset` on, up to the next seam (the caller asks again for the rest).
    pub fn piece<'a>(&'a self, client: &'a [u8], offset: usize) -> &'a [u8] {
        let new = self.body.len();
        match self.splice {
            None => &self.body[offset.min(new)..],
            Some((at, _)) if offset < at => &client[offset..at],
            Some((at, _)) if offset < at + new => &self.body[offset - at..],
            Some((_, old)) => &client[(offset - new + old).min(client.len())..],
        }
    }
}

#[derive(Deserialize)]
struct ModelOnly<'a> {
    #[serde(borrow)]
    model: &'a RawValue,
}

/// `body` with its `model` mapped by `rules`, when it is a complete JSON object with a string
/// `model` that a rule matches (and renames). Anything else (not JSON, no model, no rule, a
/// chunked body): `None`, the body goes as it came.
pub fn map_body(rules: &[ModelRule], framing: BodyFraming, body: &[u8]) -> Option<Mapped> {
    if rules.is_empty() || !matches!(framing, BodyFraming::Length(_)) || body.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let raw = serde_json::from_str::<ModelOnly>(text).ok()?.model.get();
    let from: String = serde_json::from_str(raw).ok()?;
    let to = map(rules, &from)?;
    if to == from {
        return None;
    }
    // (`raw` borrows from `text`: its place in the body is its address's distance.)
    let at = raw.as_ptr() as usize - text.as_ptr() as usize;
    let mut new = Vec::with_capacity(to.len() + 2);
    serde_json::to_writer(&mut new, to).ok()?;
    Some(Mapped { body: new, splice: Some((at, raw.len())), to: to.to_string(), from })
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
        let mut sent = Vec::new();
        while sent.len() < m.len(body) {
            sent.extend_from_slice(m.piece(body, sent.len()));
        }
        assert_eq!(m.piece(body, sent.len()), b"");
        let v: serde_json::Value = serde_json::from_slice(&sent).unwrap();
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
