//! Which route a request takes (`store/routes.rs`), and where its model is: its body read once,
//! borrowing, for what the rules look at (the model, `thinking`, the tools, image blocks) and,
//! in the same read, the `model` value's place in the body (what an endpoint's model map splices
//! over: `scan/mapping.rs`) and its `max_tokens` (what an estimate needs: `limits::estimate`).
//! The first rule that matches wins. Pure: bytes in, answers out.
//!
//! A body that is not a JSON object matches no rule. `input-tokens>N` is an estimate: the body's
//! bytes / 4, as a client key's budget estimates a request (JSON syntax and base64 images count,
//! so it runs high, never low).

use std::borrow::Cow;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::store::routes::{Route, Rule, When};

/// A request's `model`: its value's place in the body (`at`, `len`: the raw JSON string, quotes
/// and escapes included) and the name it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAt {
    pub at: usize,
    pub len: usize,
    pub name: String,
}

/// What one read of a request found: the route it takes (an index into the routes), where its
/// model is and its `max_tokens` (each when asked for, and there), and (when asked for) where
/// each top-level field is.
#[derive(Debug, Default)]
pub struct Looked {
    pub route: Option<usize>,
    pub model: Option<ModelAt>,
    pub max_tokens: Option<u64>,
    pub fields: Vec<FieldAt>,
}

/// A top-level field's place in the body: its key's first byte (`at`, the opening quote) and its
/// value's bytes (`value`), so a rule can leave it out or replace its value as a splice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldAt {
    pub name: String,
    pub at: usize,
    pub value: (usize, usize),
}

/// What a read is asked for besides the routes: the model's place (a model map splices there),
/// and what an estimate needs (`max_tokens`, and the model for its price).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    pub model: bool,
    pub estimate: bool,
    /// Every top-level field's place (an endpoint's request rules: `store/rules.rs`). The whole
    /// body is read then.
    pub fields: bool,
}

impl Want {
    /// Everything `other` asks for is asked here too.
    pub fn covers(self, other: Want) -> bool {
        (self.model || !other.model) && (self.estimate || !other.estimate) && (self.fields || !other.fields)
    }

    pub fn or(self, other: Want) -> Want {
        Want {
            model: self.model || other.model,
            estimate: self.estimate || other.estimate,
            fields: self.fields || other.fields,
        }
    }
}

/// What the rules look at in a request, read in one pass.
#[derive(Default)]
struct Look<'a> {
    model: Option<Cow<'a, str>>,
    /// Where the model's raw value is in the body.
    span: Option<(usize, usize)>,
    thinking: Option<Thinking<'a>>,
    tools: Option<Vec<Tool<'a>>>,
    messages: Option<Vec<Message>>,
    /// `Some(None)`: there, but not a count.
    max_tokens: Option<Option<u64>>,
    fields: Vec<FieldAt>,
}

/// Which of `Look`'s fields the rules (and the `Want`) need.
#[derive(Clone, Copy, Default)]
struct Needs {
    model: bool,
    thinking: bool,
    tools: bool,
    messages: bool,
    max_tokens: bool,
    fields: bool,
}

impl Needs {
    fn of(routes: &[Route]) -> Needs {
        let mut n = Needs::default();
        for r in routes {
            match r.rule {
                Rule::Model(_) => n.model = true,
                Rule::When(When::Thinking) => n.thinking = true,
                Rule::When(When::Tools | When::WebSearch) => n.tools = true,
                Rule::When(When::Image) => n.messages = true,
                Rule::When(When::InputTokens(_)) => {}
            }
        }
        n
    }

    fn count(self) -> usize {
        [self.model, self.thinking, self.tools, self.messages, self.max_tokens].iter().filter(|&&b| b).count()
    }
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

/// A JSON string borrowed from the body when it has no escapes (a key, the model): `Cow<str>`'s
/// own `Deserialize` always copies.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Str<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Claude Code's body starts `{"model":"NAME",`: read so without a parser (no escapes in the
/// name; anything else is left to the parser). The model's place and name.
pub fn model_first(b: &[u8]) -> Option<(usize, usize, &str)> {
    let ws = |i: &mut usize| {
        while b.get(*i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    i += usize::from(b.get(i) == Some(&b'{'));
    ws(&mut i);
    i = b[i..].starts_with(b"\"model\"").then_some(i + 7)?;
    ws(&mut i);
    i = (b.get(i) == Some(&b':')).then_some(i + 1)?;
    ws(&mut i);
    (b.get(i) == Some(&b'"')).then_some(())?;
    let end = i + 1 + b[i + 1..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let name = std::str::from_utf8(&b[i + 1..end]).ok()?;
    (b[end] == b'"').then_some((i, end + 1 - i, name))
}

/// The route `body` takes among `routes`, and what `want` asks for, from one read. The body is
/// read only when a rule or the want needs more than its size, and only as far as it must: the
/// top-level object's keys are read in order, each value skipped unless it is needed, and the
/// read stops once everything needed was seen (Claude Code sends `model` first: a model route or
/// a model map reads a few bytes; `max_tokens` comes later).
pub fn look(routes: &[Route], body: &[u8], want: Want) -> Looked {
    let mut needs = Needs::of(routes);
    needs.model |= want.model || want.estimate;
    needs.max_tokens = want.estimate;
    needs.fields = want.fields;
    let mut look = Look::default();
    if routes.is_empty() && needs.model && !needs.max_tokens && !needs.fields {
        // The model alone, where Claude Code puts it: no parser, nothing allocated but its name.
        if let Some((at, len, name)) = model_first(body) {
            return Looked { model: Some(ModelAt { at, len, name: name.to_string() }), ..Looked::default() };
        }
    }
    if needs.count() > 0 || needs.fields {
        if let Ok(text) = std::str::from_utf8(body) {
            read(text, needs, &mut look);
        }
    }
    let route = routes.iter().position(|r| look.matches(&r.rule, body.len()));
    let model = match (needs.model, look.span, look.model) {
        (true, Some((at, len)), Some(name)) => Some(ModelAt { at, len, name: name.into_owned() }),
        _ => None,
    };
    Looked { route, model, max_tokens: look.max_tokens.flatten(), fields: look.fields }
}

/// Read into `look` what `needs` asks for. Not JSON, or not an object: `look` keeps what was
/// read before the problem (nothing, usually), so only the size rules can match.
fn read<'a>(text: &'a str, needs: Needs, look: &mut Look<'a>) {
    struct Reader<'l, 'a> {
        needs: Needs,
        look: &'l mut Look<'a>,
        text: &'a str,
    }
    impl<'de, 'l> Visitor<'de> for Reader<'l, 'de> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a request object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut left = self.needs.count();
            while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                let n = self.needs;
                if n.fields {
                    // Every value's raw text, its place kept; what a rule or the want needs is
                    // read from that text.
                    let raw: &'de serde_json::value::RawValue = map.next_value()?;
                    let text = raw.get();
                    let at = text.as_ptr() as usize - self.text.as_ptr() as usize;
                    if let Some(start) = key_start(self.text.as_bytes(), at) {
                        self.look.fields.push(FieldAt {
                            name: key.to_string(),
                            at: start,
                            value: (at, at + text.len()),
                        });
                    }
                    let look = &mut *self.look;
                    match &*key {
                        "model" if n.model && look.model.is_none() => {
                            look.model = serde_json::from_str::<Str<'de>>(text).ok().map(|s| s.0);
                            look.span = look.model.is_some().then_some((at, text.len()));
                        }
                        "thinking" if n.thinking => look.thinking = serde_json::from_str(text).ok(),
                        "tools" if n.tools => look.tools = serde_json::from_str(text).ok(),
                        "messages" if n.messages => look.messages = serde_json::from_str(text).ok(),
                        "max_tokens" if n.max_tokens => look.max_tokens = Some(serde_json::from_str::<u64>(text).ok()),
                        _ => {}
                    }
                    continue;
                }
                match &*key {
                    "model" if n.model && self.look.model.is_none() => {
                        // Its raw text (borrowed from the body: its place is its address's
                        // distance), then the name it says (a string; anything else: none).
                        let raw: &'de serde_json::value::RawValue = map.next_value()?;
                        let at = raw.get().as_ptr() as usize - self.text.as_ptr() as usize;
                        self.look.model = serde_json::from_str::<Str<'de>>(raw.get()).ok().map(|s| s.0);
                        self.look.span = self.look.model.is_some().then_some((at, raw.get().len()));
                    }
                    "thinking" if n.thinking && self.look.thinking.is_none() => {
                        self.look.thinking = map.next_value()?
                    }
                    "tools" if n.tools && self.look.tools.is_none() => self.look.tools = map.next_value()?,
                    "max_tokens" if n.max_tokens && self.look.max_tokens.is_none() => {
                        let raw: &'de serde_json::value::RawValue = map.next_value()?;
                        self.look.max_tokens = Some(serde_json::from_str::<u64>(raw.get()).ok());
                    }
                    "messages" if n.messages && self.look.messages.is_none() => {
                        self.look.messages = map.next_value()?
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                }
                left -= 1;
                if left == 0 {
                    // Everything needed is here: stop reading (the rest is the upstream's to judge).
                    return Err(serde::de::Error::custom(ENOUGH));
                }
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = serde::Deserializer::deserialize_map(&mut de, Reader { needs, look, text });
}

/// Where the key of the value at `value` starts (its opening quote): back over `:` and white
/// space to the key's closing quote, then to the quote that opens it (one not escaped).
fn key_start(text: &[u8], value: usize) -> Option<usize> {
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut i = value;
    while i > 0 && ws(text[i - 1]) {
        i -= 1;
    }
    i = i.checked_sub(1).filter(|&i| text[i] == b':')?;
    while i > 0 && ws(text[i - 1]) {
        i -= 1;
    }
    let close = i.checked_sub(1).filter(|&i| text[i] == b'"')?;
    let mut j = close;
    while j > 0 {
        j -= 1;
        if text[j] == b'"' {
            let slashes = text[..j].iter().rev().take_while(|&&b| b == b'\\').count();
            if slashes % 2 == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// The reader's word for "stopped early, on purpose".
const ENOUGH: &str = "qcc: read enough";

#[cfg(test)]
mod tests {
    use super::*;

    fn first_match(routes: &[Route], body: &[u8]) -> Option<usize> {
        look(routes, body, Want::default()).route
    }

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
        let r = routes(&[
            ("model", "claude-*haiku*"),
            ("when", "thinking"),
            ("when", "image"),
            ("when", "web-search"),
            ("when", "tools"),
            ("when", "input-tokens>100"),
        ]);
        let m = |body: &str| first_match(&r, body.as_bytes());
        assert_eq!(m(r#"{"model":"claude-3-5-haiku-20241022","thinking":{"type":"enabled"}}"#), Some(0));
        assert_eq!(m(r#"{"model":"claude-sonnet-4-5","thinking":{"type":"enabled","budget_tokens":9}}"#), Some(1));
        assert_eq!(m(r#"{"model":"claude-sonnet-4-5","thinking":{"type":"disabled"}}"#), None);
        let image = r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":[
            {"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]}]}"#;
        assert_eq!(m(image), Some(2));
        assert_eq!(m(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"image"}]}]}"#), None);
        assert_eq!(
            m(
                r#"{"model":"m","tools":[{"name":"Bash","input_schema":{}},{"type":"web_search_20250305","name":"web_search"}]}"#
            ),
            Some(3)
        );
        assert_eq!(m(r#"{"model":"m","tools":[{"name":"Bash","input_schema":{"type":"object"}}]}"#), Some(4));
        assert_eq!(m(r#"{"model":"m","tools":[]}"#), None);
        let long = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#, "a".repeat(400));
        assert_eq!(m(&long), Some(5));
        // Not JSON: only the size can match; escapes in the model are read.
        assert_eq!(m(&"x".repeat(500)), Some(5));
        assert_eq!(m("x"), None);
        assert_eq!(m(r#"{"model":"claude-3-5-\u0068aiku"}"#), Some(0));
        assert_eq!(first_match(&[], b"{}"), None);
        assert_eq!(m("[1,2]"), None);
    }

    #[test]
    fn claude_codes_model_first_is_read_without_a_parser_and_anything_else_with_one() {
        assert_eq!(model_first(br#"{"model":"claude-opus-4-8","x":1}"#), Some((9, 17, "claude-opus-4-8")));
        assert_eq!(model_first(b"{ \"model\" :\n \"m\" }"), Some((13, 3, "m")));
        for other in
            [&br#"{"model":"a\u0062"}"#[..], br#"{"max_tokens":1,"model":"m"}"#, br#"{"model":3}"#, br#"{"model":"m"#]
        {
            assert_eq!(model_first(other), None, "{}", String::from_utf8_lossy(other));
        }
        // The same answer either way.
        let want = Want { model: true, ..Want::default() };
        for body in [&br#"{"model":"claude-x","messages":[]}"#[..], br#"{"messages":[],"model":"claude-x"}"#] {
            let m = look(&[], body, want).model.expect("a model");
            assert_eq!((m.name.as_str(), &body[m.at..m.at + m.len]), ("claude-x", &br#""claude-x""#[..]));
        }
    }

    #[test]
    fn the_model_is_found_where_it_is_and_read_as_it_says() {
        let body = br#"{"max_tokens":9, "model" : "claude-\u0068aiku-4-5","messages":[]}"#;
        let m = look(&[], body, Want { model: true, ..Want::default() }).model.expect("a model");
        assert_eq!(m.name, "claude-haiku-4-5");
        assert_eq!(&body[m.at..m.at + m.len], br#""claude-\u0068aiku-4-5""#);
        for none in [&br#"{"model":3}"#[..], b"{}", b"[]", b"not json", br#"{"model":"#] {
            assert_eq!(
                look(&[], none, Want { model: true, ..Want::default() }).model,
                None,
                "{:?}",
                String::from_utf8_lossy(none)
            );
        }
        assert_eq!(look(&[], body, Want::default()).model, None, "not asked for: not read");
    }

    #[test]
    fn the_body_is_read_only_as_far_as_the_rules_need() {
        let r = routes(&[("model", "claude-*haiku*")]);
        // Stopped at the model: what follows is never read (here, it is not even JSON).
        assert_eq!(first_match(&r, br#"{"model":"claude-haiku-4-5","messages":[oops"#), Some(0));
        assert_eq!(
            first_match(&r, br#"{"max_tokens":9,"messages":[{"content":"x"}],"model":"claude-haiku-4-5"}"#),
            Some(0)
        );
        let r = routes(&[("model", "claude-*haiku*"), ("when", "thinking")]);
        assert_eq!(
            first_match(&r, br#"{"model":"claude-opus-4-8","messages":[],"thinking":{"type":"adaptive"}}"#),
            Some(1)
        );
        assert_eq!(first_match(&r, br#"{"model":"claude-opus-4-8","thinking":{"type":"enabled"},"x":[oops"#), Some(1));
    }
}
