//! Model names per endpoint: the model map (`--model-map 'PATTERN=MODEL'`, first match wins,
//! `*` matches any run of characters) that renames a request's model for one endpoint, and the
//! endpoint's probe model. Both live in the endpoint's `metadata`, which the Python qcc keeps.

use serde_json::{json, Value};

/// One rule: a model the client asks for (`pattern`, `*` a wildcard) becomes `model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRule {
    pub pattern: String,
    pub model: String,
}

/// A model name as qcc accepts one from a user: 1 to 128 visible characters, no spaces.
fn check_model(what: &str, m: &str) -> Result<(), String> {
    if m.is_empty() || m.len() > 128 || m.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"') {
        return Err(format!("{what} {:?}: 1 to 128 characters, no spaces or quotes", crate::mask::clean(m)));
    }
    Ok(())
}

impl ModelRule {
    /// `PATTERN=MODEL`.
    pub fn parse(s: &str) -> Result<ModelRule, String> {
        let Some((pattern, model)) = s.split_once('=') else {
            return Err(format!(
                "--model-map {:?}: give PATTERN=MODEL (like 'claude-*=glm-4.6')",
                crate::mask::clean(s)
            ));
        };
        let (pattern, model) = (pattern.trim(), model.trim());
        check_model("--model-map pattern", pattern)?;
        check_model("--model-map model", model)?;
        if model.contains('*') {
            return Err(format!("--model-map model {model:?}: a wildcard only goes in the pattern"));
        }
        Ok(ModelRule { pattern: pattern.to_string(), model: model.to_string() })
    }

    pub fn matches(&self, model: &str) -> bool {
        glob(self.pattern.as_bytes(), model.as_bytes())
    }
}

/// Model names longer than this match no rule (a real one has at most 128 characters): the
/// name is the client's, and what it costs to look at must stay small.
pub const MATCH_MAX: usize = 256;

/// `*` matches any run of bytes; everything else itself. Without backtracking: the pattern's
/// first piece must start the name and its last end it, and each piece between is taken at
/// its leftmost place after the one before (leftmost is never worse, since `*` takes anything
/// left between). At most pattern length × name length byte comparisons, names capped at
/// `MATCH_MAX`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    if s.len() > MATCH_MAX {
        return false;
    }
    let mut pieces = p.split(|&b| b == b'*');
    let first = pieces.next().unwrap_or_default();
    let Some(rest) = s.strip_prefix(first) else { return false };
    let mut middle: Vec<&[u8]> = pieces.collect();
    let Some(last) = middle.pop() else { return rest.is_empty() }; // no `*` at all
    let Some(mut rest) = rest.len().checked_sub(last.len()).filter(|_| rest.ends_with(last)).map(|n| &rest[..n]) else {
        return false;
    };
    for piece in middle.into_iter().filter(|p| !p.is_empty()) {
        match rest.windows(piece.len()).position(|w| w == piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// What `model` becomes under `rules` (the first that matches), if any does.
/// A model id without its bracketed tag (Claude Code's `claude-opus-4-8[1m]`), and the tag: no
/// endpoint is sent the tag.
pub fn untagged(model: &str) -> (&str, Option<&str>) {
    match model.strip_suffix(']').and_then(|m| m.rsplit_once('[')) {
        Some((base, tag)) if !base.is_empty() => (base, Some(tag)),
        _ => (model, None),
    }
}

/// The beta a model tag stands for (`[1m]`: the 1M-token context), sent where the endpoint
/// takes betas; a tag without one is dropped.
pub fn tag_beta(tag: &str) -> Option<&'static str> {
    tag.eq_ignore_ascii_case("1m").then_some("context-1m-2025-08-07")
}

pub fn map<'a>(rules: &'a [ModelRule], model: &str) -> Option<&'a str> {
    rules.iter().find(|r| r.matches(model)).map(|r| r.model.as_str())
}

/// The rules as stored: `[["claude-*", "glm-4.6"], ...]`.
pub fn to_json(rules: &[ModelRule]) -> Value {
    Value::Array(rules.iter().map(|r| json!([r.pattern, r.model])).collect())
}

/// The rules from `metadata.model_map`; an error names what is wrong.
pub fn from_json(v: Option<&Value>) -> Result<Vec<ModelRule>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let list = v.as_array().ok_or("\"metadata.model_map\" is not a list")?;
    list.iter()
        .map(|r| match r.as_array().map(Vec::as_slice) {
            Some([Value::String(p), Value::String(m)]) => ModelRule::parse(&format!("{p}={m}")),
            _ => Err("\"metadata.model_map\" holds something not a [pattern, model] pair".to_string()),
        })
        .collect()
}

/// A model pattern as given (a route's `--model`: `*` matches any run of characters).
pub fn check_pattern(m: &str) -> Result<(), String> {
    check_model("pattern", m)
}

/// Whether `model` matches `pattern` (`*` any run of characters).
pub fn matches(pattern: &str, model: &str) -> bool {
    glob(pattern.as_bytes(), model.as_bytes())
}

/// A probe model as given (`--probe-model`).
pub fn check_probe_model(m: &str) -> Result<(), String> {
    check_model("--probe-model", m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_first_match_and_bad_rules() {
        let rules = vec![
            ModelRule::parse("claude-*-haiku-*=glm-4.5-air").unwrap(),
            ModelRule::parse("claude-haiku-*=glm-4.5-air").unwrap(),
            ModelRule::parse("claude-*=glm-4.6").unwrap(),
        ];
        assert_eq!(map(&rules, "claude-3-5-haiku-20241022"), Some("glm-4.5-air"));
        assert_eq!(map(&rules, "claude-haiku-4-5"), Some("glm-4.5-air"));
        assert_eq!(map(&rules, "claude-sonnet-4-5"), Some("glm-4.6"));
        assert_eq!(map(&rules, "gpt-5"), None);
        assert!(glob(b"*", b"") && glob(b"a*b*c", b"aXbYc") && !glob(b"a*b", b"ab-c") && glob(b"exact", b"exact"));
        assert!(glob(b"a*a", b"aa") && !glob(b"a*a", b"a") && glob(b"**", b"x") && glob(b"*-*-*x", b"1-2-3x"));
        assert!(!glob(b"ab*ba", b"aba") && glob(b"*ab*ab*", b"xabyab") && !glob(b"*ab*ab*", b"xaby"));
        assert!(!glob(b"exact", b"exac") && !glob(b"exact", b"exactly") && glob(b"ex*", b"ex"));
        let long = "a-".repeat(2048);
        assert!(!glob(b"*-*-*x", long.as_bytes()) && !glob(b"*", long.as_bytes()), "past MATCH_MAX: no match");
        for bad in ["noequals", "=x", "x=", "a b=c", "x=y*", "x=\"y\""] {
            assert!(ModelRule::parse(bad).is_err(), "{bad}");
        }
        // Against the backtracking definition, every pattern and name over a small alphabet.
        fn naive(p: &[u8], s: &[u8]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((b'*', rest)) => (0..=s.len()).any(|k| naive(rest, &s[k..])),
                Some((c, rest)) => s.first() == Some(c) && naive(rest, &s[1..]),
            }
        }
        let words = |alphabet: &[u8], max: u32| -> Vec<Vec<u8>> {
            let mut all = vec![Vec::new()];
            for len in 1..=max {
                for n in 0..alphabet.len().pow(len) {
                    all.push((0..len).map(|i| alphabet[n / alphabet.len().pow(i) % alphabet.len()]).collect());
                }
            }
            all
        };
        for p in words(b"ab*", 5) {
            for s in words(b"ab", 5) {
                assert_eq!(glob(&p, &s), naive(&p, &s), "{:?} {:?}", p, s);
            }
        }
        let back = from_json(Some(&to_json(&rules))).unwrap();
        assert_eq!(back, rules);
        assert!(from_json(Some(&json!([["a"]]))).is_err());
    }
}
