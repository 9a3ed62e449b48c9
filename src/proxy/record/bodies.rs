//! A debug log of bodies, for translation trouble (`qcc proxy start --log-bodies DIR`, off by
//! default): for each request, one file with what the client sent, and for each attempt what the
//! endpoint was sent and what it answered — as received and, for an endpoint of another dialect,
//! as translated. Credentials are masked in every head (and the endpoint's own key wherever it
//! shows); each part is cut at `PART_MAX`; files are `DIR/body-NNN.txt`, `FILES` of them reused
//! in turn. The request history names a request's file (`body_log`), and `qcc logs` shows it.
//! Written whole by the disk thread (temp file, rename): the loop only copies bytes.

/// Bytes kept of each part (a body, an answer).
pub const PART_MAX: usize = 1024 * 1024;
/// Files kept; the oldest is reused.
pub const FILES: u64 = 100;

/// What one request's file will hold (`Exchange::body_log`).
#[derive(Default)]
pub struct BodyLog {
    text: Vec<u8>,
    raw: Vec<u8>,
    translated: Vec<u8>,
    attempts: u8,
    secret: String,
}

impl BodyLog {
    /// Begun with the client's request: its head (credentials masked) and its body.
    pub fn new(head: &[u8], body: &[u8]) -> BodyLog {
        let mut log = BodyLog::default();
        log.text.extend_from_slice(b"== the client's request\n");
        log.text.extend_from_slice(&mask_head(head));
        part(&mut log.text, body);
        log
    }

    /// An attempt on endpoint `label`: its request as sent (`head`, with the endpoint's key
    /// `secret` masked, and `body`).
    pub fn attempt(&mut self, label: &str, secret: &str, head: &[u8], body: &[u8]) {
        self.close_attempt();
        self.attempts += 1;
        self.secret = secret.to_string();
        let title = format!("\n== attempt {}: {}, as sent\n", self.attempts, crate::mask::clean(label));
        self.text.extend_from_slice(title.as_bytes());
        self.text.extend_from_slice(&mask_head(head));
        let body = self.masked(body);
        part(&mut self.text, &body);
    }

    /// The file's bytes: everything so far.
    pub fn file(&self) -> Vec<u8> {
        let mut text = self.text.clone();
        self.answer_into(&mut text);
        text
    }

    fn close_attempt(&mut self) {
        let mut text = std::mem::take(&mut self.text);
        self.answer_into(&mut text);
        self.text = text;
        self.raw.clear();
        self.translated.clear();
    }

    /// The current attempt's answer, as received and translated, after `text`.
    fn answer_into(&self, text: &mut Vec<u8>) {
        if self.attempts == 0 {
            return;
        }
        text.extend_from_slice(b"\n== its answer, as received\n");
        part(text, &self.masked(&self.raw));
        if !self.translated.is_empty() {
            text.extend_from_slice(b"\n== its answer, translated (Messages)\n");
            part(text, &self.translated);
        }
    }

    /// `bytes` with the endpoint's key masked wherever it shows.
    fn masked(&self, bytes: &[u8]) -> Vec<u8> {
        let key = self.secret.as_bytes();
        if key.len() < 8 || !bytes.windows(key.len()).any(|w| w == key) {
            return bytes.to_vec();
        }
        let shown = crate::mask::mask_key(&self.secret);
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(key) {
                out.extend_from_slice(shown.as_bytes());
                i += key.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }
}

impl crate::proxy::scan::translation::Tap for BodyLog {
    /// Bytes of the answer as the endpoint sent them.
    fn raw(&mut self, bytes: &[u8]) {
        keep(&mut self.raw, bytes);
    }

    /// Bytes of the answer as translated into Messages.
    fn translated(&mut self, bytes: &[u8]) {
        keep(&mut self.translated, bytes);
    }
}

fn keep(into: &mut Vec<u8>, bytes: &[u8]) {
    let room = PART_MAX.saturating_sub(into.len());
    into.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn part(text: &mut Vec<u8>, bytes: &[u8]) {
    text.extend_from_slice(&bytes[..bytes.len().min(PART_MAX)]);
    if bytes.len() > PART_MAX {
        text.extend_from_slice(format!("\n[… {} more bytes not kept]", bytes.len() - PART_MAX).as_bytes());
    }
    text.push(b'\n');
}

/// A request head with every credential's value masked (`x-api-key`, `authorization`,
/// `proxy-authorization`, `cookie`, qcc's own `x-qcc-*`).
fn mask_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(head.len());
    for line in text.split_inclusive('\n') {
        let Some((name, value)) = line.split_once(':') else {
            out.push_str(line);
            continue;
        };
        let n = name.trim().to_ascii_lowercase();
        let secret = matches!(n.as_str(), "x-api-key" | "authorization" | "proxy-authorization" | "cookie")
            || n.starts_with("x-qcc-");
        if secret {
            let v = value.trim();
            let (scheme, key) = v.split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("bearer")).unwrap_or(("", v));
            let sep = if scheme.is_empty() { "" } else { " " };
            out.push_str(&format!("{name}: {scheme}{sep}{}\r\n", crate::mask::mask_key(key)));
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::scan::translation::Tap;

    #[test]
    fn credentials_never_reach_the_file() {
        let head = b"POST /v1/messages HTTP/1.1\r\nx-api-key: sk-ant-api03-secretsecretsecret-wxyz\r\nAuthorization: Bearer sk-ant-oat01-loginloginlogin-abcd\r\nx-qcc-key: qcc-0123456789abcdef\r\n\r\n";
        let mut log = BodyLog::new(head, br#"{"model":"m"}"#);
        log.attempt(
            "glm (ab12cd34)",
            "sk-endpoint-key-123456",
            b"POST /chat HTTP/1.1\r\nAuthorization: Bearer sk-endpoint-key-123456\r\n\r\n",
            b"{}",
        );
        log.raw(b"data: echo sk-endpoint-key-123456\n\n");
        log.translated(b"event: message_start\n");
        let text = String::from_utf8(log.file()).unwrap();
        for secret in ["secretsecret", "loginlogin", "0123456789abcdef", "sk-endpoint-key-123456"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for said in [
            "== the client's request",
            "== attempt 1: glm (ab12cd34), as sent",
            "== its answer, as received",
            "== its answer, translated (Messages)",
            r#"{"model":"m"}"#,
            "event: message_start",
        ] {
            assert!(text.contains(said), "{said} not in {text}");
        }
    }
}
