//! A cluster's routes and fallback chain, as the config file keeps them in its profile:
//!
//! ```json
//! "routes":   [{"model": "claude-*haiku*", "to": "cheap"}, {"when": "input-tokens>60000", "to": "long"}],
//! "fallback": ["glm", "local"]
//! ```
//!
//! Routes are read in order, first match wins, and apply to the requests of the cluster a proxy
//! was started for; a request no route matches stays there. The fallback chain applies to every
//! cluster a proxy serves: when none of a cluster's endpoints can take a request, it continues in
//! the next cluster of the chain. This is the data; which clusters a proxy serves (and their
//! checks, and the edits) is `served.rs`; matching a request against the rules is policy
//! (`policy/route.rs`).

use serde_json::{json, Map, Value};

/// What a route looks at in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The model asked for matches this pattern (`*` any run of characters, as in model maps).
    Model(String),
    When(When),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Extended thinking is on (`thinking` with a type other than `disabled`).
    Thinking,
    /// A message carries an image block (also inside a tool result).
    Image,
    /// The request offers the server web search tool (`web_search_*`).
    WebSearch,
    /// The request offers any tool.
    Tools,
    /// The estimated input tokens (the body's bytes / 4, as client-key budgets estimate) are
    /// more than N.
    InputTokens(u64),
}

impl When {
    pub fn parse(s: &str) -> std::result::Result<When, String> {
        let s = s.trim();
        match s {
            "thinking" => return Ok(When::Thinking),
            "image" => return Ok(When::Image),
            "web-search" => return Ok(When::WebSearch),
            "tools" => return Ok(When::Tools),
            _ => {}
        }
        match s.strip_prefix("input-tokens>").map(|n| n.trim().parse::<u64>()) {
            Some(Ok(n)) => Ok(When::InputTokens(n)),
            _ => Err(format!(
                "--when {:?}: one of thinking, image, web-search, tools, input-tokens>N",
                crate::mask::clean(s)
            )),
        }
    }

    pub fn to_text(self) -> String {
        match self {
            When::Thinking => "thinking".into(),
            When::Image => "image".into(),
            When::WebSearch => "web-search".into(),
            When::Tools => "tools".into(),
            When::InputTokens(n) => format!("input-tokens>{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub rule: Rule,
    /// The cluster that serves what matches.
    pub to: String,
}

impl Route {
    /// A route from `--model GLOB` or `--when X` (exactly one) and `--to`.
    pub fn from_args(model: Option<&str>, when: Option<&str>, to: &str) -> std::result::Result<Route, String> {
        let rule = match (model, when) {
            (Some(m), None) => {
                crate::store::models::check_pattern(m).map_err(|e| format!("--model: {e}"))?;
                Rule::Model(m.to_string())
            }
            (None, Some(w)) => Rule::When(When::parse(w)?),
            _ => return Err("give one of --model GLOB or --when CONDITION".into()),
        };
        Ok(Route { rule, to: to.to_string() })
    }

    /// `model claude-*haiku*` or `when thinking`, as lists show it.
    pub fn describe(&self) -> String {
        match &self.rule {
            Rule::Model(m) => format!("model {m}"),
            Rule::When(w) => format!("when {}", w.to_text()),
        }
    }

    pub fn to_json(&self) -> Value {
        match &self.rule {
            Rule::Model(m) => json!({"model": m, "to": self.to}),
            Rule::When(w) => json!({"when": w.to_text(), "to": self.to}),
        }
    }

    fn from_json(v: &Value) -> std::result::Result<Route, String> {
        let o = v.as_object().ok_or("a route is not a JSON object")?;
        let to = o.get("to").and_then(Value::as_str).ok_or("a route has no \"to\" cluster")?;
        let text = |k: &str| o.get(k).and_then(Value::as_str);
        Route::from_args(text("model"), text("when"), to)
    }
}

/// The profile's `routes` (none when missing).
pub(super) fn routes_of(profile: &Map<String, Value>) -> std::result::Result<Vec<Route>, String> {
    match profile.get("routes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, r)| Route::from_json(r).map_err(|e| format!("\"routes\" {}: {e}", i + 1)))
            .collect(),
        Some(_) => Err("\"routes\" is not a list".into()),
    }
}

/// The profile's `fallback` chain (none when missing).
pub(super) fn fallback_of(profile: &Map<String, Value>) -> std::result::Result<Vec<String>, String> {
    match profile.get("fallback") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|c| c.as_str().map(str::to_string).ok_or_else(|| "\"fallback\" holds something not a name".into()))
            .collect(),
        Some(_) => Err("\"fallback\" is not a list of cluster names".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_say_what_they_are() {
        for (s, w) in [("thinking", When::Thinking), ("input-tokens>60000", When::InputTokens(60000))] {
            assert_eq!(When::parse(s).unwrap(), w);
            assert_eq!(w.to_text(), s);
        }
        for bad in ["", "input-tokens>", "input-tokens>-1", "Tools", "input-tokens<5"] {
            assert!(When::parse(bad).is_err(), "{bad}");
        }
        assert!(Route::from_args(Some("a*"), Some("tools"), "x").is_err());
        assert!(Route::from_args(None, None, "x").is_err());
        assert!(Route::from_args(Some("has space"), None, "x").is_err());
    }
}
