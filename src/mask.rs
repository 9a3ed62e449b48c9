//! Masking API keys for display: never more than the last 4 characters of a secret.

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

/// A URL as it may be shown: `user:pass@` in the authority becomes `***@`.
pub fn mask_url(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    match url[after_scheme..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..after_scheme], &url[after_scheme + at..]),
        None => url.to_string(),
    }
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
}
