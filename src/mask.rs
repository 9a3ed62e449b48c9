//! What may be shown: API keys masked (never more than the last 4 characters of a secret),
//! URL credentials and secret query values masked, strings from outside (model names, reasons,
//! ids) with their control characters escaped so they cannot drive a terminal, and long
//! strings clipped.

use std::borrow::Cow;

/// `sk-ant-api03-…wxyz` → `sk-ant-…wxyz`. At most the last 4 characters and never more than a
/// third of the key are shown; the public `sk-ant-` prefix only when the key is long enough that
/// prefix and tail together stay within that third (real Anthropic keys are ~100 characters).
pub fn mask_key(key: &str) -> String {
    const PREFIX: &str = "sk-ant-";
    let chars: Vec<char> = key.chars().collect();
    let n = chars.len();
    if n == 0 {
        return "(client's own)".to_string();
    }
    let tail_len = (n / 3).min(4);
    let tail: String = chars[n - tail_len..].iter().collect();
    let prefix = if key.starts_with(PREFIX) && (PREFIX.len() + tail_len) * 3 <= n { PREFIX } else { "" };
    format!("{prefix}…{tail}")
}

/// A URL as it may be shown: `user:pass@` in the authority becomes `***@`, and the value of a
/// query parameter that names a secret (`key`, `api_key`, `token`, `secret`, `password`, `sig`,
/// `auth`...) becomes `***`.
pub fn mask_url(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    let mut out = match url[after_scheme..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..after_scheme], &url[after_scheme + at..authority_end]),
        None => url[..authority_end].to_string(),
    };
    let rest = &url[authority_end..];
    let (before_frag, frag) = rest.split_at(rest.find('#').unwrap_or(rest.len()));
    match before_frag.split_once('?') {
        None => out.push_str(before_frag),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) if names_a_secret(name) => {
                        out.push_str(name);
                        out.push_str("=***");
                    }
                    _ => out.push_str(pair),
                }
            }
        }
    }
    out.push_str(frag);
    out
}

fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "token", "secret", "pass", "auth", "sig", "credential"].iter().any(|s| name.contains(s))
}

/// A request target (or a model name) as a log line shows it: clipped, control characters
/// escaped.
pub fn shown(target: &str) -> std::borrow::Cow<'_, str> {
    clean(clip(target, 256))
}

/// A string from outside (an upstream's model name or reason, a hand-edited id) as it may be
/// printed to a terminal: control characters (ESC, CR, LF, BEL, C1...) escaped as `\x1b`, so
/// it cannot set the title or colours or fake a table row.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        if ch.is_control() {
            let n = ch as u32;
            if n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(ch);
        }
    }
    Cow::Owned(out)
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_key("sk-ant-api03-abcdefghijklmnopqrstuvwxyz"), "sk-ant-…wxyz");
        assert_eq!(mask_key("0123456789abcdefwxyz"), "…wxyz");
        assert_eq!(mask_key("short"), "…t");
        assert_eq!(mask_key("ab"), "…");
        assert_eq!(mask_key(""), "(client's own)");
        let secret = "sk-ant-api03-SECRETSECRETSECRET-tail";
        assert!(!mask_key(secret).contains("SECRET"));
    }

    #[test]
    fn never_more_than_a_third_of_a_key_nor_more_than_four_characters() {
        for n in 1..120 {
            for key in ["x".repeat(n), format!("sk-{}", "y".repeat(n)), format!("sk-ant-{}", "z".repeat(n))] {
                let shown = mask_key(&key).chars().filter(|&c| c != '…').count();
                let len = key.chars().count();
                assert!(shown * 3 <= len, "{key}: {}", mask_key(&key));
                let tail = mask_key(&key).rsplit('…').next().unwrap_or("").chars().count();
                assert!(tail <= 4, "{key}: {}", mask_key(&key));
            }
        }
        // The 12-character key of the report shows one third at most, not 11 characters.
        assert_eq!(mask_key("sk-abcdefghi"), "…fghi");
    }

    #[test]
    fn url_userinfo_is_hidden() {
        assert_eq!(mask_url("https://bob:hunter2@relay.example/x@y"), "https://***@relay.example/x@y");
        assert_eq!(mask_url("https://relay.example/a"), "https://relay.example/a");
        assert_eq!(mask_url("ftp://u@h"), "ftp://***@h");
    }

    #[test]
    fn secret_query_values_are_hidden() {
        assert_eq!(mask_url("https://r.example/v1?key=SECRET&x=1#f"), "https://r.example/v1?key=***&x=1#f");
        assert_eq!(
            mask_url("https://r.example?api_key=S&Token=T&page=2"),
            "https://r.example?api_key=***&Token=***&page=2"
        );
        assert_eq!(mask_url("http://h/?q"), "http://h/?q");
    }

    #[test]
    fn control_characters_are_escaped_and_clip_keeps_characters_whole() {
        assert_eq!(clean("claude-3"), "claude-3");
        assert_eq!(clean("m\x1b]0;pwned\x07\r\nfake"), "m\\x1b]0;pwned\\x07\\x0d\\x0afake");
        assert_eq!(clean("a\u{9b}b"), "a\\x9bb");
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip("abc", 5), "abc");
    }
}
