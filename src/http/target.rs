//! The request target qcc forwards: always origin-form (`/path?query`), never anything an
//! upstream could read differently from qcc.
//!
//! - absolute-form (`http://host/path`) is accepted, as servers must (RFC 9112 §3.2.2), and
//!   reduced to its path and query: the upstream is always the endpoint's, whatever host it names;
//! - `CONNECT` (authority-form) is not a proxy qcc is: 405; `OPTIONS *` and any other target that
//!   does not start with `/`: 400;
//! - a `.` or `..` segment, raw or percent-encoded, and an encoded `/` or `\`, would let a path
//!   climb out of an endpoint's base-URL prefix (`/anthropic/../admin`) on an upstream that
//!   normalises: 400. So are a raw `\` and a `#`.
//! - methods are case-sensitive (RFC 9110 §9.1): a lowercase method is not one qcc forwards.

use std::ops::Range;

use super::HeadError;

/// Check `method` and `target` (the byte range of the target inside `raw`); returns the range
/// of the origin-form part to forward.
pub fn origin_form(raw: &[u8], method: &str, target: Range<usize>) -> Result<Range<usize>, HeadError> {
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(HeadError::Malformed("method names are upper case"));
    }
    if method == "CONNECT" {
        return Err(HeadError::NotAllowed("CONNECT: qcc is not a tunnel"));
    }
    let t = &raw[target.clone()];
    let start = match scheme_len(t) {
        Some(n) => {
            let rest = &t[n..];
            match rest.iter().position(|&b| matches!(b, b'/' | b'?')) {
                Some(i) if i > 0 => n + i,
                None if !rest.is_empty() => return Ok(target.end..target.end), // "http://host": path "/"
                _ => return Err(HeadError::Malformed("absolute-form target without a host")),
            }
        }
        None => 0,
    };
    let path = &t[start..];
    if path.first() != Some(&b'/') {
        // absolute-form "http://host?q" has a query and no path: forward as "/?q" is not
        // representable without a copy; refuse it like any non-origin target.
        return Err(HeadError::Malformed("request target must start with /"));
    }
    let end = path.iter().position(|&b| b == b'?').unwrap_or(path.len());
    check_path(&path[..end])?;
    if path.contains(&b'#') {
        return Err(HeadError::Malformed("a fragment in the request target"));
    }
    Ok(target.start + start..target.end)
}

/// `http://` or `https://` (any case): its length.
fn scheme_len(t: &[u8]) -> Option<usize> {
    for scheme in [&b"http://"[..], b"https://"] {
        if t.len() >= scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(scheme.len());
        }
    }
    None
}

fn check_path(path: &[u8]) -> Result<(), HeadError> {
    if path.contains(&b'\\') {
        return Err(HeadError::Malformed("backslash in the path"));
    }
    for segment in path.split(|&b| b == b'/') {
        // Most segments have no escape: looked at as they are, without a copy.
        let decoded =
            if segment.contains(&b'%') { std::borrow::Cow::Owned(percent_decode(segment)?) } else { segment.into() };
        if *decoded == *b"." || *decoded == *b".." {
            return Err(HeadError::Malformed("dot segment in the path"));
        }
        if decoded.iter().any(|&b| b == b'/' || b == b'\\') {
            return Err(HeadError::Malformed("encoded slash in the path"));
        }
    }
    Ok(())
}

/// Decode `%XX` escapes of one segment (only to look at it; the target is forwarded as sent).
fn percent_decode(s: &[u8]) -> Result<Vec<u8>, HeadError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            match (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(HeadError::Malformed("bad percent-encoding in the path")),
            }
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(method: &str, target: &str) -> Result<String, HeadError> {
        let raw = target.as_bytes();
        origin_form(raw, method, 0..raw.len()).map(|r| String::from_utf8_lossy(&raw[r]).into_owned())
    }

    #[test]
    fn origin_and_absolute_form() {
        assert_eq!(forwarded("POST", "/v1/messages?beta=true").unwrap(), "/v1/messages?beta=true");
        assert_eq!(forwarded("POST", "http://example.com/v1/messages").unwrap(), "/v1/messages");
        assert_eq!(forwarded("GET", "HTTPS://example.com:8443/v1/models?x=1").unwrap(), "/v1/models?x=1");
        assert_eq!(forwarded("GET", "http://example.com").unwrap(), "");
        assert!(forwarded("GET", "http:///v1").is_err());
        // Dots that are not whole segments are fine.
        assert_eq!(forwarded("GET", "/v1/files/a..b/.well").unwrap(), "/v1/files/a..b/.well");
        assert_eq!(forwarded("GET", "/v1/x?next=/../y").unwrap(), "/v1/x?next=/../y");
    }

    #[test]
    fn traversal_in_every_spelling_is_refused() {
        for t in [
            "/../admin",
            "/v1/../../admin/users",
            "/%2e%2e/admin",
            "/%2E./admin",
            "/.%2e/admin",
            "/v1/./messages",
            "/v1/%2F..%2Fadmin",
            "/v1%5c..%5cadmin",
            "/v1\\..\\admin",
            "/v1/%zz",
            "http://h/../admin",
            "/v1/messages#frag",
        ] {
            assert!(matches!(forwarded("GET", t), Err(HeadError::Malformed(_))), "{t}");
        }
    }

    #[test]
    fn connect_options_star_and_lowercase_methods() {
        assert_eq!(forwarded("CONNECT", "example.com:443"), Err(HeadError::NotAllowed("CONNECT: qcc is not a tunnel")));
        assert!(matches!(forwarded("OPTIONS", "*"), Err(HeadError::Malformed(_))));
        assert!(matches!(forwarded("post", "/v1/messages"), Err(HeadError::Malformed(_))));
        assert!(matches!(forwarded("GET", "example.com:443"), Err(HeadError::Malformed(_))));
    }
}
