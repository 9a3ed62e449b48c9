//! What an Anthropic-format endpoint is not sent: request rules, from data. Many "Anthropic-
//! compatible" vendors refuse what they do not know (a top-level field, an `anthropic-beta`
//! value, `thinking: {"type": "adaptive"}`) with a 400 that names it. An endpoint carries two
//! sets of rules in its `metadata`: `rules`, set by hand (`endpoint add/set`) or by a preset
//! (from the vendor's documentation), and `learned_rules`, written by the proxy when the vendor
//! refused something it may drop (`policy/refusal.rs`), cleared with `endpoint set
//! --forget-rules`. Both apply; the proxy applies them as a splice of the client's bytes
//! (`proxy/scan/mapping.rs`) and in the request head (`proxy/wire.rs`).
//!
//! ```json
//! "metadata": {"rules": {"drop_fields": ["context_management"], "drop_betas": ["context-1m-2025-08-07"],
//!                        "adaptive_thinking": "enabled", "drop_effort": true}}
//! ```

use serde_json::{json, Map, Value};

/// Never dropped, by hand or by learning: without them the request is another request.
pub const KEPT: [&str; 6] = ["model", "messages", "max_tokens", "system", "tools", "stream"];

/// What `thinking: {"type": "adaptive"}` becomes for a vendor that does not take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdaptiveThinking {
    /// `{"type": "enabled", "budget_tokens": N}`, N from the request's `max_tokens` (none when
    /// that leaves no room for an answer).
    Enabled,
    /// Left out.
    Drop,
}

impl AdaptiveThinking {
    pub fn as_str(self) -> &'static str {
        match self {
            AdaptiveThinking::Enabled => "enabled",
            AdaptiveThinking::Drop => "drop",
        }
    }

    fn parse(s: &str) -> Result<AdaptiveThinking, String> {
        match s.trim() {
            "enabled" => Ok(AdaptiveThinking::Enabled),
            "drop" | "none" => Ok(AdaptiveThinking::Drop),
            other => Err(format!("adaptive thinking {:?}: give enabled or drop", crate::mask::clean(other))),
        }
    }
}

/// One endpoint's rules (one set: hand-written or learned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Top-level request fields left out.
    pub drop_fields: Vec<String>,
    /// `anthropic-beta` values left out.
    pub drop_betas: Vec<String>,
    pub adaptive_thinking: Option<AdaptiveThinking>,
    /// `output_config.effort` left out (and `output_config` with it when nothing else is in it).
    pub drop_effort: bool,
    /// `output_config.effort` moved to this top-level field (a vendor that takes the effort under
    /// its own name, like `reasoning_effort`), out of `output_config` as with `drop_effort`.
    pub effort_to: Option<String>,
}

/// One thing a vendor's refusal named that qcc may drop (`policy::refusal::learn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    Field(String),
    /// Every beta value the refusal named that the request sent (vendors list them in one).
    Betas(Vec<String>),
    /// The thinking type it does not take: `adaptive` becomes `enabled` from now on.
    Thinking,
    Effort,
}

impl Learned {
    pub fn describe(&self) -> String {
        match self {
            Learned::Field(f) => format!("field {f}"),
            Learned::Betas(b) => format!("beta {}", b.join(", ")),
            Learned::Thinking => "adaptive thinking".to_string(),
            Learned::Effort => "output_config.effort".to_string(),
        }
    }
}

/// A field name a rule may name: printable, short, and not one of `KEPT`.
pub fn check_field(name: &str) -> Result<(), String> {
    if KEPT.contains(&name) {
        return Err(format!("field {name:?} is never dropped (without it the request is another request)"));
    }
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "field {:?}: give a top-level field name (letters, digits, _ and -)",
            crate::mask::clean(name)
        ));
    }
    Ok(())
}

/// A beta value a rule may name: a header token (letters, digits, `-`, `_`, `.`).
pub fn check_beta(value: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if value.is_empty() || value.len() > 96 || !value.bytes().all(token) {
        return Err(format!(
            "beta {:?}: give an anthropic-beta value (letters, digits, - _ .)",
            crate::mask::clean(value)
        ));
    }
    Ok(())
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.drop_fields.is_empty()
            && self.drop_betas.is_empty()
            && self.adaptive_thinking.is_none()
            && !self.drop_effort
            && self.effort_to.is_none()
    }

    pub fn drops_field(&self, name: &str) -> bool {
        self.drop_fields.iter().any(|f| f == name)
    }

    pub fn drops_beta(&self, value: &str) -> bool {
        self.drop_betas.iter().any(|b| b.eq_ignore_ascii_case(value))
    }

    /// Add what a refusal taught; false when it was already a rule.
    pub fn learn(&mut self, what: &Learned) -> bool {
        match what {
            Learned::Field(f) if !self.drops_field(f) => self.drop_fields.push(f.clone()),
            Learned::Betas(b) if b.iter().any(|b| !self.drops_beta(b)) => {
                for b in b {
                    if !self.drops_beta(b) {
                        self.drop_betas.push(b.clone());
                    }
                }
            }
            Learned::Thinking if self.adaptive_thinking.is_none() => {
                self.adaptive_thinking = Some(AdaptiveThinking::Enabled)
            }
            Learned::Effort if !self.drop_effort => self.drop_effort = true,
            _ => return false,
        }
        true
    }

    /// Every rule of `other` here too.
    pub fn merge(&mut self, other: &Rules) {
        for f in &other.drop_fields {
            self.learn(&Learned::Field(f.clone()));
        }
        self.learn(&Learned::Betas(other.drop_betas.clone()));
        if self.adaptive_thinking.is_none() {
            self.adaptive_thinking = other.adaptive_thinking;
        }
        self.drop_effort |= other.drop_effort;
        if self.effort_to.is_none() {
            self.effort_to = other.effort_to.clone();
        }
    }

    /// `metadata.rules` (or `learned_rules`): absent or null is none; anything malformed is an
    /// error naming the field.
    pub fn from_json(v: Option<&Value>, field: &str) -> Result<Rules, String> {
        let obj = match v {
            None | Some(Value::Null) => return Ok(Rules::default()),
            Some(Value::Object(o)) => o,
            Some(_) => return Err(format!("\"metadata.{field}\" is not an object")),
        };
        let list = |name: &str, check: fn(&str) -> Result<(), String>| -> Result<Vec<String>, String> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        let s = x.as_str().ok_or(format!("\"metadata.{field}.{name}\" holds a non-string"))?;
                        check(s).map_err(|e| format!("\"metadata.{field}.{name}\": {e}"))?;
                        Ok(s.to_string())
                    })
                    .collect(),
                Some(_) => Err(format!("\"metadata.{field}.{name}\" is not a list")),
            }
        };
        let adaptive_thinking = match obj.get("adaptive_thinking") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(AdaptiveThinking::parse(s).map_err(|e| format!("\"metadata.{field}.adaptive_thinking\": {e}"))?)
            }
            Some(_) => return Err(format!("\"metadata.{field}.adaptive_thinking\" is not a string")),
        };
        let drop_effort = match obj.get("drop_effort") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(format!("\"metadata.{field}.drop_effort\" is not true or false")),
        };
        let effort_to = match obj.get("effort_to") {
            None | Some(Value::Null) => None,
            Some(Value::String(f)) => {
                check_field(f).map_err(|e| format!("\"metadata.{field}.effort_to\": {e}"))?;
                Some(f.clone())
            }
            Some(_) => return Err(format!("\"metadata.{field}.effort_to\" is not a string")),
        };
        Ok(Rules {
            drop_fields: list("drop_fields", check_field)?,
            drop_betas: list("drop_betas", check_beta)?,
            adaptive_thinking,
            drop_effort,
            effort_to,
        })
    }

    /// As `metadata` keeps them (null when there are none).
    pub fn to_json(&self) -> Value {
        if self.is_empty() {
            return Value::Null;
        }
        let mut m = Map::new();
        if !self.drop_fields.is_empty() {
            m.insert("drop_fields".into(), json!(self.drop_fields));
        }
        if !self.drop_betas.is_empty() {
            m.insert("drop_betas".into(), json!(self.drop_betas));
        }
        if let Some(t) = self.adaptive_thinking {
            m.insert("adaptive_thinking".into(), json!(t.as_str()));
        }
        if self.drop_effort {
            m.insert("drop_effort".into(), json!(true));
        }
        if let Some(f) = &self.effort_to {
            m.insert("effort_to".into(), json!(f));
        }
        Value::Object(m)
    }

    /// One line for `endpoint list` and the logs: "drop context_management; drop beta X; ...".
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.drop_fields.iter().map(|f| format!("drop {f}")).collect();
        parts.extend(self.drop_betas.iter().map(|b| format!("drop beta {b}")));
        if let Some(t) = self.adaptive_thinking {
            parts.push(format!("adaptive thinking -> {}", t.as_str()));
        }
        if self.drop_effort {
            parts.push("drop effort".to_string());
        }
        if let Some(f) = &self.effort_to {
            parts.push(format!("effort -> {f}"));
        }
        parts.join("; ")
    }
}

/// The rule flags of `endpoint add/set` (and the dashboard's fields): what they write into an
/// endpoint's `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesChange {
    /// `--no-rules`: the hand-written rules cleared before the rest is added.
    pub clear: bool,
    /// `--drop-field`, `--drop-beta`, `--adaptive-thinking`, `--drop-effort`: added.
    pub add: Rules,
    /// `--forget-rules`: the learned rules cleared.
    pub forget: bool,
}

impl RulesChange {
    pub fn is_empty(&self) -> bool {
        !self.clear && !self.forget && self.add.is_empty()
    }

    /// Write into an endpoint's `metadata` (a rules object that ends up empty is removed).
    pub fn apply(&self, meta: &mut Map<String, Value>) -> Result<(), String> {
        if self.is_empty() {
            return Ok(());
        }
        let mut rules = match self.clear {
            true => Rules::default(),
            false => Rules::from_json(meta.get("rules"), "rules")?,
        };
        for f in &self.add.drop_fields {
            rules.learn(&Learned::Field(f.clone()));
        }
        for b in &self.add.drop_betas {
            rules.learn(&Learned::Betas(vec![b.clone()]));
        }
        if let Some(t) = self.add.adaptive_thinking {
            rules.adaptive_thinking = Some(t);
        }
        rules.drop_effort |= self.add.drop_effort;
        if let Some(f) = &self.add.effort_to {
            rules.effort_to = Some(f.clone());
        }
        match rules.to_json() {
            Value::Null => meta.remove("rules"),
            v => meta.insert("rules".into(), v),
        };
        if self.forget {
            meta.remove("learned_rules");
        }
        Ok(())
    }
}

/// Write learned rules into an endpoint's `metadata` (the proxy, after a refusal).
pub fn set_learned(meta: &mut Map<String, Value>, learned: &Rules) {
    match learned.to_json() {
        Value::Null => meta.remove("learned_rules"),
        v => meta.insert("learned_rules".into(), v),
    };
}

/// `adaptive_thinking` as the CLI and the dashboard give it.
pub fn parse_adaptive_thinking(s: &str) -> Result<AdaptiveThinking, String> {
    AdaptiveThinking::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_write_and_refuse_what_must_stay() {
        let v = json!({"drop_fields": ["context_management"], "drop_betas": ["context-1m-2025-08-07"],
                       "adaptive_thinking": "enabled", "drop_effort": true, "effort_to": "reasoning_effort"});
        let r = Rules::from_json(Some(&v), "rules").unwrap();
        assert_eq!(r.to_json(), v);
        assert!(r.drops_field("context_management") && r.drops_beta("CONTEXT-1M-2025-08-07"));
        assert_eq!(
            r.describe(),
            "drop context_management; drop beta context-1m-2025-08-07; adaptive thinking -> enabled; drop effort; \
             effort -> reasoning_effort"
        );
        for bad in [
            json!({"drop_fields": ["messages"]}),
            json!({"drop_fields": "x"}),
            json!({"drop_betas": ["a b"]}),
            json!({"adaptive_thinking": "maybe"}),
            json!([1]),
        ] {
            let e = Rules::from_json(Some(&bad), "rules").unwrap_err();
            assert!(e.contains("metadata.rules"), "{e}");
        }
        assert_eq!(Rules::from_json(None, "rules").unwrap(), Rules::default());
        assert_eq!(Rules::default().to_json(), Value::Null);
        let mut learned = Rules::default();
        assert!(learned.learn(&Learned::Field("x".into())));
        assert!(!learned.learn(&Learned::Field("x".into())), "once");
        assert!(learned.learn(&Learned::Thinking) && !learned.learn(&Learned::Thinking));
    }

    #[test]
    fn a_change_adds_clears_and_forgets() {
        let mut meta = Map::new();
        meta.insert("learned_rules".into(), json!({"drop_betas": ["b1"]}));
        let add = Rules { drop_fields: vec!["a".into()], ..Default::default() };
        RulesChange { add: add.clone(), ..Default::default() }.apply(&mut meta).unwrap();
        RulesChange { add: Rules { drop_effort: true, ..Default::default() }, ..Default::default() }
            .apply(&mut meta)
            .unwrap();
        assert_eq!(meta["rules"], json!({"drop_fields": ["a"], "drop_effort": true}));
        RulesChange { clear: true, forget: true, ..Default::default() }.apply(&mut meta).unwrap();
        assert!(!meta.contains_key("rules") && !meta.contains_key("learned_rules"));
    }
}
