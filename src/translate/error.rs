//! An OpenAI-format error as the Messages API's: `{"type":"error","error":{"type":…,"message":…}}`,
//! its type from the status (or, in a stream, from the error's own `type`/`code`).

use serde_json::{json, Value};

/// The Messages error type for an HTTP status.
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 | 403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ if status >= 500 => "api_error",
        _ => "invalid_request_error",
    }
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
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let err = v.get("error").or_else(|| v.get("detail")).or_else(|| v.get("message")).unwrap_or(&v);
            kind_and_message(err, status).1
        }
        Err(_) => crate::mask::clip(String::from_utf8_lossy(body).trim(), 2000).to_string(),
    };
    let message = if message.is_empty() { format!("upstream answered {status}") } else { message };
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
}
