//! Masking API keys for display: never more than the last 4 characters of a secret.

/// `sk-ant-api03-…wxyz` → `sk-ant-…wxyz`; short keys show only their last 2 characters.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    match chars.len() {
        0 => "(client's own)".to_string(),
        n if n < 12 => format!("…{}", chars[n.saturating_sub(2)..].iter().collect::<String>()),
        n => {
            let prefix: String = chars[..7].iter().collect();
            let prefix = if prefix.starts_with("sk-") { prefix } else { String::new() };
            format!("{prefix}…{}", chars[n - 4..].iter().collect::<String>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_key("sk-ant-api03-abcdefghijklmnopwxyz"), "sk-ant-…wxyz");
        assert_eq!(mask_key("0123456789abcdefwxyz"), "…wxyz");
        assert_eq!(mask_key("short"), "…rt");
        assert_eq!(mask_key(""), "(client's own)");
        let secret = "sk-ant-api03-SECRETSECRETSECRET-tail";
        assert!(!mask_key(secret).contains("SECRET"));
    }
}
