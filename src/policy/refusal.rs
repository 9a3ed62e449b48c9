//! What a vendor's 400 refused, when it is something qcc may leave out. Vendors word it their own
//! way (a pydantic "Extra inputs are not permitted", "Unexpected value(s) `X` for the
//! `anthropic-beta` header", "invalid thinking: only type=enabled is allowed", serde's "unknown
//! field `X`"), so the message is not parsed for its grammar: it is read for the things the
//! request actually sent. A refusal that names exactly one of the request's own top-level fields
//! (never one of `rules::KEPT`), or beta values it sent, or its adaptive thinking, or its
//! `output_config.effort`, together with a word of refusal, is learned; anything else (a bad
//! message, a prompt too long) is the vendor's answer and goes to the client as it is. Pure.

use crate::store::rules::{Learned, KEPT};

/// Words that say "I do not take this" (lowercase).
const REFUSING: [&str; 12] = [
    "extra inputs",
    "extra_forbidden",
    "not permitted",
    "unexpected",
    "unknown",
    "unrecognized",
    "not supported",
    "unsupported",
    "not allowed",
    "is allowed",
    "must be",
    "invalid",
];

/// What the request sent that a refusal may name.
pub struct Sent<'a> {
    /// Its top-level field names.
    pub fields: &'a [&'a str],
    /// Its `anthropic-beta` values.
    pub betas: &'a [&'a str],
    /// `thinking.type` is `adaptive`.
    pub adaptive: bool,
    /// `output_config.effort` is there.
    pub effort: bool,
}

/// What `body` (a 400's body) refused, when it is one thing qcc may drop.
pub fn learn(body: &[u8], sent: &Sent) -> Option<Learned> {
    let text = message(body);
    let lower = text.to_ascii_lowercase();
    if !REFUSING.iter().any(|w| lower.contains(w)) {
        return None;
    }
    if lower.contains("anthropic-beta") || lower.contains("beta header") {
        // Every beta it names that the request sent (vendors list them all in one refusal).
        let named: Vec<String> = sent.betas.iter().filter(|b| names(&text, b)).map(|b| b.to_string()).collect();
        return (!named.is_empty()).then_some(Learned::Betas(named));
    }
    if sent.effort && lower.contains("effort") && (lower.contains("output_config") || !lower.contains("thinking")) {
        return Some(Learned::Effort);
    }
    if sent.adaptive && lower.contains("thinking") && (lower.contains("adaptive") || lower.contains("type")) {
        return Some(Learned::Thinking);
    }
    let named_fields: Vec<&str> =
        sent.fields.iter().copied().filter(|f| !KEPT.contains(f) && *f != "thinking" && names(&text, f)).collect();
    match named_fields.as_slice() {
        [one] => Some(Learned::Field(one.to_string())),
        _ => None, // none, or several: not sure which one it refused
    }
}

/// `text` has `word` as a word of its own (not part of a longer name).
fn names(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        // "output_config.effort" names output_config's effort, not a field called "effort";
        // a dot after the word (the word's own member) still names the word.
        !before.is_some_and(ident) && !after.is_some_and(|c| ident(c) && c != '.')
    })
}

/// The refusal's words: its JSON's messages (`error.message`, `message`, `detail[].msg` with
/// `detail[].loc`, `error` as a string), or the body as text when it is not JSON.
fn message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    };
    let mut out = String::new();
    let mut add = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    for path in ["/error/message", "/message", "/error", "/msg"] {
        if let Some(s) = v.pointer(path).and_then(|m| m.as_str()) {
            add(s);
        }
    }
    if let Some(items) = v.get("detail").and_then(|d| d.as_array()) {
        for d in items {
            let loc: Vec<String> = d
                .get("loc")
                .and_then(|l| l.as_array())
                .map(|l| l.iter().filter_map(|x| x.as_str()).filter(|x| *x != "body").map(str::to_string).collect())
                .unwrap_or_default();
            let msg = d.get("msg").and_then(|m| m.as_str()).unwrap_or_default();
            let kind = d.get("type").and_then(|m| m.as_str()).unwrap_or_default();
            add(&format!("{}: {msg} ({kind})", loc.join(".")));
        }
    } else if let Some(s) = v.get("detail").and_then(|m| m.as_str()) {
        add(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [&str; 10] = [
        "model",
        "messages",
        "system",
        "tools",
        "metadata",
        "max_tokens",
        "thinking",
        "context_management",
        "output_config",
        "stream",
    ];
    const BETAS: [&str; 3] = ["claude-code-20250219", "context-1m-2025-08-07", "effort-2025-11-24"];

    fn sent() -> Sent<'static> {
        Sent { fields: &FIELDS, betas: &BETAS, adaptive: true, effort: true }
    }

    fn anthropic(msg: &str) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}}),
        )
        .unwrap()
    }

    #[test]
    fn what_vendors_say_is_learned_as_one_thing() {
        let l = |body: &[u8]| learn(body, &sent());
        assert_eq!(
            l(&anthropic("context_management: Extra inputs are not permitted")),
            Some(Learned::Field("context_management".into()))
        );
        assert_eq!(
            l(&anthropic("Unexpected value(s) `context-1m-2025-08-07` for the `anthropic-beta` header")),
            Some(Learned::Betas(vec!["context-1m-2025-08-07".into()]))
        );
        assert_eq!(
            l(&anthropic(
                "Unexpected value(s) `effort-2025-11-24`, `context-1m-2025-08-07` for the `anthropic-beta` header"
            )),
            Some(Learned::Betas(vec!["context-1m-2025-08-07".into(), "effort-2025-11-24".into()])),
            "all it names, at once"
        );
        assert_eq!(l(&anthropic("`thinking.type` must be enabled or disabled")), Some(Learned::Thinking));
        assert_eq!(
            l(&anthropic("invalid thinking: only type=enabled is allowed for this model")),
            Some(Learned::Thinking)
        );
        assert_eq!(l(&anthropic("output_config.effort: Extra inputs are not permitted")), Some(Learned::Effort));
        // pydantic's list, serde's wording, OpenAI-style wording, a plain text body.
        let pyd = br#"{"detail":[{"type":"extra_forbidden","loc":["body","context_management"],"msg":"Extra inputs are not permitted"}]}"#;
        assert_eq!(l(pyd), Some(Learned::Field("context_management".into())));
        assert_eq!(
            l(&anthropic("unknown field `metadata`, expected one of `model`, `messages`")),
            Some(Learned::Field("metadata".into())),
            "the expected list names kept fields only"
        );
        assert_eq!(
            l(b"Unrecognized request argument supplied: context_management"),
            Some(Learned::Field("context_management".into()))
        );
    }

    #[test]
    fn content_errors_and_kept_fields_are_never_learned() {
        let l = |body: &[u8]| learn(body, &sent());
        for msg in [
            "prompt is too long: 250000 tokens > 200000 maximum",
            "messages.3.content: Input should be a valid list",
            "max_tokens: Input should be less than 32000",
            "model: unknown model claude-opus-4-8",
            "tools.0.input_schema: Extra inputs are not permitted",
            "metadata and context_management: Extra inputs are not permitted", // two: not sure
            "Unexpected value(s) `something-else` for the `anthropic-beta` header", // not sent
            "rate limited",
        ] {
            assert_eq!(l(&anthropic(msg)), None, "{msg}");
        }
        // The thinking type only when the request's was adaptive.
        let plain = Sent { adaptive: false, ..sent() };
        assert_eq!(learn(&anthropic("`thinking.type` must be enabled or disabled"), &plain), None);
    }
}
