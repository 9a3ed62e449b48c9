//! Claude Code's side: `qcc use` and `qcc proxy use` point it at a base URL and key by editing
//! its `settings.json` (every other key kept, atomically, mode 0600), and `qcc use` starts it.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// What a Claude Code pointed at a proxy must not also have: with `ANTHROPIC_API_KEY` beside
/// `ANTHROPIC_AUTH_TOKEN` the interactive CLI asks about a "custom API key" (`launch.rs`).
pub const UNSET: &str = "ANTHROPIC_API_KEY";

/// `$CLAUDE_CONFIG_DIR/settings.json`, else `~/.claude/settings.json`.
pub fn settings_path() -> PathBuf {
    match std::env::var_os("CLAUDE_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("settings.json"),
        _ => crate::store::fsutil::home_dir().join(".claude").join("settings.json"),
    }
}

/// Which variables carry the key.
pub enum Credential {
    /// `ANTHROPIC_AUTH_TOKEN` alone (`ANTHROPIC_API_KEY` taken out): a proxy of ours, which reads
    /// the bearer token, and Claude Code starts without asking about a custom API key.
    BearerOnly,
    /// Both, as the Python qcc wrote them: an endpoint used directly may read only `x-api-key`.
    Both,
}

/// Write `base_url` and `key` into Claude Code's settings: `env.ANTHROPIC_BASE_URL`, the key
/// (`Credential`), and `apiKeyHelper`. For the proxy, `key` is "proxy-managed" unless the proxy
/// requires a key.
pub fn write_env(base_url: &str, key: &str, credential: Credential) -> Result<PathBuf> {
    edit_settings(|obj, path| {
        let env = obj.entry("env").or_insert_with(|| Value::Object(Map::new()));
        let Some(env) = env.as_object_mut() else {
            return Err(Error::BadFile { path: path.to_path_buf(), problem: "\"env\" is not a JSON object".into() });
        };
        env.insert("ANTHROPIC_BASE_URL".into(), Value::String(base_url.into()));
        match credential {
            Credential::BearerOnly => {
                env.remove("ANTHROPIC_API_KEY");
            }
            Credential::Both => {
                env.insert("ANTHROPIC_API_KEY".into(), Value::String(key.into()));
            }
        }
        env.insert("ANTHROPIC_AUTH_TOKEN".into(), Value::String(key.into()));
        obj.insert("apiKeyHelper".into(), Value::String(format!("echo {}", shell_quote(key))));
        Ok(())
    })
}

/// Claude Code's settings.json changed by `edit` (everything else kept), written whole (a temp
/// file, fsync, rename); what it was before qcc first changed it is kept for `proxy unuse`.
pub fn edit_settings(edit: impl FnOnce(&mut Map<String, Value>, &std::path::Path) -> Result<()>) -> Result<PathBuf> {
    let path = settings_path();
    // A new file starts as the Python package started it.
    let fresh = || serde_json::json!({"env": {}, "permissions": {"allow": [], "deny": []}});
    let mut root = match crate::store::fsutil::read_file(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => fresh(),
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| Error::BadFile { path: path.clone(), problem: format!("invalid JSON: {e}") })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh(),
        Err(e) => return Err(Error::BadFile { path, problem: e.to_string() }),
    };
    let Some(obj) = root.as_object_mut() else {
        return Err(Error::BadFile { path, problem: "not a JSON object".into() });
    };
    edit(obj, &path)?;
    let mut bytes = serde_json::to_vec_pretty(&root).map_err(|e| Error::Failed(e.to_string()))?;
    bytes.push(b'\n');
    keep_before(&path)?;
    crate::store::fsutil::atomic_write(&path, &bytes)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    Ok(path)
}

/// Where settings.json as it was before qcc first changed it is kept (its bytes), or the mark
/// that there was none.
fn before_paths(path: &std::path::Path) -> (PathBuf, PathBuf) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (path.with_file_name(format!("{name}.before-qcc")), path.with_file_name(format!("{name}.before-qcc-none")))
}

/// Keep settings.json as it is now, unless qcc already kept an earlier state (then that stays:
/// `unuse` goes back to before qcc's first change).
fn keep_before(path: &std::path::Path) -> Result<()> {
    let (kept, none) = before_paths(path);
    if kept.exists() || none.exists() {
        return Ok(());
    }
    let write = |p: &std::path::Path, bytes: &[u8]| {
        crate::store::fsutil::atomic_write(p, bytes).map_err(|e| Error::io(format!("cannot write {}", p.display()), e))
    };
    match crate::store::fsutil::read_file(path) {
        Ok(bytes) => write(&kept, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write(&none, b""),
        Err(e) => Err(Error::BadFile { path: path.to_path_buf(), problem: e.to_string() }),
    }
}

/// `qcc proxy unuse`: settings.json back, byte for byte, as it was before qcc first changed it
/// (`proxy use`, `use --direct`, the launcher); removed when there was none.
pub fn unuse() -> Result<()> {
    let path = settings_path();
    let (kept, none) = before_paths(&path);
    if let Ok(bytes) = crate::store::fsutil::read_file(&kept) {
        crate::store::fsutil::atomic_write(&path, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        let _ = std::fs::remove_file(&kept);
        println!("{} is as it was before qcc changed it", path.display());
    } else if none.exists() {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
        let _ = std::fs::remove_file(&none);
        println!("{} removed: there was none before qcc made it", path.display());
    } else {
        println!("nothing to undo: qcc has not changed {} (or it was undone already)", path.display());
    }
    Ok(())
}

/// Whether `claude` is on PATH.
pub fn installed() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("claude")).any(|f| f.is_file()))
        .unwrap_or(false)
}

/// Start `claude ARGS` with `env` set, the terminal handed over: qcc becomes it (exec), so its
/// exit code is the command's. Not on PATH: one line saying how to install it.
pub fn launch(env: &[(&str, String)], args: &[std::ffi::OsString]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    if !installed() {
        return Err(Error::Failed(
            "claude is not on PATH; install Claude Code with `npm install -g @anthropic-ai/claude-code`".into(),
        ));
    }
    let mut cmd = std::process::Command::new("claude");
    cmd.args(args);
    if env.iter().any(|(k, _)| *k == "ANTHROPIC_AUTH_TOKEN") {
        cmd.env_remove(UNSET); // one credential: no question about a custom key
    } else {
        // A pass-through cluster: Claude Code's own login, nothing in the environment over it.
        cmd.env_remove(UNSET).env_remove("ANTHROPIC_AUTH_TOKEN");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let e = cmd.exec();
    Err(Error::io("cannot start claude", e))
}

/// `env.ANTHROPIC_BASE_URL` in Claude Code's settings, when set (it applies to every session,
/// over what a shell passes).
pub fn settings_base_url() -> Option<String> {
    let bytes = crate::store::fsutil::read_file(&settings_path()).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.pointer("/env/ANTHROPIC_BASE_URL").and_then(Value::as_str).map(str::to_string)
}

/// `key` as one POSIX shell word: single-quoted, each `'` written as `'\''`.
fn shell_quote(key: &str) -> String {
    format!("'{}'", key.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn keys_are_one_shell_word_whatever_they_hold() {
        assert_eq!(shell_quote("proxy-managed"), "'proxy-managed'");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        for key in ["x'; touch /tmp/pwned; echo '", "$(id)", "`id`", "a b\tc", "'", "\\'\\"] {
            let out = std::process::Command::new("sh").arg("-c").arg(format!("echo {}", shell_quote(key))).output();
            let Ok(out) = out else { return };
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'), key);
        }
    }
}
