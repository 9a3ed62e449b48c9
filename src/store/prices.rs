//! What tokens cost, in US dollars per million: a built-in table of Anthropic's current models,
//! which the config can override and extend per model (`settings.prices`). A model no rule
//! matches has no price ("no price"), never a guessed one.
//!
//! The built-in prices were taken from Anthropic's pricing page
//! (https://docs.claude.com/en/docs/about-claude/pricing) as published in November 2025:
//! base input, output, 5-minute cache write and cache read, per million tokens.

use serde_json::Value;

use super::usage::Counts;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

const fn p(input: f64, output: f64, cache_write: f64, cache_read: f64) -> Price {
    Price { input, output, cache_write, cache_read }
}

/// Model patterns (`*` a wildcard) and prices; the first match wins.
const BUILTIN: &[(&str, Price)] = &[
    ("claude-opus-4-5*", p(5.0, 25.0, 6.25, 0.50)),
    ("claude-opus-4*", p(15.0, 75.0, 18.75, 1.50)),
    ("claude-3-opus*", p(15.0, 75.0, 18.75, 1.50)),
    ("claude-sonnet-4*", p(3.0, 15.0, 3.75, 0.30)),
    ("claude-3-7-sonnet*", p(3.0, 15.0, 3.75, 0.30)),
    ("claude-3-5-sonnet*", p(3.0, 15.0, 3.75, 0.30)),
    ("claude-haiku-4-5*", p(1.0, 5.0, 1.25, 0.10)),
    ("claude-3-5-haiku*", p(0.80, 4.0, 1.0, 0.08)),
    ("claude-3-haiku*", p(0.25, 1.25, 0.30, 0.03)),
];

/// The prices in force: the config's rules first, then the built-in ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    own: Vec<(String, Price)>,
}

impl PriceTable {
    /// `settings.prices`: `{"MODEL or PATTERN": {"input": 3, "output": 15, "cache_write": 3.75,
    /// "cache_read": 0.3}}` (a missing kind costs what `input` does for cache writes, a tenth of
    /// it for reads, and 0 for output). An error names the model and the field.
    pub fn from_config(v: Option<&Value>) -> Result<PriceTable, String> {
        let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(PriceTable::default()) };
        let obj = v.as_object().ok_or("\"settings.prices\" is not a JSON object")?;
        let mut own = Vec::new();
        for (model, kinds) in obj {
            let field = |k: &str| -> Result<Option<f64>, String> {
                match kinds.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(n) => match n.as_f64().filter(|n| n.is_finite() && *n >= 0.0) {
                        Some(n) => Ok(Some(n)),
                        None => Err(format!("\"settings.prices\": {model}.{k} is not a number of dollars")),
                    },
                }
            };
            if !kinds.is_object() {
                return Err(format!("\"settings.prices\": {model} is not a JSON object"));
            }
            let input = field("input")?.ok_or(format!("\"settings.prices\": {model} has no \"input\" price"))?;
            own.push((
                model.clone(),
                Price {
                    input,
                    output: field("output")?.unwrap_or(0.0),
                    cache_write: field("cache_write")?.unwrap_or(input),
                    cache_read: field("cache_read")?.unwrap_or(input / 10.0),
                },
            ));
        }
        Ok(PriceTable { own })
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        let rule = |pattern: &str| super::models::ModelRule { pattern: pattern.to_string(), model: String::new() };
        self.own
            .iter()
            .map(|(m, p)| (m.as_str(), *p))
            .chain(BUILTIN.iter().copied())
            .find(|(pattern, _)| rule(pattern).matches(model))
            .map(|(_, p)| p)
    }

    /// What `c` cost for `model`, in USD; `None` for a model without a price.
    pub fn cost(&self, model: &str, c: &Counts) -> Option<f64> {
        let p = self.price(model)?;
        Some(
            (c.input_tokens as f64 * p.input
                + c.output_tokens as f64 * p.output
                + c.cache_creation_input_tokens as f64 * p.cache_write
                + c.cache_read_input_tokens as f64 * p.cache_read)
                / 1_000_000.0,
        )
    }
}

/// Cache-read tokens over all the input that could have come from the cache (read, written,
/// plain): how much the prompt cache saved; `None` with no input.
pub fn cache_hit_rate(c: &Counts) -> Option<f64> {
    let all = c.input_tokens.saturating_add(c.cache_creation_input_tokens).saturating_add(c.cache_read_input_tokens);
    (all > 0).then(|| c.cache_read_input_tokens as f64 / all as f64)
}

/// Dollars for display: `$0.0123`, `$12.35`.
pub fn usd(x: f64) -> String {
    if x < 1.0 {
        format!("${x:.4}")
    } else {
        format!("${x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_prices_overrides_and_unknown_models() {
        let near = |x: Option<f64>, y: f64| x.is_some_and(|x| (x - y).abs() < 1e-9);
        let t = PriceTable::default();
        let c = Counts {
            requests: 1,
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 1_000_000,
        };
        assert!(near(t.cost("claude-sonnet-4-5-20250929", &c), 3.0 + 15.0 + 0.30));
        assert!(near(t.cost("claude-opus-4-5", &c), 5.0 + 25.0 + 0.5));
        assert!(near(t.cost("claude-opus-4-1-20250805", &c), 15.0 + 75.0 + 1.5));
        assert_eq!(t.cost("glm-4.6", &c), None);
        let own = PriceTable::from_config(Some(&serde_json::json!({"glm-*": {"input": 0.6, "output": 2.2},
                                                                    "claude-sonnet-4-5*": {"input": 1, "output": 2}})))
        .unwrap();
        assert!(near(own.cost("glm-4.6", &c), 0.6 + 2.2 + 0.06));
        assert!(near(own.cost("claude-sonnet-4-5", &c), 1.0 + 2.0 + 0.1), "the config wins");
        assert!(near(own.cost("claude-haiku-4-5", &c), 1.0 + 5.0 + 0.1), "built-ins still there");
        for bad in [
            serde_json::json!({"m": {"input": "cheap"}}),
            serde_json::json!({"m": {"output": 1}}),
            serde_json::json!({"m": 3}),
            serde_json::json!({"m": {"input": -1}}),
        ] {
            let e = PriceTable::from_config(Some(&bad)).unwrap_err();
            assert!(e.contains("settings.prices") && e.contains('m'), "{e}");
        }
        assert_eq!(
            cache_hit_rate(&Counts { input_tokens: 1, cache_read_input_tokens: 3, ..Counts::default() }),
            Some(0.75)
        );
        assert_eq!(cache_hit_rate(&Counts::default()), None);
    }
}
