//! A request rewritten for one Anthropic-format endpoint, as splices of the client's bytes: its
//! model renamed (its `model_map`), a model tag taken off (`[1m]`: no endpoint is sent it), and
//! its request rules applied (`store/rules.rs`: top-level fields left out, `thinking: adaptive`
//! rewritten, `output_config.effort` left out). Where the model and each field are in the body
//! was found once, by the read that routes the request (`policy::route::look`, kept in its
//! `Facts`); the new body is the old one with those few places changed (no re-serialisation of
//! a 200 KB request, no second parse); an untouched body is forwarded byte for byte. Each
//! attempt rewrites the client's original body, so a failover sends the next endpoint its own
//! form of what the client asked for.

use crate::http::BodyFraming;
use crate::policy::route::{FieldAt, ModelAt};
use crate::store::cluster::EndpointConfig;
use crate::store::models::{map, untagged};
use crate::store::rules::AdaptiveThinking;

/// The most `thinking.budget_tokens` that an adaptive request rewritten to `enabled` gets (less
/// when its `max_tokens` leaves less room).
pub const THINKING_BUDGET: u64 = 16_000;

/// A body rewritten for an endpoint, and the model names (client's, endpoint's) for the logs.
pub struct Mapped {
    /// The new body, when it is made anew (a translation: `splices` empty); else empty.
    pub body: Vec<u8>,
    /// The client's body with these places replaced, in order, none overlapping.
    pub splices: Vec<Splice>,
    pub from: String,
    pub to: String,
}

/// The client's bytes `at..at + len` replaced by `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub at: usize,
    pub len: usize,
    pub with: Vec<u8>,
}

impl Mapped {
    /// A body made anew (a translation's).
    pub fn whole(body: Vec<u8>, from: String, to: String) -> Mapped {
        Mapped { body, splices: Vec::new(), from, to }
    }

    /// The length of the body sent, the client's being `client`.
    pub fn len(&self, client: &[u8]) -> usize {
        match self.splices.is_empty() {
            true => self.body.len(),
            false => self.splices.iter().fold(client.len(), |n, s| n - s.len + s.with.len()),
        }
    }

    /// The body sent from `offset` on, up to the next seam (the caller asks again for the rest).
    pub fn piece<'a>(&'a self, client: &'a [u8], offset: usize) -> &'a [u8] {
        if self.splices.is_empty() {
            return &self.body[offset.min(self.body.len())..];
        }
        // Walk the seams: `shift` is how far the sent body is ahead of the client's so far.
        let mut shift: isize = 0;
        for s in &self.splices {
            let start = (s.at as isize + shift) as usize; // where this splice starts in the sent body
            if offset < start {
                let from = (offset as isize - shift) as usize;
                return &client[from..s.at];
            }
            if offset < start + s.with.len() {
                return &s.with[offset - start..];
            }
            shift += s.with.len() as isize - s.len as isize;
        }
        let from = (offset as isize - shift).max(0) as usize;
        &client[from.min(client.len())..]
    }

    /// The whole body sent, in one buffer (a copy: for the body log, never the data path).
    pub fn whole_body(&self, client: &[u8]) -> Vec<u8> {
        let len = self.len(client);
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let piece = self.piece(client, out.len());
            if piece.is_empty() {
                break;
            }
            out.extend_from_slice(piece);
        }
        out
    }
}

/// `body` as endpoint `cfg` gets it, when anything changes: the model (at `model`) renamed by its
/// map or untagged, and its rules applied to the fields (at `fields`). `None` (nothing to change,
/// no model or fields found, a chunked body): the body goes as it came.
pub fn rewrite(
    cfg: &EndpointConfig,
    framing: BodyFraming,
    body: &[u8],
    model: Option<&ModelAt>,
    fields: &[FieldAt],
) -> Option<Mapped> {
    if !matches!(framing, BodyFraming::Length(_)) || body.is_empty() {
        return None;
    }
    let model = model.filter(|m| m.at + m.len <= body.len());
    let mut splices = Vec::new();
    let renamed = model.map(|m| {
        let base = untagged(&m.name).0;
        (m, map(&cfg.model_map, base).unwrap_or(base))
    });
    if let Some((m, renamed)) = renamed.filter(|(m, r)| *r != m.name) {
        let mut with = Vec::with_capacity(renamed.len() + 2);
        serde_json::to_writer(&mut with, renamed).ok()?;
        splices.push(Splice { at: m.at, len: m.len, with });
    }
    if cfg.has_rules() {
        let value = |f: &FieldAt| body.get(f.value.0..f.value.1).unwrap_or_default();
        let max_tokens =
            fields.iter().find(|f| f.name == "max_tokens").and_then(|f| serde_json::from_slice::<u64>(value(f)).ok());
        let mut out: Vec<(&FieldAt, Option<Vec<u8>>)> = Vec::new(); // None: left out
        let mut moved = None;
        for f in fields.iter().filter(|f| f.value.1 <= body.len() && f.at < f.value.0) {
            if cfg.drops_field(&f.name) {
                out.push((f, None));
            } else if f.name == "thinking" {
                if let Some(change) = cfg.adaptive_thinking().and_then(|r| thinking(value(f), r, max_tokens)) {
                    out.push((f, change));
                }
            } else if f.name == "output_config" && cfg.drops_effort() {
                if let Some((effort, change)) = without_effort(value(f)) {
                    out.push((f, change));
                    moved = cfg.effort_to().map(|to| (to, effort));
                }
            }
        }
        splices.extend(field_splices(body, &out));
        // The effort as the vendor takes it: a top-level field of its own, first in the object.
        if let Some((to, effort)) = moved.filter(|(to, _)| !fields.iter().any(|f| f.name == *to)) {
            let at = body.iter().position(|&b| b == b'{').map(|i| i + 1)?;
            let mut with = serde_json::to_vec(to).ok()?;
            with.push(b':');
            serde_json::to_writer(&mut with, &effort).ok()?;
            with.push(b',');
            splices.push(Splice { at, len: 0, with });
        }
    }
    if splices.is_empty() {
        return None; // (nothing allocated on the way: the common case costs no allocation)
    }
    splices.sort_by_key(|s| (s.at, s.len)); // (an insertion before a cut at the same place)
    let (from, to) = renamed.map_or_else(Default::default, |(m, r)| (m.name.clone(), r.to_string()));
    Some(Mapped { body: Vec::new(), splices, from, to })
}

/// What an adaptive `thinking` value becomes under `rule`: `Some(None)` left out, `Some(Some(v))`
/// replaced; `None` when it is not adaptive (left as it is).
fn thinking(value: &[u8], rule: AdaptiveThinking, max_tokens: Option<u64>) -> Option<Option<Vec<u8>>> {
    #[derive(serde::Deserialize)]
    struct T<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let t: T = serde_json::from_slice(value).ok()?;
    if t.kind != "adaptive" {
        return None;
    }
    // The budget must leave room for an answer and be at least Anthropic's 1,024.
    let budget = max_tokens.map(|m| m.saturating_sub(1).min(THINKING_BUDGET)).filter(|b| *b >= 1024);
    Some(match (rule, budget) {
        (AdaptiveThinking::Enabled, Some(b)) => {
            Some(format!(r#"{{"type":"enabled","budget_tokens":{b}}}"#).into_bytes())
        }
        _ => None,
    })
}

/// `output_config` without its `effort`: the effort, and `None` when nothing else is left in it
/// (else what is); `None` when it has no effort (left as it is).
fn without_effort(value: &[u8]) -> Option<(serde_json::Value, Option<Vec<u8>>)> {
    let mut m: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(value).ok()?;
    let effort = m.remove("effort")?;
    Some(match m.is_empty() {
        true => (effort, None),
        false => (effort, serde_json::to_vec(&m).ok()),
    })
}

/// The splices that leave out or replace these top-level fields of `body` (in body order). A
/// field left out takes one comma with it: the one before it, or, when it is first in the object
/// (or every field before it is left out too), the one after it.
fn field_splices(body: &[u8], changes: &[(&FieldAt, Option<Vec<u8>>)]) -> Vec<Splice> {
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut changes: Vec<&(&FieldAt, Option<Vec<u8>>)> = changes.iter().collect();
    changes.sort_by_key(|(f, _)| f.at);
    let mut out: Vec<Splice> = Vec::new();
    // Where the last left-out field that opened the object ended (its own comma taken).
    let mut open_end: Option<usize> = None;
    for (f, change) in changes {
        if let Some(with) = change {
            out.push(Splice { at: f.value.0, len: f.value.1 - f.value.0, with: with.clone() });
            continue;
        }
        let mut before = f.at;
        while before > 0 && ws(body[before - 1]) {
            before -= 1;
        }
        let first = before > 0 && body[before - 1] == b'{' || open_end == Some(f.at);
        if first {
            // Through the comma after it and the white space up to the next key.
            let mut end = f.value.1;
            while end < body.len() && ws(body[end]) {
                end += 1;
            }
            if body.get(end) == Some(&b',') {
                end += 1;
                while end < body.len() && ws(body[end]) {
                    end += 1;
                }
            }
            out.push(Splice { at: f.at, len: end - f.at, with: Vec::new() });
            open_end = Some(end);
        } else if before > 0 && body[before - 1] == b',' {
            let at = before - 1;
            out.push(Splice { at, len: f.value.1 - at, with: Vec::new() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::route::Want;
    use crate::store::models::ModelRule;
    use crate::store::rules::Rules;

    fn cfg(map: &str, rules: Rules) -> EndpointConfig {
        let mut c =
            EndpointConfig::new("abcd1234".into(), crate::store::url::BaseUrl::parse("https://x.test").unwrap(), "k");
        c.model_map = map.split(',').filter(|m| !m.is_empty()).map(|m| ModelRule::parse(m).unwrap()).collect();
        c.rules = rules;
        c
    }

    /// The body `cfg` is sent, read through `piece` as the attempt sends it.
    fn sent(cfg: &EndpointConfig, body: &[u8]) -> Option<Vec<u8>> {
        let looked = crate::policy::route::look(&[], body, Want { model: true, fields: true, ..Default::default() });
        let m = rewrite(cfg, BodyFraming::Length(body.len() as u64), body, looked.model.as_ref(), &looked.fields)?;
        let mut out = Vec::new();
        while out.len() < m.len(body) {
            let p = m.piece(body, out.len());
            assert!(!p.is_empty(), "a piece before the end");
            out.extend_from_slice(p);
        }
        assert_eq!(m.piece(body, out.len()), b"");
        Some(out)
    }

    #[test]
    fn only_a_matching_json_body_is_rewritten_and_the_rest_kept() {
        let c = cfg("claude-*=glm-4.6", Rules::default());
        let body =
            br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"h\u00e9"}],"z":1}"#;
        let v: serde_json::Value = serde_json::from_slice(&sent(&c, body).expect("mapped")).unwrap();
        assert_eq!(v["model"], "glm-4.6");
        assert_eq!(v["messages"][0]["content"], "hé");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["model", "max_tokens", "messages", "z"], "key order kept");
        for other in [&b"not json"[..], br#"{"model":"gpt-5"}"#, br#"{"messages":[]}"#, br#"{"model":3}"#] {
            assert!(sent(&c, other).is_none());
        }
        let looked = crate::policy::route::look(&[], body, Want { model: true, ..Default::default() });
        assert!(rewrite(&c, BodyFraming::Chunked, body, looked.model.as_ref(), &[]).is_none());
        assert!(sent(&cfg("", Rules::default()), body).is_none());
    }

    #[test]
    fn rules_leave_out_fields_rewrite_thinking_and_effort_and_untag_the_model() {
        let rules = Rules {
            drop_fields: vec!["context_management".into(), "metadata".into(), "a".into()],
            adaptive_thinking: Some(AdaptiveThinking::Enabled),
            drop_effort: true,
            ..Default::default()
        };
        let c = cfg("", rules);
        let body = br#"{ "a" : 1 , "model":"claude-opus-4-8[1m]","messages":[{"role":"user","content":"hi, \"a\": 1"}],
            "metadata":{"user_id":"x"},"max_tokens":64000,"thinking":{"type":"adaptive"},
            "context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},
            "output_config":{"effort":"high","format":{"type":"json"}},"stream":true}"#;
        let out = sent(&c, body).expect("rewritten");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
        assert_eq!(v["model"], "claude-opus-4-8", "the tag never goes upstream");
        assert_eq!(v["thinking"], serde_json::json!({"type": "enabled", "budget_tokens": THINKING_BUDGET}));
        assert_eq!(v["output_config"], serde_json::json!({"format": {"type": "json"}}));
        for gone in ["a", "metadata", "context_management"] {
            assert!(v.get(gone).is_none(), "{gone}");
        }
        assert_eq!(v["messages"][0]["content"], "hi, \"a\": 1", "a string that looks like a field is content");
        // Every field left out, first and last included; only the effort in output_config.
        let c = cfg(
            "",
            Rules { drop_fields: vec!["a".into(), "b".into(), "c".into()], drop_effort: true, ..Default::default() },
        );
        for (body, want) in [
            (&br#"{"a":1,"b":2,"c":3}"#[..], "{}"),
            (br#"{"a":1,"b":2,"x":3}"#, r#"{"x":3}"#),
            (br#"{"x":0,"b":2,"c":3}"#, r#"{"x":0}"#),
            (br#"{"x":0,"b":2,"y":1,"c":3,"output_config":{"effort":"low"}}"#, r#"{"x":0,"y":1}"#),
            (br#"{"a":1,"x":{"a":1},"c":3}"#, r#"{"x":{"a":1}}"#),
        ] {
            let out = sent(&c, body).expect("rewritten");
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
        // The effort moved to the vendor's own field, first in the object.
        let c = cfg(
            "",
            Rules { effort_to: Some("reasoning_effort".into()), drop_fields: vec!["a".into()], ..Default::default() },
        );
        let out = sent(&c, br#"{"a":1,"model":"m","output_config":{"effort":"high"}}"#).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), r#"{"reasoning_effort":"high","model":"m"}"#);
        // Adaptive thinking with no room for a budget is left out; another type is kept.
        let c = cfg("", Rules { adaptive_thinking: Some(AdaptiveThinking::Enabled), ..Default::default() });
        let out = sent(&c, br#"{"max_tokens":500,"thinking":{"type":"adaptive"},"x":1}"#).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), r#"{"max_tokens":500,"x":1}"#);
        assert!(sent(&c, br#"{"max_tokens":5000,"thinking":{"type":"enabled","budget_tokens":2000}}"#).is_none());
    }
}
