//! The Python qcc's profile commands, and launching Claude Code (with a stand-in `claude`).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::mock::{ok, MockUpstream};
use crate::support::*;

const KEY: &str = "sk-ant-api03-profileSECRETkey000000000000000000000000-abcd";

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// A `claude` that records its arguments, the settings it was started with, and exits 7.
fn stand_in_claude(home: &TempHome) -> PathBuf {
    let bin = home.path("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let script = bin.join("claude");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"args:$*\" > {0}/claude.ran\ncat \"$HOME/.claude/settings.json\" > {0}/claude.settings\nexit 7\n",
            home.root.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

fn path_with(bin: &std::path::Path) -> String {
    format!("{}:/usr/bin:/bin", bin.display())
}

#[test]
fn init_add_list_default_remove_status_and_config_set() {
    let home = TempHome::new();
    let o = home.run(&["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file: Value = serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("json");
    assert_eq!(file["settings"]["storage_backend_type"], "local");
    assert!(stdout(&home.run(&["init"])).contains("already exists"), "never overwrites");

    for (name, url) in [("solo", "https://api.example.com"), ("relay", "https://relay.example.org/anthropic")] {
        let o = home.run(&["add", name, "--url", url, "--key", KEY, "--description", "my key"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stdout(&o).contains("profileSECRET"), "key masked: {}", stdout(&o));
    }
    assert_eq!(home.run(&["add", "solo", "--url", "https://x.example", "--key", KEY]).status.code(), Some(2));
    let list = json_of(&home.run(&["list", "--json"]));
    let names: Vec<&str> = list["profiles"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["solo", "relay"]);
    assert_eq!(list["profiles"][0]["default"], true, "the first profile is the default");
    assert_eq!(list["profiles"][1]["type"], "single");
    assert_eq!(list["profiles"][1]["description"], "my key");

    assert!(home.run(&["default", "relay"]).status.success());
    assert_eq!(home.run(&["default", "nope"]).status.code(), Some(2));
    let status = json_of(&home.run(&["status", "--json"]));
    assert_eq!(status["default_profile"], "relay");
    assert_eq!(status["profiles"], 2);
    assert_eq!(status["proxy"], Value::Null);

    assert!(home.run(&["config", "set", "auto_sync", "false"]).status.success());
    let file: Value = serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("json");
    assert_eq!(file["settings"]["auto_sync"], false);
    assert_eq!(file["settings"]["storage_backend_type"], "local", "other settings kept");

    // remove: refused without --yes when stdin is not a terminal; the default moves on.
    let o = home.qcc().args(["remove", "relay"]).stdin(std::process::Stdio::null()).output().expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert!(home.run(&["remove", "relay", "--yes"]).status.success());
    assert_eq!(json_of(&home.run(&["status", "--json"]))["default_profile"], "solo");
    assert_eq!(home.run(&["remove", "relay", "--yes"]).status.code(), Some(2), "unknown profile");

    std::fs::write(home.config(), "{broken").expect("corrupt");
    let o = home.run(&["list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cache.json") && stderr(&o).lines().count() == 1, "{}", stderr(&o));
}

/// `qcc use --direct` (the Python qcc's `use`) writes the spec's four settings keys (every other
/// key kept), records last_used, and becomes `claude` (its exit code is qcc's). `qcc` alone
/// launches the default profile through a proxy.
#[test]
fn use_writes_settings_records_last_used_and_becomes_claude() {
    let home = TempHome::new();
    assert!(home.run(&["add", "solo", "--url", "https://api.example.com", "--key", KEY]).status.success());
    std::fs::create_dir_all(home.path(".claude")).expect("dir");
    std::fs::write(home.path(".claude/settings.json"), r#"{"model": "opus", "env": {"KEEP": "1"}}"#).expect("settings");
    let bin = stand_in_claude(&home);
    let o = home.qcc().env("PATH", path_with(&bin)).args(["use", "solo", "--direct"]).output().expect("run");
    assert_eq!(o.status.code(), Some(7), "claude's exit code: {}", stderr(&o));
    assert_eq!(std::fs::read_to_string(home.path("claude.ran")).expect("claude ran").trim(), "args:");
    let seen: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path("claude.settings")).expect("settings seen"))
            .expect("json");
    assert_eq!(seen["env"]["ANTHROPIC_BASE_URL"], "https://api.example.com");
    assert_eq!(seen["env"]["ANTHROPIC_API_KEY"], KEY);
    assert_eq!(seen["env"]["ANTHROPIC_AUTH_TOKEN"], KEY);
    assert_eq!(seen["apiKeyHelper"], format!("echo '{KEY}'"));
    assert_eq!((&seen["model"], &seen["env"]["KEEP"]), (&Value::from("opus"), &Value::from("1")), "other keys kept");
    let list = json_of(&home.run(&["list", "--json"]));
    assert!(list["profiles"][0]["last_used"].is_string(), "last_used set");

    // `qcc` alone: the default profile, through a proxy started for it. While settings.json
    // sends Claude Code straight to the endpoint (`--direct` above) it is refused, not launched
    // against the wrong place; `qcc proxy unuse` puts settings.json back, and it goes.
    std::fs::remove_file(home.path("claude.ran")).expect("rm");
    let o = home.qcc().env("PATH", path_with(&bin)).args(["--port", "0"]).output().expect("run");
    assert!(!o.status.success() && stderr(&o).contains("qcc proxy unuse"), "{}", stderr(&o));
    assert!(!home.path("claude.ran").exists());
    assert!(home.run(&["proxy", "unuse"]).status.success());
    assert_eq!(
        std::fs::read_to_string(home.path(".claude/settings.json")).expect("settings"),
        r#"{"model": "opus", "env": {"KEEP": "1"}}"#,
        "as it was before --direct"
    );
    assert!(home.run(&["proxy", "stop"]).status.success());
    let o = home.qcc().env("PATH", path_with(&bin)).args(["--port", "0"]).output().expect("run");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(home.path("claude.ran").exists());
    assert!(home.home().join("proxy.pid").exists(), "a proxy serves it");
    // --dry-run changes nothing and starts nothing.
    std::fs::remove_file(home.path("claude.ran")).expect("rm");
    let o = home.qcc().env("PATH", path_with(&bin)).args(["--dry-run"]).output().expect("run");
    assert!(o.status.success() && stdout(&o).contains("would run: claude"), "{}", stdout(&o));
    assert!(!home.path("claude.ran").exists());
    // --no-launch only writes.
    assert!(home
        .qcc()
        .env("PATH", path_with(&bin))
        .args(["use", "solo", "--direct", "--no-launch"])
        .output()
        .expect("run")
        .status
        .success());
    assert!(!home.path("claude.ran").exists());
}

#[test]
fn claude_missing_no_profiles_and_last_used() {
    let home = TempHome::new();
    // No profiles at all: a three-line hint (endpoint add first, qcc add second), exit 1.
    let o = home.qcc().env("PATH", "/usr/bin:/bin").output().expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("qcc endpoint add") && stderr(&o).contains("qcc add"));
    // claude not on PATH: one line, exit 1, nothing written or started.
    assert!(home.run(&["add", "solo", "--url", "https://api.example.com", "--key", KEY]).status.success());
    let empty = home.path("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let o = home.qcc().env("PATH", &empty).args(["use", "solo"]).output().expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("npm install -g @anthropic-ai/claude-code"), "{}", stderr(&o));
    assert!(!home.path(".claude/settings.json").exists());
    assert!(!home.home().join("proxy.pid").exists());
    // No default: the most recently used profile.
    assert!(home.run(&["use", "solo", "--direct", "--no-launch"]).status.success());
    assert!(home.run(&["add", "other", "--url", "https://other.example.com", "--key", KEY]).status.success());
    assert!(home.run(&["config", "set", "default_profile", "other"]).status.success());
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("json");
    cfg["settings"]["default_profile"] = Value::Null;
    std::fs::write(home.config(), serde_json::to_vec(&cfg).expect("json")).expect("write");
    let o = home.qcc().args(["--dry-run"]).output().expect("run");
    assert!(stdout(&o).contains("for 'solo'"), "solo was used last: {}", stdout(&o));
}

/// A cluster profile whose proxy runs: `qcc use` goes through that proxy (no second one, no
/// global settings written).
#[test]
fn use_of_a_served_cluster_goes_through_the_proxy() {
    let mock = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("team", &[Ep::new("a0000001", &mock.url(), KEY, 1), Ep::new("b0000001", &mock.url(), KEY, 2)]);
    let proxy = Proxy::start(&home, &["--cluster", "team"]);
    let o = home.run(&["use", "team", "--no-launch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("ANTHROPIC_BASE_URL={}", proxy.url())), "{}", stdout(&o));
    assert!(!stderr(&o).contains("started a proxy"), "{}", stderr(&o));
    assert!(!home.path(".claude/settings.json").exists());
    let status = json_of(&home.run(&["status", "--json"]));
    assert_eq!(status["proxy"]["cluster"], "team");
}

/// Completion scripts cover every command; the bash one is valid shell.
#[test]
fn completions_cover_every_command() {
    let home = TempHome::new();
    for shell in ["bash", "zsh", "fish"] {
        let o = home.run(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let text = stdout(&o);
        for word in [
            "init",
            "add",
            "use",
            "remove",
            "endpoint",
            "enable",
            "retry-all",
            "metrics",
            "--stream-hold",
            "--key-file",
        ] {
            assert!(text.contains(word.trim_start_matches("--")), "{shell} completion lacks {word}");
        }
    }
    // Every flag `endpoint add` takes is offered after it.
    let bash = stdout(&home.run(&["completions", "bash"]));
    let add = bash.lines().find(|l| l.contains("\"endpoint add\")")).expect("endpoint add line");
    for flag in [
        "--url",
        "--key",
        "--key-file",
        "--priority",
        "--weight",
        "--timeout",
        "--max-failures",
        "--ca-file",
        "--name",
        "--model-map",
        "--probe-model",
    ] {
        assert!(add.split(['"', ' ']).any(|w| w == flag), "endpoint add completion lacks {flag}: {add}");
    }
    let script = home.path("qcc.bash");
    std::fs::write(&script, stdout(&home.run(&["completions", "bash"]))).expect("write");
    let check = std::process::Command::new("bash").arg("-n").arg(&script).output().expect("bash -n");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(home.run(&["completions", "tcsh"]).status.code(), Some(2));
}
