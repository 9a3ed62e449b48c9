//! Searching the request history: the JSON access log (`--access-log PATH`, one line per
//! request) and its rotated files (`PATH.1`, `PATH.2`, ... as logrotate leaves them, not
//! compressed), newest first. Read backwards in 64 KiB blocks, so the newest page costs a few
//! blocks however large the files are, and a `since` stops the scan at the first older line.
//! Used by `qcc logs` and by the proxy's `/_qcc/logs` (on a thread of its own, never the loop).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

const BLOCK: u64 = 64 * 1024;
/// A line longer than this is skipped (no access-log line comes near it).
const MAX_LINE: usize = 1024 * 1024;
/// Rotated files looked at, beyond the live one.
const MAX_ROTATED: usize = 20;

/// What to look for; every field given must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// An endpoint name or id: the one that answered, or any tried.
    pub endpoint: Option<String>,
    pub key: Option<String>,
    pub status: Option<Status>,
    /// A Claude Code session id (its first 8 characters are what the log keeps).
    pub session: Option<String>,
    /// The model asked for, sent, or answered.
    pub model: Option<String>,
    /// ISO times as the log writes them ("2026-12-02T10:00:00"); compared as text.
    pub since: Option<String>,
    pub until: Option<String>,
    /// The served cluster that answered (a route's or a fallback's).
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Status {
    Exact(u16),
    /// `5xx`: the hundreds digit.
    Class(u16),
    /// A request that ended without a status (it broke mid-response) or was aborted.
    Failed,
    Aborted,
}

impl Status {
    pub fn parse(s: &str) -> Result<Status, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "failed" => return Ok(Status::Failed),
            "aborted" => return Ok(Status::Aborted),
            _ => {}
        }
        if let Some(d) = s.strip_suffix("xx").and_then(|d| d.parse::<u16>().ok()).filter(|d| (1..=5).contains(d)) {
            return Ok(Status::Class(d));
        }
        match s.parse::<u16>() {
            Ok(n) if (100..=599).contains(&n) => Ok(Status::Exact(n)),
            _ => Err(format!("{s}: give a status (429), a class (5xx), failed or aborted")),
        }
    }

    fn matches(self, v: &str) -> bool {
        match self {
            Status::Exact(n) => v.parse::<u16>() == Ok(n),
            Status::Class(d) => v.parse::<u16>().is_ok_and(|n| n / 100 == d),
            Status::Failed => v == "failed",
            Status::Aborted => v == "aborted",
        }
    }
}

/// `1h`, `30m`, `2d`, `45s` ago, or a date or time as the log writes it ("2026-12-02",
/// "2026-12-02T10:00"): the ISO text to compare with.
pub fn parse_when(s: &str, now: SystemTime) -> Result<String, String> {
    let s = s.trim();
    let units = [("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400)];
    for (suffix, secs) in units {
        if let Some(n) = s.strip_suffix(suffix).and_then(|n| n.parse::<u64>().ok()) {
            let t = now.checked_sub(Duration::from_secs(n.saturating_mul(secs))).unwrap_or(SystemTime::UNIX_EPOCH);
            return Ok(crate::store::timefmt::iso(t));
        }
    }
    let b = s.as_bytes();
    let date_ok = b.len() >= 10 && crate::store::keys::parse_date(&s[..10]).is_some();
    let rest_ok = b.len() == 10
        || (b.len() > 11
            && matches!(b[10], b'T' | b' ')
            && s[11..].bytes().all(|c| c.is_ascii_digit() || c == b':' || c == b'.'));
    if date_ok && rest_ok {
        return Ok(s.replacen(' ', "T", 1));
    }
    Err(format!("{s:?}: give a time ago (30m, 2h, 7d) or a date (2026-12-02, 2026-12-02T10:00)"))
}

/// The fields a search takes, by name (`qcc logs --NAME`, `/_qcc/logs?NAME=`).
pub const FIELDS: [&str; 8] = ["endpoint", "key", "status", "session", "model", "since", "until", "cluster"];

impl Filter {
    /// A filter from its fields' values (`get`: a field's value, `None` or blank when not
    /// given); an error names the field after `prefix` (`--` for the CLI's flags).
    pub fn from_fields(get: impl Fn(&str) -> Option<String>, prefix: &str, now: SystemTime) -> Result<Filter, String> {
        let text = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let when =
            |name: &str| text(name).map(|v| parse_when(&v, now).map_err(|e| format!("{prefix}{name} {e}"))).transpose();
        Ok(Filter {
            endpoint: text("endpoint"),
            key: text("key"),
            status: text("status").map(|s| Status::parse(&s).map_err(|e| format!("{prefix}status {e}"))).transpose()?,
            session: text("session"),
            model: text("model"),
            since: when("since")?,
            until: when("until")?,
            cluster: text("cluster"),
        })
    }

    /// Whether an entry matches.
    pub fn matches(&self, e: &Value) -> bool {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        if let Some(since) = &self.since {
            if s("time") < since.as_str() {
                return false;
            }
        }
        if let Some(until) = &self.until {
            if s("time") > until.as_str() {
                return false;
            }
        }
        if let Some(st) = self.status {
            // The status sent, or one an attempt met on the way: `--status 5xx` also finds a
            // request that failed over after a 503 and then succeeded.
            let met = || {
                e.get("tried").and_then(Value::as_array).into_iter().flatten().any(|t| {
                    let outcome = t.get("outcome").and_then(Value::as_str).unwrap_or("");
                    outcome.strip_prefix("HTTP ").is_some_and(|code| st.matches(code))
                })
            };
            if !st.matches(s("status")) && !met() {
                return false;
            }
        }
        if let Some(c) = &self.cluster {
            if s("cluster") != c {
                return false;
            }
        }
        if let Some(k) = &self.key {
            if s("key") != k {
                return false;
            }
        }
        if let Some(ep) = &self.endpoint {
            let tried = e.get("tried").and_then(Value::as_array).into_iter().flatten().any(|t| {
                t.get("name").and_then(Value::as_str) == Some(ep)
                    || t.get("endpoint").and_then(Value::as_str) == Some(ep)
            });
            if !(tried || s("endpoint") == ep || s("endpoint_name") == ep) {
                return false;
            }
        }
        if let Some(sess) = &self.session {
            let tag = s("session");
            if tag.is_empty() || !(sess.starts_with(tag) || tag.starts_with(sess.as_str())) {
                return false;
            }
        }
        if let Some(m) = &self.model {
            let answered = e.pointer("/tokens/model").and_then(Value::as_str).unwrap_or("");
            if ![s("model_requested"), s("model_sent"), answered].contains(&m.as_str()) {
                return false;
            }
        }
        true
    }

    /// Text every matching line must contain (a cheap test before parsing a line).
    fn needles(&self) -> Vec<String> {
        let mut n = Vec::new();
        if let Some(k) = &self.key {
            n.push(format!("\"key\":{}", Value::String(k.clone())));
        }
        if let Some(e) = &self.endpoint {
            n.push(Value::String(e.clone()).to_string());
        }
        n
    }
}

/// The log and its rotated files, newest first (those that exist).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    for i in 1..=MAX_ROTATED {
        let mut name = path.as_os_str().to_os_string();
        name.push(format!(".{i}"));
        let p = PathBuf::from(name);
        if p.is_file() {
            out.push(p);
        }
    }
    out.retain(|p| p.is_file());
    out
}

/// Where a page left off: file index and the byte offset of the next line's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub file: usize,
    pub end: u64,
}

impl Cursor {
    pub fn parse(s: &str) -> Option<Cursor> {
        let (f, e) = s.split_once(':')?;
        Some(Cursor { file: f.parse().ok()?, end: e.parse().ok()? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.end)
    }
}

#[derive(Debug, Default)]
pub struct Page {
    /// Newest first.
    pub entries: Vec<Value>,
    /// Where the next page starts; `None` when the history is exhausted.
    pub next: Option<Cursor>,
    pub scanned_bytes: u64,
}

/// Up to `limit` matching entries, newest first, from `at` (or the newest line).
pub fn search(
    files: &[PathBuf],
    filter: &Filter,
    at: Option<Cursor>,
    limit: usize,
    deadline: Option<std::time::Instant>,
) -> std::io::Result<Page> {
    let mut page = Page::default();
    let needles = filter.needles();
    let start = at.unwrap_or(Cursor { file: 0, end: u64::MAX });
    for (fi, path) in files.iter().enumerate().skip(start.file) {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let mut end = if fi == start.file { start.end.min(len) } else { len };
        // Lines are read backwards: `tail` holds the bytes of a line cut by a block boundary.
        let mut tail: Vec<u8> = Vec::new();
        let mut pos = end;
        let mut block = vec![0u8; BLOCK as usize];
        loop {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the search ran out of time"));
            }
            let from = pos.saturating_sub(BLOCK);
            let n = (pos - from) as usize;
            if n > 0 {
                f.seek(SeekFrom::Start(from))?;
                f.read_exact(&mut block[..n])?;
                page.scanned_bytes += n as u64;
            }
            let mut chunk = block[..n].to_vec();
            chunk.extend_from_slice(&tail);
            // Every complete line in `chunk` (the first may be partial unless at the file start).
            let mut cut = chunk.len();
            let mut lines_end = end;
            loop {
                let nl = chunk[..cut].iter().rposition(|b| *b == b'\n');
                let line_start = match nl {
                    Some(i) => i + 1,
                    None if from == 0 => 0,
                    None => break,
                };
                let line = &chunk[line_start..cut];
                let line_end_abs = lines_end;
                lines_end = from + line_start as u64;
                if !line.iter().all(u8::is_ascii_whitespace) && line.len() <= MAX_LINE {
                    let quick = needles.iter().all(|n| line.windows(n.len()).any(|w| w == n.as_bytes()));
                    if quick {
                        if let Ok(v) = serde_json::from_slice::<Value>(line) {
                            if filter
                                .since
                                .as_deref()
                                .is_some_and(|s| v.get("time").and_then(Value::as_str).unwrap_or("") < s)
                            {
                                // Older than `since`: everything further back is too.
                                page.next = None;
                                return Ok(page);
                            }
                            if filter.matches(&v) {
                                if page.entries.len() == limit {
                                    page.next = Some(Cursor { file: fi, end: line_end_abs });
                                    return Ok(page);
                                }
                                page.entries.push(v);
                            }
                        }
                    }
                }
                match nl {
                    Some(i) => cut = i,
                    None => {
                        cut = 0;
                        break;
                    }
                }
            }
            tail = chunk[..cut].to_vec();
            if tail.len() > MAX_LINE {
                tail.clear(); // an absurd line: dropped
            }
            end = lines_end;
            pos = from;
            if from == 0 {
                break;
            }
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(i: usize) -> String {
        let status = if i % 10 == 0 { "503" } else { "200" };
        let key = if i % 2 == 0 { "bob" } else { "amy" };
        json!({"time": format!("2026-12-02T10:{:02}:{:02}.000000", i / 60 % 60, i % 60), "status": status,
               "key": key, "endpoint": "e1", "endpoint_name": "main", "session": "abcd1234",
               "tried": if i % 10 == 0 { json!([{"endpoint": "e0", "name": "spare", "outcome": "HTTP 503", "ms": 3}]) } else { json!([]) },
               "model_requested": "claude-x", "tokens": {"model": "claude-x"}})
        .to_string()
    }

    #[test]
    fn newest_first_across_rotated_files_with_paging_and_early_stop() {
        let dir = std::env::temp_dir().join(format!("qcc-reqlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        // Older lines in access.log.1, newer in access.log; enough to span many blocks.
        let old: String = (0..2000).map(|i| line(i) + "\n").collect();
        let new: String = (2000..3000).map(|i| line(i) + "\n").collect();
        std::fs::write(dir.join("access.log.1"), old).unwrap();
        std::fs::write(&path, new).unwrap();
        let files = files(&path);
        assert_eq!(files.len(), 2);
        let f = Filter { status: Some(Status::Class(5)), key: Some("bob".into()), ..Filter::default() };
        let mut seen = Vec::new();
        let mut at = None;
        loop {
            let p = search(&files, &f, at, 37, None).unwrap();
            seen.extend(p.entries.iter().map(|e| e["time"].as_str().unwrap().to_string()));
            match p.next {
                Some(c) => at = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 300, "every 10th line of 3000, all bob's");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.reverse();
        sorted.dedup();
        assert_eq!(seen.len(), sorted.len(), "no line twice across pages");
        // `since` stops at the first older line; the first page of a recent search is cheap.
        let recent = Filter { since: Some("2026-12-02T10:49:00".into()), ..Filter::default() };
        let p = search(&files, &recent, None, 1000, None).unwrap();
        assert!(p.entries.iter().all(|e| e["time"].as_str().unwrap() >= "2026-12-02T10:49:00"));
        assert!(p.next.is_none() && p.scanned_bytes < 3 * BLOCK);
        let by_tried = Filter { endpoint: Some("spare".into()), model: Some("claude-x".into()), ..Filter::default() };
        assert_eq!(search(&files, &by_tried, None, 5, None).unwrap().entries.len(), 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn filters_parse() {
        assert_eq!(Status::parse("5xx"), Ok(Status::Class(5)));
        assert_eq!(Status::parse("429"), Ok(Status::Exact(429)));
        assert!(Status::parse("6xx").is_err() && Status::parse("ok").is_err());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 10);
        assert_eq!(parse_when("1d", now).unwrap(), "1970-01-10T00:00:00.000000");
        assert_eq!(parse_when("2026-12-02", now).unwrap(), "2026-12-02");
        assert_eq!(parse_when("2026-12-02 10:00", now).unwrap(), "2026-12-02T10:00");
        assert!(parse_when("yesterday", now).is_err() && parse_when("2026-13-01", now).is_err());
        let get = |n: &str| match n {
            "status" => Some("5xx".to_string()),
            "since" => Some("1d".to_string()),
            "key" => Some("  ".to_string()),
            _ => None,
        };
        let f = Filter::from_fields(get, "--", now).unwrap();
        assert_eq!(
            (f.status, f.since.as_deref(), f.key),
            (Some(Status::Class(5)), Some("1970-01-10T00:00:00.000000"), None)
        );
        let bad = Filter::from_fields(|n| (n == "until").then(|| "soon".to_string()), "--", now).unwrap_err();
        assert!(bad.starts_with("--until \"soon\""), "{bad}");
    }
}
