//! CLI: every command and its error cases.

use std::os::unix::fs::PermissionsExt;

use crate::support::{stderr, stdout, TempHome};

const KEY1: &str = "sk-ant-api03-FIRSTSECRETKEY-0001abcd";
const KEY2: &str = "sk-ant-api03-SECONDSECRETKEY-0002wxyz";

fn assert_usage_error(home: &TempHome, args: &[&str]) {
    let o = home.run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with("qcc: error: "), "{args:?}: {err}");
    assert!(err.lines().count() <= 2, "{args:?}: short message: {err}");
}

#[test]
fn version_and_help() {
    let home = TempHome::new();
    let o = home.run(&["--version"]);
    assert_eq!(stdout(&o).trim(), format!("QCC version {}", env!("CARGO_PKG_VERSION")));
    let help = stdout(&home.run(&["--help"]));
    for cmd in [
        "endpoint add",
        "endpoint list",
        "endpoint remove",
        "config list",
        "proxy start",
        "proxy status",
        "proxy stop",
        "proxy logs",
        "proxy use",
        "queue status",
        "queue clear",
        "health status",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}");
    }
    let start = stdout(&home.run(&["proxy", "start", "--help"]));
    for flag in [
        "--cluster",
        "--host",
        "--port",
        "--strategy",
        "--ca-file",
        "--verify-interval",
        "--probe-model",
        "--log-level",
        "--max-body",
        "--max-connections",
        "--header-timeout",
        "--idle-timeout",
        "--drain-timeout",
        "--access-key",
    ] {
        assert!(start.contains(flag), "proxy start --help lacks {flag}");
    }
    assert!(stdout(&home.run(&["endpoint", "add", "--help"])).contains("--max-failures"));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let home = TempHome::new();
    assert_usage_error(&home, &["frobnicate"]);
    assert_usage_error(&home, &["--dry-run", "list"]);
    assert_usage_error(&home, &["endpoint"]);
    assert_usage_error(&home, &["endpoint", "add", "c", "--url"]);
    assert_usage_error(&home, &["endpoint", "add", "c", "--url", "http://x", "--key", "k", "--bogus"]);
    assert_usage_error(&home, &["endpoint", "add", "c", "--url", "http://x", "--key", "k", "--priority", "high"]);
    assert_usage_error(&home, &["endpoint", "list", "c", "extra"]);
    assert_usage_error(&home, &["proxy", "start", "--port", "99999"]);
    assert_usage_error(&home, &["proxy", "start", "--strategy", "fastest"]);
    assert_usage_error(&home, &["queue", "status", "--wat"]);
}

#[test]
fn endpoint_add_list_remove_round_trip_with_masked_keys() {
    let home = TempHome::new();
    let o = home.run(&["endpoint", "add", "work", "--url", "https://api.example.com", "--key", KEY1]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id1 = stdout(&o).trim().to_string();
    assert!(id1.len() == 8 && id1.chars().all(|c| c.is_ascii_hexdigit()), "{id1}");
    let o = home.run(&[
        "endpoint",
        "add",
        "work",
        "--url",
        "https://relay.example.org/anthropic",
        "--key",
        KEY2,
        "--priority",
        "2",
        "--weight",
        "50",
        "--timeout",
        "10",
        "--max-failures",
        "5",
    ]);
    let id2 = stdout(&o).trim().to_string();
    assert_ne!(id1, id2);
    let mode = std::fs::metadata(home.config()).expect("config").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let list = home.run(&["endpoint", "list", "work"]);
    let text = stdout(&list);
    assert!(text.contains(&id1) && text.contains(&id2) && text.contains("sk-ant-…abcd"), "{text}");
    let json = home.run(&["endpoint", "list", "work", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v[1]["id"], id2.as_str());
    assert_eq!(v[1]["priority"], 2);
    assert_eq!(v[1]["base_url"], "https://relay.example.org/anthropic");
    assert_eq!(v[1]["api_key"], "sk-ant-…wxyz");
    let config = home.run(&["config", "list", "--json"]);
    let c: serde_json::Value = serde_json::from_slice(&config.stdout).expect("json");
    assert_eq!(c["profiles"][0]["name"], "work");
    for out in [&list, &json, &config, &home.run(&["config", "list"])] {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains(KEY1) && !all.contains(KEY2), "a key leaked: {all}");
    }
    let o = home.run(&["endpoint", "remove", "work", &id1]);
    assert!(o.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&home.run(&["endpoint", "list", "work", "--json"]).stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(home.config()).expect("read")).expect("json");
    assert_eq!(
        file["profiles"]["work"]["base_url"], "https://relay.example.org/anthropic",
        "top-level mirrors the first endpoint"
    );
}

#[test]
fn invalid_input_is_refused_and_the_file_left_untouched() {
    let home = TempHome::new();
    home.run(&["endpoint", "add", "work", "--url", "https://api.example.com", "--key", KEY1]);
    let before = std::fs::read(home.config()).expect("config");
    for url in ["ftp://x.example.com", "https://", "http://x:99999", "api.example.com"] {
        let o = home.run(&["endpoint", "add", "work", "--url", url, "--key", KEY1]);
        assert_eq!(o.status.code(), Some(2), "{url}");
        assert!(stderr(&o).contains("invalid URL"), "{url}: {}", stderr(&o));
    }
    for args in [
        &["endpoint", "list", "nope"][..],
        &["endpoint", "remove", "nope", "abcdef12"],
        &["endpoint", "remove", "work", "abcdef12"],
        &["proxy", "start", "--cluster", "nope"],
    ] {
        let o = home.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("unknown"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(std::fs::read(home.config()).expect("config"), before);
}

#[test]
fn corrupt_config_gives_one_line_and_is_never_overwritten() {
    let home = TempHome::new();
    let garbage = b"{\"profiles\": {\"work\": [1, 2,,]}";
    std::fs::write(home.config(), garbage).expect("write");
    for args in [
        &["config", "list"][..],
        &["endpoint", "add", "work", "--url", "https://a.example.com", "--key", KEY1],
        &["endpoint", "list", "work"],
        &["proxy", "start"],
    ] {
        let o = home.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&home.config().display().to_string()), "names the file: {err}");
    }
    assert_eq!(std::fs::read(home.config()).expect("config"), garbage);
}

#[test]
fn python_shaped_config_with_unknown_fields_survives_a_rewrite() {
    let home = TempHome::new();
    let original = serde_json::json!({
        "user_id": "local:alice",
        "settings": {"default_profile": "my-cluster", "auto_sync": false, "encryption_enabled": true},
        "future_top": [1, 2, 3],
        "profiles": {
            "my-cluster": {
                "name": "my-cluster", "description": "", "priority": "primary", "enabled": true,
                "created_at": "2025-10-17T10:00:00.000000", "last_used": null,
                "base_url": "https://api.example.com", "api_key": KEY1, "profile_extra": {"a": 1},
                "endpoints": [{"id": "3f2a9c1d", "base_url": "https://api.example.com", "api_key": KEY1,
                    "weight": 100, "priority": 1, "enabled": true, "max_failures": 3, "timeout": 30,
                    "source_profile": null, "metadata": {"m": true}, "created_at": "2025-10-17T10:00:00.000000",
                    "health_status": {"status": "unknown", "last_check": null, "consecutive_failures": 0,
                        "total_requests": 0, "failed_requests": 0, "success_rate": 100.0, "avg_response_time": 0},
                    "endpoint_extra": "x"}]
            },
            "single": {"name": "single", "base_url": "https://solo.example.com", "api_key": KEY2}
        }
    });
    std::fs::write(home.config(), serde_json::to_vec_pretty(&original).expect("json")).expect("write");
    let list = stdout(&home.run(&["config", "list"]));
    assert!(list.contains("my-cluster (default)") && list.contains("single"), "{list}");
    let o = home.run(&["endpoint", "add", "my-cluster", "--url", "https://b.example.com", "--key", KEY2]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(home.config()).expect("read")).expect("json");
    assert_eq!(after["future_top"], original["future_top"]);
    assert_eq!(after["settings"], original["settings"]);
    assert_eq!(after["profiles"]["my-cluster"]["profile_extra"], original["profiles"]["my-cluster"]["profile_extra"]);
    assert_eq!(after["profiles"]["my-cluster"]["endpoints"][0], original["profiles"]["my-cluster"]["endpoints"][0]);
    assert_eq!(after["profiles"]["single"], original["profiles"]["single"]);
    assert_eq!(after["profiles"]["my-cluster"]["endpoints"].as_array().map(Vec::len), Some(2));
}

#[test]
fn commands_for_the_running_proxy_say_not_running() {
    let home = TempHome::new();
    for args in [&["proxy", "status"][..], &["queue", "status", "--json"], &["health", "status"], &["proxy", "stop"]] {
        let o = home.run(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        assert!(stderr(&o).contains("not running"), "{args:?}: {}", stderr(&o));
    }
    let o = home.run(&["queue", "clear"]);
    assert!(o.status.success(), "queue clear works on the file: {}", stderr(&o));
}

#[test]
fn proxy_use_writes_claude_settings_keeping_other_keys() {
    let home = TempHome::new();
    home.run(&["endpoint", "add", "work", "--url", "https://api.example.com", "--key", KEY1]);
    let dir = home.path("claude");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("settings.json"), br#"{"theme": "dark", "env": {"OTHER": "1"}}"#).expect("write");
    let o = home
        .qcc()
        .env("CLAUDE_CONFIG_DIR", &dir)
        .args(["proxy", "use", "work", "--port", "9999"])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("settings.json")).expect("read")).expect("json");
    assert_eq!(v["theme"], "dark");
    assert_eq!(v["env"]["OTHER"], "1");
    assert_eq!(v["env"]["ANTHROPIC_BASE_URL"], "http://127.0.0.1:9999");
    assert!(v["env"].get("ANTHROPIC_API_KEY").is_none(), "one credential variable: {v}");
    assert_eq!(v["env"]["ANTHROPIC_AUTH_TOKEN"], "proxy-managed");
    assert_eq!(v["apiKeyHelper"], "echo 'proxy-managed'");
    let mode = std::fs::metadata(dir.join("settings.json")).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Default location: ~/.claude/settings.json under HOME.
    let o = home.run(&["proxy", "use", "work"]);
    assert!(o.status.success());
    assert!(home.path(".claude/settings.json").exists());
    let o = home.run(&["proxy", "use", "nope"]);
    assert_eq!(o.status.code(), Some(2));

    // Undone: settings.json byte for byte as it was before qcc's first change, however many
    // changes came after; a file qcc made is removed.
    let original = b"{\"theme\": \"dark\",   \"env\": {\"OTHER\": \"1\"}}\n\n";
    let dir = home.path("claude2");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("settings.json"), original).expect("write");
    let run = |args: &[&str]| {
        let o = home.qcc().env("CLAUDE_CONFIG_DIR", &dir).args(args).output().expect("run");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    run(&["proxy", "use", "work", "--port", "9999"]);
    run(&["proxy", "use", "work", "--port", "9998"]);
    assert_ne!(std::fs::read(dir.join("settings.json")).expect("read"), original);
    assert!(run(&["proxy", "unuse"]).contains("as it was before"));
    assert_eq!(std::fs::read(dir.join("settings.json")).expect("read"), original, "byte for byte");
    assert!(run(&["proxy", "unuse"]).contains("nothing to undo"));
    let o = home.run(&["proxy", "unuse"]); // ~/.claude: qcc made it above
    assert!(o.status.success() && stdout(&o).contains("removed"), "{}", stdout(&o));
    assert!(!home.path(".claude/settings.json").exists());
}

/// `qcc logs | head` and `qcc proxy status | head`: the closed pipe ends qcc quietly (no panic,
/// nothing on stderr).
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let home = crate::support::TempHome::new();
    let log = home.path("access.jsonl");
    let line = r#"{"time":"2026-12-02T10:00:00.000000","method":"POST","path":"/v1/messages","status":"200","endpoint":"e1","endpoint_name":"main","attempts":1,"duration_ms":3}"#;
    std::fs::write(&log, format!("{line}\n").repeat(5000)).expect("log");
    let up = crate::support::mock::MockUpstream::start(crate::support::mock::ok());
    home.add_named_pair(&up.url(), &up.url());
    let _proxy = crate::support::Proxy::start(&home, &["--cluster", "c"]);
    let cases: [&[&str]; 2] = [&["logs", "--file", log.to_str().expect("path"), "-n", "2000"], &["proxy", "status"]];
    for args in cases {
        let mut child = home
            .qcc()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn qcc");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("a line");
        // (the reader is dropped here: the pipe is closed with most of the output unread)
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && err.trim().is_empty(), "{args:?}: {err}");
        use std::os::unix::process::ExitStatusExt;
        assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{args:?}: {:?}", out.status);
    }
}

/// A mistyped command or flag is told what was probably meant; `qcc` with no profiles suggests
/// `endpoint add` (failover) first.
#[test]
fn mistakes_get_did_you_mean_and_an_empty_config_points_at_endpoint_add() {
    let home = crate::support::TempHome::new();
    for (args, says) in [
        (&["stauts"][..], "did you mean `qcc status`?"),
        (&["endpoint", "ad", "c"][..], "did you mean `qcc endpoint add`?"),
        (&["key", "add", "bob", "--rmp", "5"][..], "did you mean --rpm?"),
        (&["proxy", "start", "--prot", "1"][..], "did you mean --port?"),
    ] {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(!stderr(&home.run(&["frobnicate"])).contains("did you mean"));
    let out = home.qcc().output().expect("qcc");
    let err = stderr(&out);
    let (ep, add) = (err.find("qcc endpoint add"), err.find("qcc add"));
    assert!(ep.is_some() && add.is_some() && ep < add, "{err}");
}

/// `qcc uninstall`: refused while a proxy runs and without --yes off a terminal; with --yes the
/// config file and $QCC_HOME go, the synced folder stays.
#[test]
fn uninstall_removes_this_machines_config_and_keeps_the_synced_folder() {
    let home = crate::support::TempHome::new();
    let up = crate::support::mock::MockUpstream::start(crate::support::mock::ok());
    home.add_named_pair(&up.url(), &up.url());
    let synced = home.path("Dropbox/FastCC");
    std::fs::create_dir_all(&synced).expect("folder");
    std::fs::write(synced.join("fastcc_config.json"), "{}").expect("folder file");
    let mut proxy = crate::support::Proxy::start(&home, &["--cluster", "c"]);
    let out = home.run(&["uninstall", "--yes"]);
    assert!(!out.status.success() && stderr(&out).contains("qcc proxy stop"), "{}", stderr(&out));
    assert!(home.config().exists() && home.home().exists(), "nothing removed while a proxy runs");
    assert!(proxy.terminate().is_some_and(|s| s.success()));
    let out = home.run(&["uninstall"]);
    assert!(!out.status.success() && stderr(&out).contains("without --yes"), "{}", stderr(&out));
    assert!(home.config().exists());
    let out = home.run(&["uninstall", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!home.config().exists() && !home.home().exists(), "{}", stdout(&out));
    assert!(synced.join("fastcc_config.json").exists(), "the synced folder stays");
    assert!(stdout(&home.run(&["uninstall", "--yes"])).contains("nothing to remove"));
}

/// A state folder this user cannot write (a service's, made by root) is one line that names the
/// folder and how to make it for this user; nothing is written. (Run as `nobody` through
/// `runuser` when the tests run as root, as CI's do; said and skipped otherwise.)
#[test]
fn an_unwritable_state_folder_says_who_should_make_it() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/usr/sbin/runuser").exists() {
        eprintln!("not root or no runuser: skipped");
        return;
    }
    let home = TempHome::new();
    let state = home.path("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home.root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let state_s = state.to_str().expect("utf-8").to_string();
    // A copy of the binary `nobody` can reach whatever folders the checkout is in.
    let bin = home.path("qcc");
    std::fs::copy(env!("CARGO_BIN_EXE_qcc"), &bin).expect("copy the binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = std::process::Command::new("/usr/sbin/runuser")
        .args([
            "-u",
            "nobody",
            "--",
            "env",
            &format!("QCC_HOME={state_s}"),
            &format!("QCC_CONFIG={state_s}/cache.json"),
        ])
        .arg("HOME=/tmp")
        .arg(&bin)
        .args(["endpoint", "add", "main", "--url", "https://api.example.com", "--key", "sk-x-0000000000"])
        .output()
        .expect("runuser");
    let err = stderr(&out);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert!(err.contains(&state_s) && err.contains("sudo install -d -o $(id -un) -m 0700"), "{err}");
    assert!(!state.join("cache.json").exists(), "nothing written");
}

/// Model maps, caps, routes and fallbacks are in the plain listings, not only in `--json`.
#[test]
fn plain_listings_show_maps_caps_routes_and_fallbacks() {
    let home = TempHome::new();
    let run = |args: &[&str]| {
        let out = home.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    run(&[
        "endpoint",
        "add",
        "work",
        "--url",
        "https://a.example",
        "--key",
        "sk-a-0000000000",
        "--name",
        "glm",
        "--model-map",
        "claude-*haiku*=glm-4.7",
        "--model-map",
        "claude-*=glm-5.2",
        "--rpm",
        "60",
        "--concurrent",
        "2",
    ]);
    run(&["endpoint", "add", "cheap", "--url", "https://b.example", "--key", "sk-b-0000000000"]);
    run(&["cluster", "set", "work", "--fallback", "cheap"]);
    run(&["route", "add", "work", "--model", "claude-*haiku*", "--to", "cheap"]);
    let list = run(&["endpoint", "list", "work"]);
    assert!(list.contains("model map: claude-*haiku*=glm-4.7, claude-*=glm-5.2"), "{list}");
    assert!(list.contains("caps: rpm 60, concurrent 2"), "{list}");
    for shown in [run(&["cluster", "show", "work"]), run(&["config", "list"])] {
        assert!(shown.contains("fallback: cheap"), "{shown}");
        assert!(shown.contains("route 1: model claude-*haiku* -> cheap"), "{shown}");
        assert!(shown.contains("model map: claude-*haiku*=glm-4.7"), "{shown}");
    }
}

/// Presets that ask: a provider that serves no model by Claude Code's names is refused without
/// `--model-map` (off a terminal), offers its `/models` to pick from on one; the plain presets
/// table shows key pages and notes; OpenAI-format URLs that look wrong get a hint; and a probe
/// refused for its model suggests `--model-map` with the URL it tried.
#[test]
fn presets_that_need_a_model_ask_for_one() {
    use crate::support::mock::{MockUpstream, Mode};
    let home = TempHome::new();
    let out = home.run(&["endpoint", "add", "local", "--preset", "ollama", "--key", "x"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("preset 'ollama' needs its model named") && err.contains("--model-map 'claude-*=qwen3-coder'"),
        "{err}"
    );
    assert!(!home.config().exists() || !std::fs::read_to_string(home.config()).unwrap_or_default().contains("11434"));
    let out =
        home.run(&["endpoint", "add", "local", "--preset", "ollama", "--key", "x", "--model-map", "claude-*=llama3"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let presets = stdout(&home.run(&["presets"]));
    assert!(presets.contains("keys: https://openrouter.ai/settings/keys"), "{presets}");
    assert!(presets.contains("note: any --key (Ollama ignores it)"), "{presets}");

    // On a terminal (script(1) gives it one): the provider's models to pick from.
    let models = MockUpstream::start(Mode::Json {
        status: 200,
        body: r#"{"object":"list","data":[{"id":"qwen3-coder"},{"id":"llama3.3"}]}"#.into(),
    });
    let qcc = env!("CARGO_BIN_EXE_qcc");
    let cmd = format!("{qcc} endpoint add picked --preset ollama --url {}/v1 --key x", models.url());
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", &cmd, "/dev/null"])
        .env("QCC_HOME", home.home())
        .env("QCC_CONFIG", home.config())
        .env("HOME", home.path(""));
    let mut proc =
        script.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("script(1)");
    {
        use std::io::Write;
        let mut stdin = proc.stdin.take().expect("stdin");
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(b"2\n").expect("answer");
    }
    let child = proc.wait_with_output().expect("wait");
    let said = String::from_utf8_lossy(&child.stdout).to_string();
    assert!(child.status.success(), "{said}");
    assert!(said.contains("llama3.3"), "{said}");
    assert_eq!(models.requests()[0].path, "/v1/models");
    let list = stdout(&home.run(&["endpoint", "list", "picked", "--json"]));
    assert!(list.contains("\"claude-*\"") && list.contains("\"llama3.3\""), "{list}");

    // Hints for OpenAI-format URLs.
    let out = home.run(&[
        "endpoint",
        "add",
        "o",
        "--url",
        "http://127.0.0.1:9/v1/messages",
        "--format",
        "openai",
        "--key",
        "k",
    ]);
    assert!(stderr(&out).contains("is an Anthropic (Messages) path"), "{}", stderr(&out));
    let out =
        home.run(&["endpoint", "add", "o", "--url", "http://127.0.0.1:9/api", "--format", "openai", "--key", "k"]);
    assert!(stderr(&out).contains("usually end in /v1"), "{}", stderr(&out));

    // A probe refused for its model: the fix is a model map, with the URL tried.
    let up = MockUpstream::start(Mode::Json {
        status: 404,
        body: r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-x not found"}}"#.into(),
    });
    let out = home.run(&["endpoint", "add", "m", "--url", &up.url(), "--key", "sk-m-0000000000", "--name", "vendor"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = home.run(&["health", "test", "m"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("vendor does not know the model") && err.contains("/v1/messages"), "{err}");
    assert!(err.contains("--model-map 'claude-*=MODEL'"), "{err}");
}
