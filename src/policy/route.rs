//! Which route a request takes (`store/routes.rs`): its body read once, borrowing, for what the
//! rules look at (the model, `thinking`, the tools, image blocks); the first rule that matches
//! wins. Pure: bytes in, a route's index out.
//!
//! A body that is not a JSON object matches no rule. `input-tokens>N` is an estimate: the body's
//! bytes / 4, as a client key's budget estimates a request (JSON syntax and base64 images count,
//! so it runs high, never low).

use std::borrow::Cow;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::store::routes::{Route, Rule, When};

/// What the rules look at in a request, read in one pass.
#[derive(Deserialize, Default)]
struct Look<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Thinking<'a>>,
    #[serde(borrow, default)]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(default)]
    messages: Option<Vec<Message>>,
}

#[derive(Deserialize)]
struct Thinking<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: HasImage,
}

/// A content field (a string, or a list of blocks, a tool result's own content nested) holds
/// an image block.
#[derive(Default)]
struct HasImage(bool);

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    content: HasImage,
}

impl<'de> Deserialize<'de> for HasImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HasImage, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HasImage;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("message content")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HasImage, A::Error> {
                let mut found = false;
                while let Some(b) = seq.next_element::<Block>()? {
                    found |= b.kind.as_deref() == Some("image") || b.content.0;
                }
                Ok(HasImage(found))
            }
            // A string, or anything else: no blocks, so no image.
            fn visit_str<E>(self, _: &str) -> Result<HasImage, E> {
                Ok(HasImage(false))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<HasImage, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(HasImage(false))
            }
            fn visit_unit<E>(self) -> Result<HasImage, E> {
                Ok(HasImage(false))
            }
        }
        d.deserialize_any(V)
    }
}

impl Look<'_> {
    fn matches(&self, rule: &Rule, body_len: usize) -> bool {
        match rule {
            Rule::Model(p) => self.model.as_deref().is_some_and(|m| crate::store::models::matches(p, m)),
            Rule::When(When::Thinking) => {
                self.thinking.as_ref().is_some_and(|t| t.kind.as_deref().is_some_and(|k| k != "disabled"))
            }
            Rule::When(When::Image) => self.messages.iter().flatten().any(|m| m.content.0),
            Rule::When(When::WebSearch) => {
                self.tools.iter().flatten().any(|t| t.kind.as_deref().is_some_and(|k| k.starts_with("web_search")))
            }
            Rule::When(When::Tools) => self.tools.as_ref().is_some_and(|t| !t.is_empty()),
            Rule::When(When::InputTokens(n)) => body_len as u64 / 4 > *n,
        }
    }
}

/// The index of the first of `routes` that `body` matches. The body is parsed only when some
/// rule needs more than its size, and messages are walked only when a rule looks for images.
pub fn first_match(routes: &[Route], body: &[u8]) -> Option<usize> {
    if routes.is_empty() {
        return None;
    }
    let needs_body = routes.iter().any(|r| !matches!(r.rule, Rule::When(When::InputTokens(_))));
    let look = match needs_body {
        false => Look::default(),
        true => {
            let text = std::str::from_utf8(body).ok();
            let images = routes.iter().any(|r| r.rule == Rule::When(When::Image));
            match text.map(|t| read(t, images)) {
                Some(Some(look)) => look,
                // Not JSON: only the size rules can match.
                _ => Look::default(),
            }
        }
    };
    routes.iter().position(|r| look.matches(&r.rule, body.len()))
}

/// The body read for the rules; `messages` skipped unless `images`.
fn read(text: &str, images: bool) -> Option<Look<'_>> {
    if images {
        return serde_json::from_str::<Look>(text).ok();
    }
    #[derive(Deserialize)]
    struct NoMessages<'a> {
        #[serde(borrow, default)]
        model: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        thinking: Option<Thinking<'a>>,
        #[serde(borrow, default)]
        tools: Option<Vec<Tool<'a>>>,
    }
    let l = serde_json::from_str::<NoMessages>(text).ok()?;
    Some(Look { model: l.model, thinking: l.thinking, tools: l.tools, messages: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(rules: &[(&str, &str)]) -> Vec<Route> {
        rules
            .iter()
            .map(|(kind, v)| match *kind {
                "model" => Route::from_args(Some(v), None, "x").unwrap(),
                _ => Route::from_args(None, Some(v), "x").unwrap(),
            })
            .collect()
    }

    #[test]
    fn the_first_matching_rule_wins_and_each_condition_reads_what_it_says() {
        let r = routes(&[("model", "claude-*haiku*"), ("when", "thinking"), ("when", "image"), ("when", "web-search"),
            ("when", "tools"), ("when", "input-tokens>100")]);
        let m = |body: &str| first_match(&r, body.as_bytes());
        assert_eq!(m(r#"{"model":"claude-3-5-haiku-20241022","thinking":{"type":"enabled"}}"#), Some(0));
        assert_eq!(m(r#"{"model":"claude-sonnet-4-5","thinking":{"type":"enabled","budget_tokens":9}}"#), Some(1));
        assert_eq!(m(r#"{"model":"claude-sonnet-4-5","thinking":{"type":"disabled"}}"#), None);
        let image = r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":[
            {"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]}]}"#;
        assert_eq!(m(image), Some(2));
        assert_eq!(m(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"image"}]}]}"#), None);
        assert_eq!(m(r#"{"model":"m","tools":[{"name":"Bash","input_schema":{}},{"type":"web_search_20250305","name":"web_search"}]}"#), Some(3));
        assert_eq!(m(r#"{"model":"m","tools":[{"name":"Bash","input_schema":{"type":"object"}}]}"#), Some(4));
        assert_eq!(m(r#"{"model":"m","tools":[]}"#), None);
        let long = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#, "a".repeat(400));
        assert_eq!(m(&long), Some(5));
        // Not JSON: only the size can match; escapes in the model are read.
        assert_eq!(m(&"x".repeat(500)), Some(5));
        assert_eq!(m("x"), None);
        assert_eq!(m(r#"{"model":"claude-3-5-\u0068aiku"}"#), Some(0));
        assert_eq!(first_match(&[], b"{}"), None);
    }
}
