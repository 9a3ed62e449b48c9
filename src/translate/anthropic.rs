//! The Messages API itself: an Anthropic endpoint (or a relay that speaks it) gets the client's
//! request as it came, its path as sent, the endpoint's key both ways the API and compatible
//! relays read it, and `anthropic-version` when the client sent none.

/// The version header added when the client sent none.
pub const VERSION_HEADER: &[u8] = b"anthropic-version: 2023-06-01\r\n";

/// The key as `x-api-key` and as a bearer token.
pub fn key_headers(key: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"x-api-key: ");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\nAuthorization: Bearer ");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A recovery probe's body: the smallest real Messages request.
pub fn probe_body(model: &str) -> String {
    serde_json::json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "ping"}]}).to_string()
}
