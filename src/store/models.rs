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

/// `*` matches any run of bytes; everything else itself.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.iter().position(|&b| b == b'*') {
        None => p == s,
        Some(i) => {
            if s.len() < i || p[..i] != s[..i] {
                return false;
            }
            let (rest_p, rest_s) = (&p[i + 1..], &s[i..]);
            (0..=rest_s.len()).any(|k| glob(rest_p, &rest_s[k..]))
        }
    }
}

/// What `model` becomes under `rules` (the first that matches), if any does.
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
        for bad in ["noequals", "=x", "x=", "a b=c", "x=y*", "x=\"y\""] {
            assert!(ModelRule::parse(bad).is_err(), "{bad}");
        }
        let back = from_json(Some(&to_json(&rules))).unwrap();
        assert_eq!(back, rules);
        assert!(from_json(Some(&json!([["a"]]))).is_err());
    }
}
