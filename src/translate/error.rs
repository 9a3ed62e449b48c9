//! An OpenAI-format error as the Messages API's: `{"type":"error","error":{"type":…,"message":…}}`,
//! its type from the status (or, in a stream, from the error's own `type`/`code`). The one table
//! of status -> Messages error type, for translated answers and qcc's own (`proxy/wire.rs`). A
//! provider's context-length error is worded as Anthropic words it ("prompt is too long: N tokens
//! > M maximum"), which is what Claude Code matches to compact the conversation.

use serde_json::{json, Value};

/// The Messages error type for an HTTP status (Anthropic's table, with 408 and 503 for what qcc
/// answers itself: a request not received in time, no endpoint that may serve).
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ if status >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// A provider's words for a conversation over the model's context, as Anthropic words it:
/// `prompt is too long: N tokens > M maximum` when the numbers are in the message (OpenAI's "maximum
/// context length is M tokens. However, your messages resulted in N tokens", vLLM's "... you
/// requested N tokens"), else `prompt is too long: ` and the provider's message. `None`: not that.
pub fn context_overflow(message: &str, code: Option<&str>) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let said = code.is_some_and(|c| c == "context_length_exceeded" || c == "string_above_max_length")
        || [
            "context length",
            "context window",
            "maximum context",
            "context_length_exceeded",
            "prompt is too long",
            "too many tokens",
        ]
        .iter()
        .any(|p| lower.contains(p));
    if !said {
        return None;
    }
    if lower.starts_with("prompt is too long") {
        return Some(message.to_string());
    }
    let numbers: Vec<(usize, u64)> = numbers(&lower);
    let limit =
        ["maximum context length is", "context length is", "maximum context length of", "limit of", "maximum of"]
            .iter()
            .find_map(|p| lower.find(p).map(|at| at + p.len()))
            .and_then(|from| numbers.iter().find(|(at, _)| *at >= from).copied());
    let actual = limit.and_then(|(at, m)| numbers.iter().find(|(i, n)| *i != at && *n > m).map(|&(_, n)| n));
    Some(match (actual, limit) {
        (Some(n), Some((_, m))) => format!("prompt is too long: {n} tokens > {m} maximum"),
        _ => format!("prompt is too long: {message}"),
    })
}

/// The whole numbers in `text` (digits with `,` between thousands allowed), with where each starts.
fn numbers(text: &str) -> Vec<(usize, u64)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            let mut n: u64 = 0;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit() || (bytes[i] == b',' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                if bytes[i] != b',' {
                    n = n.saturating_mul(10).saturating_add(u64::from(bytes[i] - b'0'));
                }
                i += 1;
            }
            out.push((start, n));
        } else {
            i += 1;
        }
    }
    out
}

/// The type and message of an error object (`{"message","type","code"}`, or a bare string).
/// `status` 0: in a stream, where the type comes from the error's own words.
pub fn kind_and_message(err: &Value, status: u16) -> (&'static str, String) {
    let message = match err {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => err.to_string(),
        },
        other => other.to_string(),
    };
    let message = crate::mask::clip(&message, 2000).to_string();
    if status != 0 {
        return (kind_for_status(status), message);
    }
    let words = [err.get("type"), err.get("code")]
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let code = err.get("code").and_then(Value::as_u64).unwrap_or(0) as u16;
    let kind = if words.contains("rate") || code == 429 {
        "rate_limit_error"
    } else if words.contains("overload") || words.contains("unavailable") || code == 503 || code == 529 {
        "overloaded_error"
    } else {
        "api_error"
    };
    (kind, message)
}

/// An error body of `status` in the Messages shape, from whatever the upstream sent: an
/// OpenAI-style `{"error": …}`, a `{"detail": …}` or `{"message": …}`, or plain text.
pub fn to_messages(status: u16, body: &[u8]) -> Vec<u8> {
    let (message, code) = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let err = v.get("error").or_else(|| v.get("detail")).or_else(|| v.get("message")).unwrap_or(&v);
            let code = err.get("code").and_then(Value::as_str).map(str::to_string);
            (kind_and_message(err, status).1, code)
        }
        Err(_) => (crate::mask::clip(String::from_utf8_lossy(body).trim(), 2000).to_string(), None),
    };
    let message = if message.is_empty() { format!("upstream answered {status}") } else { message };
    let message = match status {
        400 | 413 | 422 => context_overflow(&message, code.as_deref()).unwrap_or(message),
        _ => message,
    };
    json!({"type": "error", "error": {"type": kind_for_status(status), "message": message}}).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_become_the_messages_shape_typed_by_status() {
        let v: Value = serde_json::from_slice(&to_messages(
            429,
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        ))
        .unwrap();
        assert_eq!(v, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}}));
        let v: Value = serde_json::from_slice(&to_messages(401, b"bad key")).unwrap();
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["message"], "bad key");
        let v: Value = serde_json::from_slice(&to_messages(500, b"")).unwrap();
        assert_eq!(v["error"], json!({"type": "api_error", "message": "upstream answered 500"}));
        assert_eq!(kind_for_status(503), "overloaded_error");
        assert_eq!(kind_and_message(&json!({"message": "slow down", "code": 429}), 0).0, "rate_limit_error");
    }

    /// Every status has its type, from the one table.
    #[test]
    fn every_status_has_its_type() {
        let want = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (405, "invalid_request_error"),
            (408, "timeout_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (431, "invalid_request_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ];
        for (status, kind) in want {
            assert_eq!(kind_for_status(status), kind, "{status}");
        }
    }

    /// Context-length errors as providers word them become Anthropic's wording, with the numbers
    /// Claude Code reads (`prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)`).
    #[test]
    fn context_overflow_is_worded_as_anthropic_words_it() {
        let openai = br#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130,512 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        let v: Value = serde_json::from_slice(&to_messages(400, openai)).unwrap();
        assert_eq!(
            v["error"],
            json!({"type": "invalid_request_error", "message": "prompt is too long: 130512 tokens > 128000 maximum"})
        );
        let vllm = br#"{"object":"error","message":"This model's maximum context length is 32768 tokens. However, you requested 40000 tokens (38000 in the messages, 2000 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","code":400}"#;
        let v: Value = serde_json::from_slice(&to_messages(400, vllm)).unwrap();
        assert_eq!(v["error"]["message"], "prompt is too long: 40000 tokens > 32768 maximum");
        let vague = br#"{"error":{"message":"Input exceeds the context window","code":"context_length_exceeded"}}"#;
        let v: Value = serde_json::from_slice(&to_messages(400, vague)).unwrap();
        assert_eq!(v["error"]["message"], "prompt is too long: Input exceeds the context window");
        let other: Value =
            serde_json::from_slice(&to_messages(400, br#"{"error":{"message":"bad temperature"}}"#)).unwrap();
        assert_eq!(other["error"]["message"], "bad temperature");
    }
}
