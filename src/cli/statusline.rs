//! `qcc statusline`, for Claude Code's `statusLine` setting: Claude Code runs it with a JSON on
//! stdin (`session_id`, `model`, `workspace`) and shows the one line it prints. It asks the running
//! proxy about that session (`GET /_qcc/session`, loopback, one request) and says which cluster and
//! endpoint answered last, the model they were sent, and the session's tokens and cost today;
//! with a client key that has a daily budget, what is left of it. So a fallback or a cheap route
//! answering shows inside Claude Code. `--install` / `--uninstall` write or remove the setting in
//! settings.json, keeping everything else.

use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// What marks the `statusLine` setting as ours (`--uninstall` takes out only ours).
const COMMAND: &str = "statusline";

pub fn run(home: &Path, install: bool, uninstall: bool) -> Result<()> {
    match (install, uninstall) {
        (true, true) => Err(Error::Usage("give --install or --uninstall, not both".into())),
        (true, false) => {
            let exe = std::env::current_exe().map_err(|e| Error::io("finding the qcc binary", e))?;
            let command = format!("{} {COMMAND}", shell_word(&exe.display().to_string()));
            let path = super::claude::edit_settings(|obj, _| {
                obj.insert("statusLine".into(), json!({"type": "command", "command": command, "padding": 0}));
                Ok(())
            })?;
            println!(
                "Claude Code's status line is qcc's now ({}); `qcc statusline --uninstall` takes it out",
                path.display()
            );
            Ok(())
        }
        (false, true) => {
            let mut had = false;
            let path = super::claude::edit_settings(|obj, _| {
                let ours =
                    obj.get("statusLine").and_then(|s| s["command"].as_str()).is_some_and(|c| c.ends_with(COMMAND));
                if ours {
                    obj.remove("statusLine");
                    had = true;
                }
                Ok(())
            })?;
            match had {
                true => println!("qcc's status line taken out of {}", path.display()),
                false => println!("{} has no status line of qcc's", path.display()),
            }
            Ok(())
        }
        (false, false) => {
            println!("{}", line(home, &read_stdin()));
            Ok(())
        }
    }
}

/// What Claude Code passed (nothing when stdin is a terminal or not JSON).
fn read_stdin() -> Value {
    let stdin = std::io::stdin();
    if std::io::IsTerminal::is_terminal(&stdin) {
        return Value::Null;
    }
    let mut text = String::new();
    let _ = stdin.lock().take(256 * 1024).read_to_string(&mut text);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The line for the session Claude Code named in `input`.
pub fn line(home: &Path, input: &Value) -> String {
    let session: String = input["session_id"]
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let Ok(s) = super::control::session(home, &session) else {
        return "qcc: no proxy running here".to_string();
    };
    let text = |p: &str| s.pointer(p).and_then(Value::as_str).map(crate::mask::clean).map(|c| c.into_owned());
    let mut parts = Vec::new();
    match (text("/cluster"), text("/endpoint")) {
        (Some(c), Some(e)) if !e.is_empty() => parts.push(format!("qcc {c} → {e}")),
        (Some(c), _) => parts.push(format!("qcc {c}")),
        _ => parts.push(format!("qcc {} · no request yet", text("/serving").unwrap_or_default())),
    }
    if let Some(m) = text("/model").filter(|m| !m.is_empty()) {
        parts.push(m);
    }
    let tokens = s["tokens_today"].as_u64().unwrap_or(0);
    if tokens > 0 {
        parts.push(format!("{} tokens ${:.2} today", short(tokens), s["cost_today"].as_f64().unwrap_or(0.0)));
    }
    if let Some(k) = s.get("key").filter(|k| k.is_object()) {
        let name = k["name"].as_str().unwrap_or("key");
        let left = match (k["usd_left"].as_f64(), k["tokens_left"].as_u64()) {
            (Some(usd), _) => Some(format!("${usd:.2} left")),
            (None, Some(t)) => Some(format!("{} tokens left", short(t))),
            _ => None,
        };
        if let Some(left) = left {
            parts.push(format!("{} {left}", crate::mask::clean(name)));
        }
    }
    parts.join(" · ")
}

/// 12345 -> "12.3k", 2500000 -> "2.5M".
fn short(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// `s` as one word for the shell that runs the status line command.
fn shell_word(s: &str) -> String {
    match s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b)) {
        true => s.to_string(),
        false => format!("'{}'", s.replace('\'', r"'\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_short_and_paths_are_one_word() {
        assert_eq!((short(999), short(12_345), short(2_500_000)), ("999".into(), "12.3k".into(), "2.5M".into()));
        assert_eq!(shell_word("/usr/bin/qcc"), "/usr/bin/qcc");
        assert_eq!(shell_word("/my apps/it's/qcc"), r"'/my apps/it'\''s/qcc'");
    }
}
