//! Who may use the proxy: the `Host` and `Origin` checks that keep web pages out (CSRF, DNS
//! rebinding) and CORS preflights answered locally. (Keys: `keys.rs`.)
//!
//! A browser page can make the user's browser send requests to 127.0.0.1, and with DNS rebinding
//! it can read the answers too. Claude Code and the SDKs send no `Origin` and a `Host` naming the
//! address they were given; a page sends its own origin, and a rebinding page its own host name.

use std::net::{IpAddr, SocketAddr};

use crate::http::RequestHead;

/// What the checks decided for one request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it. `cors`: the allowed `Origin` the response must name.
    Pass { cors: Option<String> },
    /// A CORS preflight from an allowed origin: answer it with these bytes, never forward it.
    Preflight(Vec<u8>),
    /// Refuse with this status and message.
    Refuse(u16, String),
}

/// The checks, built once from the settings.
#[derive(Debug, Clone)]
pub struct Gate {
    listen: SocketAddr,
    /// `--allow-host` names (lowercase, without port).
    hosts: Vec<String>,
    /// `--allow-origin` values (lowercase, `scheme://host[:port]`).
    origins: Vec<String>,
    /// Whether `Host` is checked: always on loopback, off it once `--allow-host` names any.
    check_host: bool,
}

impl Gate {
    pub fn new(listen: SocketAddr, allow_hosts: &[String], allow_origins: &[String]) -> Gate {
        let lower = |v: &[String]| v.iter().map(|s| s.trim().trim_end_matches('/').to_ascii_lowercase()).collect();
        Gate {
            listen,
            hosts: lower(allow_hosts),
            origins: lower(allow_origins),
            check_host: listen.ip().is_loopback() || !allow_hosts.is_empty(),
        }
    }

    pub fn check(&self, head: &RequestHead) -> Verdict {
        let mut hosts = head.headers().filter(|(n, _)| n.eq_ignore_ascii_case(b"host")).map(|(_, v)| v);
        let host = hosts.next();
        // RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host.
        if hosts.next().is_some() || (host.is_none() && head.version_minor == 1) {
            return Verdict::Refuse(400, "a request must carry exactly one Host header".into());
        }
        if let Some(host) = host {
            let allowed = std::str::from_utf8(host).is_ok_and(|h| self.host_allowed(h.trim()));
            if self.check_host && !allowed {
                let host = String::from_utf8_lossy(host).trim().to_ascii_lowercase();
                return Verdict::Refuse(
                    403,
                    format!("Host {host:?} is not this proxy's address (add it with --allow-host)"),
                );
            }
        }
        let origin = head.headers().find(|(n, _)| n.eq_ignore_ascii_case(b"origin")).map(|(_, v)| v);
        let Some(origin) = origin else {
            // A browser says where a request comes from even when it sends no Origin (a
            // navigation, an <img>, a form GET): from another site, it is refused, never
            // forwarded with the endpoint's key. Claude Code and the SDKs send no Sec-Fetch-Site.
            let site =
                head.headers().find(|(n, _)| n.eq_ignore_ascii_case(b"sec-fetch-site")).map(|(_, v)| v.trim_ascii());
            if site.is_some_and(|s| s.eq_ignore_ascii_case(b"cross-site") || s.eq_ignore_ascii_case(b"same-site")) {
                return Verdict::Refuse(403, "requests from other web sites are not allowed".into());
            }
            return Verdict::Pass { cors: None };
        };
        let origin = String::from_utf8_lossy(origin).trim().to_string();
        if !self.origin_allowed(&origin.to_ascii_lowercase()) {
            return Verdict::Refuse(
                403,
                format!("requests from web pages ({origin}) are not allowed (see --allow-origin)"),
            );
        }
        if head.method() == "OPTIONS" {
            return Verdict::Preflight(preflight(head, &origin));
        }
        Verdict::Pass { cors: Some(origin) }
    }

    /// `host` is `name[:port]` or `[v6]:port`; the name decides (in any case).
    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(n, _)| n),
        };
        if name.eq_ignore_ascii_case("localhost") || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.listen.ip(),
            Err(_) => false,
        }
    }

    /// An origin is allowed when listed with `--allow-origin`, or when it is this proxy itself
    /// (`http://` + an allowed host + the listening port: a page the proxy serves).
    fn origin_allowed(&self, origin: &str) -> bool {
        if self.origins.iter().any(|o| o == origin) {
            return true;
        }
        let Some(authority) = origin.strip_prefix("http://") else {
            return false;
        };
        let port_ok = match authority.rsplit_once(':') {
            Some((_, p)) if !p.ends_with(']') => p.parse::<u16>().ok() == Some(self.listen.port()),
            _ => self.listen.port() == 80,
        };
        port_ok && self.host_allowed(authority)
    }
}

/// The local answer to a CORS preflight from an allowed origin.
fn preflight(head: &RequestHead, origin: &str) -> Vec<u8> {
    let asked = head
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"access-control-request-headers"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n\
         Access-Control-Allow-Methods: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS\r\n\
         Access-Control-Max-Age: 600\r\ncontent-length: 0\r\n"
    );
    if !asked.is_empty() {
        out.push_str(&format!("Access-Control-Allow-Headers: {asked}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_request_head;

    fn head(text: &str) -> RequestHead {
        parse_request_head(text.as_bytes()).unwrap().unwrap()
    }

    fn gate() -> Gate {
        Gate::new("127.0.0.1:7860".parse().unwrap(), &["qcc.lan".into()], &["https://app.example".into()])
    }

    #[test]
    fn hosts() {
        let g = gate();
        for ok in
            ["127.0.0.1:7860", "localhost:7860", "LOCALHOST", "[::1]:7860", "qcc.lan:7860", "QCC.Lan", "127.0.0.2"]
        {
            assert_eq!(g.check(&head(&format!("GET / HTTP/1.1\r\nHost: {ok}\r\n\r\n"))), Verdict::Pass { cors: None });
        }
        for bad in ["attacker.example:7860", "attacker.example", "localhost.attacker.example", "10.0.0.1:7860"] {
            let v = g.check(&head(&format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n")));
            assert!(matches!(v, Verdict::Refuse(403, _)), "{bad}: {v:?}");
        }
        assert!(matches!(g.check(&head("GET / HTTP/1.1\r\n\r\n")), Verdict::Refuse(400, _)));
        assert!(matches!(g.check(&head("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")), Verdict::Refuse(400, _)));
        assert_eq!(g.check(&head("GET / HTTP/1.0\r\n\r\n")), Verdict::Pass { cors: None });
        // Off loopback with no --allow-host, the access key is the guard; Host is not checked.
        let open = Gate::new("0.0.0.0:7860".parse().unwrap(), &[], &[]);
        assert_eq!(open.check(&head("GET / HTTP/1.1\r\nHost: vps.example\r\n\r\n")), Verdict::Pass { cors: None });
    }

    #[test]
    fn origins_and_preflight() {
        let g = gate();
        let with = |origin: &str, method: &str| {
            g.check(&head(&format!(
                "{method} /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:7860\r\nOrigin: {origin}\r\n\r\n"
            )))
        };
        assert!(matches!(with("http://attacker.example", "POST"), Verdict::Refuse(403, _)));
        assert!(matches!(with("null", "POST"), Verdict::Refuse(403, _)));
        assert!(matches!(with("http://127.0.0.1:9999", "POST"), Verdict::Refuse(403, _)));
        assert!(matches!(with("http://attacker.example", "OPTIONS"), Verdict::Refuse(403, _)));
        assert_eq!(with("https://app.example", "POST"), Verdict::Pass { cors: Some("https://app.example".into()) });
        assert_eq!(with("http://127.0.0.1:7860", "POST"), Verdict::Pass { cors: Some("http://127.0.0.1:7860".into()) });
        let Verdict::Preflight(bytes) = with("https://app.example", "OPTIONS") else { panic!("preflight") };
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 204") && text.contains("Access-Control-Allow-Origin: https://app.example"));
    }

    #[test]
    fn browser_requests_from_other_sites_are_refused_even_without_origin() {
        let g = gate();
        let site = |v: &str| {
            g.check(&head(&format!("GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:7860\r\nSec-Fetch-Site: {v}\r\n\r\n")))
        };
        assert!(matches!(site("cross-site"), Verdict::Refuse(403, _)));
        assert!(matches!(site("same-site"), Verdict::Refuse(403, _)));
        assert_eq!(site("same-origin"), Verdict::Pass { cors: None });
        assert_eq!(site("none"), Verdict::Pass { cors: None }, "typed into the address bar");
        // An allowed web app (--allow-origin) still gets through, with its Origin.
        let v = g.check(&head("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:7860\r\nOrigin: https://app.example\r\nSec-Fetch-Site: cross-site\r\n\r\n"));
        assert_eq!(v, Verdict::Pass { cors: Some("https://app.example".into()) });
    }
}
