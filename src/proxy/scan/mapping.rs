//! A request's model renamed for one endpoint (its `model_map`). Where the model is in the body
//! was found once, at the request's first attempt, by the same read that routes it
//! (`policy::route::look`: borrowing, and stopping at the `model` key). When a rule matches,
//! the new body is the old one with that one value spliced (no re-serialisation of a 200 KB
//! request, no second parse); an unmapped body is forwarded byte for byte. Each attempt maps
//! the client's original body, so a failover sends the next endpoint its own mapping of what the
//! client asked for.

use crate::http::BodyFraming;
use crate::policy::route::ModelAt;
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

/// `body` with its `model` (found at `model`) mapped by `rules`, when a rule matches and renames
/// it. Anything else (no model found, no rule, a chunked body): `None`, the body goes as it came.
pub fn map_body(rules: &[ModelRule], framing: BodyFraming, body: &[u8], model: Option<&ModelAt>) -> Option<Mapped> {
    if rules.is_empty() || !matches!(framing, BodyFraming::Length(_)) || body.is_empty() {
        return None;
    }
    let m = model.filter(|m| m.at + m.len <= body.len())?;
    let to = map(rules, &m.name)?;
    if to == m.name {
        return None;
    }
    let mut new = Vec::with_capacity(to.len() + 2);
    serde_json::to_writer(&mut new, to).ok()?;
    Some(Mapped { body: new, splice: Some((m.at, m.len)), to: to.to_string(), from: m.name.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_matching_json_body_is_rewritten_and_the_rest_kept() {
        let rules = vec![ModelRule::parse("claude-*=glm-4.6").unwrap()];
        let body =
            br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"h\u00e9"}],"z":1}"#;
        let at = |body: &[u8]| {
            crate::policy::route::look(&[], body, crate::policy::route::Want { model: true, estimate: false }).model
        };
        let m = map_body(&rules, BodyFraming::Length(body.len() as u64), body, at(body).as_ref()).expect("mapped");
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
            assert!(map_body(&rules, BodyFraming::Length(other.len() as u64), other, at(other).as_ref()).is_none());
        }
        assert!(map_body(&rules, BodyFraming::Chunked, body, at(body).as_ref()).is_none());
        assert!(map_body(&[], BodyFraming::Length(body.len() as u64), body, at(body).as_ref()).is_none());
    }
}
