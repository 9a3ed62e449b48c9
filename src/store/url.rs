//! Endpoint base URLs: scheme, host, port and an optional path prefix.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// "" or "/prefix" (no trailing slash); prepended to every forwarded path.
    pub path_prefix: String,
}

impl BaseUrl {
    /// Accepts http:// and https:// URLs with a host, optional port and path;
    /// rejects anything else with a one-line reason.
    pub fn parse(s: &str) -> Result<BaseUrl, String> {
        let bad = |why: &str| Err(format!("invalid URL {:?}: {why}", crate::mask::mask_url(s)));
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("contains whitespace or control characters");
        }
        let (scheme, rest) = if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else {
            return bad("must start with http:// or https://");
        };
        if rest.contains('?') || rest.contains('#') {
            return bad("a base URL takes no query or fragment");
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return bad("credentials in the URL are not supported; use --key");
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return bad("unclosed [ in IPv6 address");
            };
            let host = &r[..end];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return bad("invalid IPv6 address");
            }
            (host, &r[end + 1..])
        } else {
            match authority.find(':') {
                Some(i) => (&authority[..i], &authority[i..]),
                None => (authority, ""),
            }
        };
        if host.is_empty() {
            return bad("missing host");
        }
        if !host.contains(':') && !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_') {
            return bad("invalid host name");
        }
        let port = match port {
            "" => match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
            p => match p.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
                Some(n) if n > 0 => n,
                _ => return bad("port must be a number from 1 to 65535"),
            },
        };
        Ok(BaseUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path_prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// Value for the `Host` header: host, plus ":port" when not the scheme's default, IPv6
    /// literals in brackets; displayed where it goes (no allocation on the request path).
    pub fn host(&self) -> HostHeader<'_> {
        HostHeader(self)
    }
}

/// Where alerts are posted (`--notify-url`, `settings.notify_urls`): an http(s) URL with a path
/// and, unlike a base URL, a query (some webhooks carry their token there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub base: BaseUrl,
    /// The request target: the path (`/` when none) and the query.
    pub target: String,
}

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<WebhookUrl, String> {
        let s = s.trim();
        let (url, query) = match s.split_once('?') {
            Some((u, q)) => (u, Some(q)),
            None => (s, None),
        };
        let base = BaseUrl::parse(url.split('#').next().unwrap_or(url))
            .map_err(|e| e.replacen("invalid URL", "invalid webhook URL", 1))?;
        let mut target = if base.path_prefix.is_empty() { "/".to_string() } else { base.path_prefix.clone() };
        if let Some(q) = query {
            target.push('?');
            target.push_str(q.split('#').next().unwrap_or(q));
        }
        Ok(WebhookUrl { base, target })
    }

    /// As logs show it: scheme and host only (a webhook's path is often its secret).
    pub fn shown(&self) -> String {
        let scheme = if self.base.scheme == Scheme::Https { "https" } else { "http" };
        format!("{scheme}://{}/…", self.base.host())
    }
}

/// `BaseUrl::host()`: displays as the `Host` header value.
pub struct HostHeader<'a>(&'a BaseUrl);

impl std::fmt::Display for HostHeader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let u = self.0;
        if u.host.contains(':') {
            write!(f, "[{}]", u.host)?;
        } else {
            f.write_str(&u.host)?;
        }
        let default = match u.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        if u.port != default {
            write!(f, ":{}", u.port)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.host(), self.path_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let u = BaseUrl::parse("https://API.example.com/anthropic/").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path_prefix.as_str()),
            (Scheme::Https, "api.example.com", 443, "/anthropic")
        );
        assert_eq!(u.host().to_string(), "api.example.com");
        let u = BaseUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.host().to_string()), (8080, "127.0.0.1:8080".to_string()));
        let u = BaseUrl::parse("http://[::1]:9000/p").unwrap();
        assert_eq!(
            (u.host.as_str(), u.host().to_string(), u.to_string()),
            ("::1", "[::1]:9000".to_string(), "http://[::1]:9000/p".to_string())
        );
    }

    #[test]
    fn rejects_with_reasons() {
        for bad in [
            "ftp://x",
            "api.example.com",
            "http://",
            "http://:80",
            "http://x:0",
            "http://x:99999",
            "http://x:abc",
            "http://u:p@x",
            "http://x/?q=1",
            "http://x y",
            "http://[::1",
            "http://[zz]:1",
        ] {
            let err = BaseUrl::parse(bad).unwrap_err();
            assert!(err.starts_with("invalid URL"), "{bad}: {err}");
        }
    }
}
