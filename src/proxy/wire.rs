//! Bytes the proxy writes itself: the upstream request head, the client response head,
//! and local responses (errors in the Anthropic shape, status JSON).

use std::io::Write as _;

use crate::http::{is_hop_by_hop, BodyFraming, RequestHead, ResponseHead};
use crate::store::cluster::EndpointConfig;

/// The request head sent upstream: path prefixed, `Host` the upstream's, hop-by-hop headers
/// and headers named in `Connection` dropped, the client's key replaced by the endpoint's
/// (both `x-api-key` and `Authorization: Bearer`), `anthropic-version` added only when absent.
/// `Expect` is dropped: the proxy answers `100-continue` itself. A Messages request asks for
/// `Accept-Encoding: identity` whatever the client accepts: its usage is read as it passes (a
/// compressed reply's never was, and Claude Code asks for gzip, br and zstd on every request),
/// and compression buys next to nothing on the proxy's last hop.
///
/// Framing is qcc's own: the client's `Content-Length`/`Transfer-Encoding` lines are never
/// copied; the head says what `req.framing` decided, whatever the client's `Connection` names.
/// (A framing header dropped as "hop-by-hop" while its body is still forwarded lets the body
/// be read upstream as a second request on a pooled connection.)
/// `length`: the body's length when qcc rewrote it (a model renamed for this endpoint).
/// `anthropic-beta` values the endpoint's rules drop are left out (the header too when none is
/// left), and `tag_beta` (what a model tag stood for: `[1m]`'s 1M context) is added where the
/// endpoint takes it.
pub fn upstream_request_head(
    req: &RequestHead,
    ep: &EndpointConfig,
    length: Option<u64>,
    tag_beta: Option<&str>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(req.method_bytes());
    out.push(b' ');
    out.extend_from_slice(ep.url.path_prefix.as_bytes());
    // Origin-form, checked by the parser (`http::target`); empty for "http://host". A dialect
    // that re-makes bodies has its own path (it is sent only the requests it takes).
    match crate::translate::upstream_path(&ep.format) {
        Some(path) => out.extend_from_slice(path.as_bytes()),
        None if req.target_bytes().is_empty() => out.push(b'/'),
        None => out.extend_from_slice(req.target_bytes()),
    }
    // HTTP/1.0 clients cannot read chunked replies: ask the upstream for a 1.0-framed reply.
    out.extend_from_slice(if req.version_minor == 0 { b" HTTP/1.0\r\n" } else { b" HTTP/1.1\r\n" });
    let _ = write!(out, "Host: {}\r\n", ep.url.host()); // (writing to a Vec cannot fail)

    let named = connection_tokens(req.headers());
    let replace_key = !ep.passes_through();
    let messages = req.path_bytes() == b"/v1/messages";
    let mut has_version = false;
    let mut sent_length = false;
    // An endpoint with its own key never gets a client's login betas (`oauth-*`: the login they
    // go with was taken out above).
    let drops_beta = |b: &str| ep.drops_beta(b) || (replace_key && b.starts_with("oauth-"));
    let tag_beta = tag_beta.filter(|b| !drops_beta(b));
    let login_betas = replace_key
        && req
            .headers()
            .any(|(n, v)| n.eq_ignore_ascii_case(b"anthropic-beta") && v.windows(6).any(|w| w == b"oauth-"));
    let betas_ruled = ep.drops_betas() || tag_beta.is_some() || login_betas;
    let mut betas_sent = false;
    for (name, value) in req.headers() {
        if is_framing(name) {
            sent_length |= name.eq_ignore_ascii_case(b"content-length");
            continue;
        }
        if is_hop_by_hop(name)
            || name.len() > 6 && name[..6].eq_ignore_ascii_case(b"x-qcc-") // (ours: a key, a control token)
            || name.eq_ignore_ascii_case(b"host")
            || name.eq_ignore_ascii_case(b"expect")
            || named.iter().any(|t| t.eq_ignore_ascii_case(name))
        {
            continue;
        }
        if replace_key && (name.eq_ignore_ascii_case(b"x-api-key") || name.eq_ignore_ascii_case(b"authorization")) {
            continue;
        }
        if !crate::translate::forwards_header(&ep.format, name) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"anthropic-version") {
            has_version = true;
        }
        if messages && name.eq_ignore_ascii_case(b"accept-encoding") {
            continue;
        }
        if betas_ruled && name.eq_ignore_ascii_case(b"anthropic-beta") {
            let value = String::from_utf8_lossy(value);
            let kept: Vec<&str> = value.split(',').map(str::trim).filter(|b| !b.is_empty() && !drops_beta(b)).collect();
            let added = tag_beta.filter(|t| !betas_sent && !kept.iter().any(|b| b.eq_ignore_ascii_case(t)));
            let all: Vec<&str> = kept.into_iter().chain(added).collect();
            betas_sent |= added.is_some();
            if !all.is_empty() {
                push_header(out, name, all.join(",").as_bytes());
            }
            continue;
        }
        push_header(out, name, value);
    }
    if let (Some(beta), false) =
        (tag_beta, betas_sent || req.headers().any(|(n, _)| n.eq_ignore_ascii_case(b"anthropic-beta")))
    {
        if crate::translate::forwards_header(&ep.format, b"anthropic-beta") {
            push_header(out, b"anthropic-beta", beta.as_bytes());
        }
    }
    if messages {
        out.extend_from_slice(b"Accept-Encoding: identity\r\n");
    }
    match length.map_or(req.framing, BodyFraming::Length) {
        BodyFraming::Length(n) => {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        // An explicit empty body stays explicit (some servers want a length on every POST).
        BodyFraming::None if sent_length => out.extend_from_slice(b"Content-Length: 0\r\n"),
        BodyFraming::None | BodyFraming::UntilClose => {}
    }
    crate::translate::key_headers(&ep.format, &ep.api_key, out);
    if let (false, Some(version)) = (has_version, crate::translate::default_version(&ep.format)) {
        out.extend_from_slice(version);
    }
    out.extend_from_slice(b"\r\n");
}

/// The response head relayed to the client: the upstream's status line and headers minus
/// hop-by-hop ones and those its `Connection` names, plus `Connection: close` when this is the
/// connection's last response, and `Access-Control-Allow-Origin` for an allowed web origin
/// (`cors`; its own copy of that header from the upstream is dropped). The framing headers always stay: the body is relayed as the
/// upstream framed it, so its `Content-Length`/`Transfer-Encoding` must reach the client with it
/// (a `Content-Length` beside a `Transfer-Encoding` is dropped: the coding decides, RFC 9112 §6.3).
/// Every answer is sandboxed (`Content-Security-Policy: sandbox`, `nosniff`), and says which
/// served cluster answered (`X-Qcc-Cluster`, when its name is a plain header value; an
/// upstream's own header of that name is dropped).
pub fn client_response_head(
    resp: &ResponseHead,
    close: bool,
    cors: Option<&str>,
    cluster: Option<&str>,
    out: &mut Vec<u8>,
) {
    // Status line from the parse (code and reason as sent; whatever line ends the upstream
    // used), speaking HTTP/1.1 ourselves.
    let code = resp.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(resp.reason());
    out.extend_from_slice(b"\r\n");
    let named = connection_tokens(resp.headers());
    let coded = resp.headers().any(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"));
    for (name, value) in resp.headers() {
        let keep = if is_framing(name) {
            !(coded && name.eq_ignore_ascii_case(b"content-length"))
        } else {
            let ours = (cors.is_some() && name.eq_ignore_ascii_case(b"access-control-allow-origin"))
                || name.eq_ignore_ascii_case(b"x-qcc-cluster");
            !(is_hop_by_hop(name) || named.iter().any(|t| t.eq_ignore_ascii_case(name)) || ours)
        };
        if keep {
            push_header(out, name, value);
        }
    }
    if let Some(origin) = cors {
        let _ = write!(out, "Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n");
    }
    // An upstream's answer shares the dashboard's origin (http://127.0.0.1:PORT): a relay's HTML
    // page must not run there (it could drive /_qcc/ or read the dashboard's key).
    out.extend_from_slice(b"Content-Security-Policy: sandbox\r\nX-Content-Type-Options: nosniff\r\n");
    // (`cluster` is a plain header value: `clusters::Cluster::header`.)
    if let Some(c) = cluster {
        push_header(out, b"X-Qcc-Cluster", c.as_bytes());
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The header names a `Connection` header lists (its own hop-by-hop extensions). `close`,
/// `keep-alive` and the other standard hop-by-hop names are left out: those headers are
/// dropped anyway, and the usual `Connection: keep-alive` then costs no allocation.
fn connection_tokens<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<&'a [u8]> {
    headers
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case(b"close") && !is_hop_by_hop(t))
        .collect()
}

fn is_framing(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding")
}

/// The tiny real request that verifies a queued endpoint (spec: recovery probe), in the
/// endpoint's dialect (`translate::probe_body`).
pub fn probe_request(ep: &EndpointConfig, model: &str) -> Vec<u8> {
    let body = crate::translate::probe_body(&ep.format, model);
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(ep.url.path_prefix.as_bytes());
    let path = crate::translate::upstream_path(&ep.format).unwrap_or("/v1/messages");
    let _ = write!(out, "{path} HTTP/1.1\r\nHost: {}\r\n", ep.url.host());
    crate::translate::key_headers(&ep.format, &ep.api_key, &mut out);
    if let Some(version) = crate::translate::default_version(&ep.format) {
        out.extend_from_slice(version);
    }
    out.extend_from_slice(b"content-type: application/json\r\nConnection: close\r\n");
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body.as_bytes());
    out
}

/// A complete local response with a body. No page of the proxy's may be framed by another (a
/// framed dashboard turns one click into an endpoint disabled), nor its answers sniffed.
pub fn local_response(status: u16, content_type: &str, body: &[u8], close: bool, out: &mut Vec<u8>) {
    local_response_with(status, content_type, body, close, "", out);
}

/// `local_response` with `extra` header lines (each ending in CRLF).
fn local_response_with(status: u16, content_type: &str, body: &[u8], close: bool, extra: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'none'\r\n\
             X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n{extra}{}\r\n",
            crate::http::reason(status),
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

/// A local reply made for a `HEAD` request: its head only (its `content-length` still says what
/// a `GET` would get, RFC 9110 §9.3.2).
pub fn head_only(reply: &mut Vec<u8>) {
    if let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
        reply.truncate(end + 4);
    }
}

/// An error in the Anthropic shape: `{"type":"error","error":{"type":...,"message":...}}`.
pub fn error_response(status: u16, message: &str, close: bool, out: &mut Vec<u8>) {
    error_response_after(status, message, None, close, out);
}

/// `error_response` with a `retry-after` (seconds), as a 429 of a client key's limit carries.
pub fn error_response_after(status: u16, message: &str, retry_after: Option<u64>, close: bool, out: &mut Vec<u8>) {
    error_response_advising(status, message, retry_after, false, close, out);
}

/// `error_response_after`, and `x-should-retry: false` when `hopeless` (nothing recovers
/// without the operator: the official SDKs then do not retry).
pub fn error_response_advising(
    status: u16,
    message: &str,
    retry_after: Option<u64>,
    hopeless: bool,
    close: bool,
    out: &mut Vec<u8>,
) {
    let kind = crate::translate::error::kind_for_status(status);
    let body = serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}).to_string();
    let mut extra = retry_after.map(|s| format!("retry-after: {s}\r\n")).unwrap_or_default();
    if hopeless {
        extra.push_str("x-should-retry: false\r\n");
    }
    local_response_with(status, "application/json", body.as_bytes(), close, &extra, out);
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_response_head;

    /// parse -> write -> parse gives the same head (status, reason, end-to-end headers, framing),
    /// whatever line ends and reason the upstream used; hop-by-hop headers never reach the client.
    #[test]
    fn response_heads_round_trip() {
        let lines = [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 429 Too Many Requests",
            "HTTP/1.0 503 ",
            "HTTP/1.1 200",
            "HTTP/1.1 404 Not \u{e9}t\u{e9} found",
        ];
        let headers = [
            vec!["Content-Type: application/json", "Content-Length: 12", "Connection: keep-alive, x-hop"],
            vec!["Transfer-Encoding: chunked", "Keep-Alive: timeout=5", "x-hop: 1", "request-id: req_1"],
            vec![
                "Content-Length: 0",
                "Connection: x-hop",
                "X-Hop: secret",
                "anthropic-ratelimit-requests-remaining: 4",
            ],
        ];
        for line in lines {
            for hs in &headers {
                for eol in ["\r\n", "\n"] {
                    let mut raw = format!("{line}{eol}");
                    for h in hs {
                        raw.push_str(h);
                        raw.push_str(eol);
                    }
                    raw.push_str(eol);
                    let first = parse_response_head(raw.as_bytes(), false).unwrap().unwrap();
                    let mut out = Vec::new();
                    client_response_head(&first, false, None, Some("c"), &mut out);
                    assert!(out.starts_with(b"HTTP/1.1 "), "{raw:?}");
                    assert!(!out.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "bare LF written: {out:?}");
                    let again = parse_response_head(&out, false).unwrap().unwrap();
                    assert_eq!((again.status, again.reason()), (first.status, first.reason()), "{raw:?}");
                    assert_eq!(again.framing, first.framing, "{raw:?}");
                    let named = connection_tokens(first.headers());
                    let kept: Vec<_> = first
                        .headers()
                        .filter(|(n, _)| {
                            let framed_twice = n.eq_ignore_ascii_case(b"content-length")
                                && first.headers().any(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"));
                            !(crate::http::is_hop_by_hop(n)
                                || named.iter().any(|t| t.eq_ignore_ascii_case(n))
                                || framed_twice)
                        })
                        .collect();
                    let (ours, theirs): (Vec<_>, Vec<_>) = again.headers().partition(|(n, v)| {
                        (n == b"Content-Security-Policy" && v == b"sandbox")
                            || (n == b"X-Content-Type-Options" && v == b"nosniff")
                            || (n == b"X-Qcc-Cluster" && v == b"c")
                    });
                    assert_eq!(theirs, kept, "{raw:?}");
                    assert_eq!(ours.len(), 3, "every answer is sandboxed and names its cluster");
                }
            }
        }
    }
}
