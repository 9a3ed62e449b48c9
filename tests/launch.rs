//! Everywhere Claude Code runs (issue 27): a proxy in the background, `qcc env`, the launcher
//! (through a proxy, arguments passed on to `claude`), per-user service files, `qcc doctor`.
//! A stand-in `claude` on PATH records what it was started with; nothing here needs the real one.

use std::path::Path;

use crate::support::mock::{ok, MockUpstream};
use crate::support::{post_messages, stderr, stdout, Ep, TempHome};

/// A `claude` that writes its arguments and the variables qcc passes into `out`.
fn fake_claude(home: &TempHome) -> std::path::PathBuf {
    let bin = home.path("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let out = home.path("claude.out");
    let script = format!(
        "#!/bin/sh\nprintf 'args:%s\\n' \"$*\" > '{}'\nprintf 'base:%s\\nkey:%s\\ntoken:%s\\n' \"$ANTHROPIC_BASE_URL\" \"$ANTHROPIC_API_KEY\" \"$ANTHROPIC_AUTH_TOKEN\" >> '{}'\n",
        out.display(),
        out.display()
    );
    std::fs::write(bin.join("claude"), script).expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("claude"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

fn path_with(bin: &Path) -> String {
    format!("{}:/usr/bin:/bin", bin.display())
}

fn running_url(home: &TempHome) -> String {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.home().join("proxy.pid")).expect("pid file")).expect("json");
    format!("http://{}:{}", info["host"].as_str().unwrap_or(""), info["port"])
}

#[test]
fn a_background_proxy_returns_once_listening_and_a_second_start_says_which_runs() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let out = home.run(&["proxy", "start", "-d", "--cluster", "c", "--port", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let base = text.lines().find_map(|l| l.strip_prefix("ANTHROPIC_BASE_URL=")).expect("base line").to_string();
    assert_eq!(base, running_url(&home), "the pid file is written by the time it returns");
    let addr = base.trim_start_matches("http://").parse().expect("addr");
    assert_eq!(post_messages(addr).status, 200);
    assert!(home.home().join("proxy.log").exists());
    let again = home.run(&["proxy", "start", "--background", "--cluster", "c", "--port", "0"]);
    assert!(!again.status.success());
    let err = stderr(&again);
    assert!(err.contains("already running") && err.contains("cluster 'c'") && err.contains("pid"), "{err}");
    assert_eq!(post_messages(addr).status, 200, "the running one untouched");
    // Bad input: one line, non-zero, nothing started.
    let nope = home.run(&["proxy", "stop"]);
    assert!(nope.status.success(), "{}", stderr(&nope));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let out = home.run(&["proxy", "start", "-d", "--cluster", "c", "--port", &port]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Address already in use"), "{}", stderr(&out));
    let out = home.run(&["proxy", "start", "-d", "--cluster", "nope", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!home.home().join("proxy.pid").exists());
}

#[test]
fn qcc_env_starts_a_proxy_and_prints_exports_a_shell_can_eval() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let out = home.run(&["env", "--cluster", "c", "--port", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("started a proxy"), "{}", stderr(&out));
    let exports = stdout(&out);
    let evald = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{exports}\necho \"$ANTHROPIC_BASE_URL\""))
        .output()
        .expect("sh");
    assert_eq!(String::from_utf8_lossy(&evald.stdout).trim(), running_url(&home));
    // Again: the same proxy, no second one; fish syntax; the access key once there is one.
    std::fs::write(home.home().join("access_key"), "k-0123456789abcdef\n").expect("key");
    let fish = stdout(&home.run(&["env", "--cluster", "c", "--shell", "fish"]));
    assert!(
        fish.contains("set -gx ANTHROPIC_BASE_URL '")
            && fish.contains("set -e ANTHROPIC_API_KEY;")
            && fish.contains("set -gx ANTHROPIC_AUTH_TOKEN 'k-0123456789abcdef';"),
        "{fish}"
    );
    let other = home.run(&["env", "--cluster", "other"]);
    assert!(!other.status.success() && stderr(&other).contains("unknown cluster"), "{}", stderr(&other));
}

#[test]
fn the_launcher_goes_through_a_proxy_and_passes_arguments_to_claude() {
    let a = MockUpstream::start(ok());
    let b = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    let bin = fake_claude(&home);
    let out = home
        .qcc()
        .env("PATH", path_with(&bin))
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-left-in-the-shell") // taken away, or Claude Code asks
        .args(["use", "c", "--port", "0", "--", "-p", "hi", "-c"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = std::fs::read_to_string(home.path("claude.out")).expect("claude ran");
    assert!(seen.contains("args:-p hi -c\n"), "{seen}");
    assert!(seen.contains(&format!("base:{}\n", running_url(&home))), "{seen}");
    // No access key on loopback: a placeholder, or the real Claude Code asks to log in instead.
    assert!(seen.contains("key:\ntoken:proxy-managed\n"), "one credential variable (no ANTHROPIC_API_KEY): {seen}");
    assert!(!home.path(".claude/settings.json").exists(), "no global settings written");
    // `qcc` alone: the default profile, the same proxy.
    let out = home.qcc().env("PATH", path_with(&bin)).args(["--", "--resume", "X"]).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(home.path("claude.out")).expect("ran").contains("args:--resume X"));
    // --direct is for a single-endpoint profile only, and says what it does.
    let out = home.qcc().env("PATH", path_with(&bin)).args(["use", "c", "--direct"]).output().expect("run");
    assert!(!out.status.success() && stderr(&out).contains("single-endpoint"), "{}", stderr(&out));
    // `--` is only for the launcher.
    let out = home.run(&["proxy", "status", "--", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_launcher_without_claude_says_so_and_starts_nothing() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let out = home.qcc().env("PATH", "/nonexistent").args(["use", "c", "--port", "0"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("claude is not on PATH") && err.trim().lines().count() == 1, "{err}");
    assert!(!home.home().join("proxy.pid").exists());
}

#[test]
fn a_direct_single_endpoint_profile_is_written_into_settings_and_said() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("solo", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let bin = fake_claude(&home);
    let out = home.qcc().env("PATH", path_with(&bin)).args(["use", "solo", "--direct"]).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("without a proxy and without failover"), "{}", stdout(&out));
    let settings = std::fs::read_to_string(home.path(".claude/settings.json")).expect("settings");
    assert!(settings.contains(&m.url()));
    assert!(!home.home().join("proxy.pid").exists(), "no proxy for --direct");
}

#[test]
fn service_files_are_valid_units_and_a_plist_and_dir_writes_only_files() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let dir = home.path("units");
    let d = dir.to_str().expect("utf8");
    let out = home.run(&["service", "install", "--cluster", "c", "--port", "17860", "--dir", d, "--os", "linux"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let service = std::fs::read_to_string(dir.join("qcc.service")).expect("service");
    let socket = std::fs::read_to_string(dir.join("qcc.socket")).expect("socket");
    assert!(service.contains("Type=notify") && service.contains("\"--cluster\" \"c\""), "{service}");
    assert!(service.contains(&format!("\"QCC_HOME={}\"", home.home().display())), "{service}");
    assert!(socket.contains("ListenStream=127.0.0.1:17860"), "{socket}");
    if let Ok(v) = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("qcc.socket"))
        .arg(dir.join("qcc.service"))
        .output()
    {
        let said = String::from_utf8_lossy(&v.stderr);
        assert!(v.status.success() && !said.contains("qcc."), "systemd-analyze verify: {said}");
    }
    // --dir writes the files only: no access key (it would lock out every shell holding the
    // placeholder, for a service that does not run yet).
    assert!(!home.home().join("access_key").exists(), "--dir made an access key");
    // A proxy already on the port: said, with how to hand over.
    let proxy = crate::support::Proxy::start(&home, &["--cluster", "c"]);
    let port = proxy.addr.port().to_string();
    let out = home.run(&["service", "install", "--cluster", "c", "--port", &port, "--dir", d, "--os", "linux"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("a qcc proxy for 'c'") && said.contains("qcc proxy stop"), "{said}");
    drop(proxy);
    let out = home.run(&["service", "install", "--cluster", "c", "--port", "17860", "--dir", d, "--os", "macos"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plist = dir.join("dev.qcc.proxy.plist");
    if let Ok(p) = std::process::Command::new("python3")
        .arg("-c")
        .arg("import plistlib,sys,json; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))")
        .arg(&plist)
        .output()
    {
        assert!(p.status.success(), "plist: {}", String::from_utf8_lossy(&p.stderr));
        let v: serde_json::Value = serde_json::from_slice(&p.stdout).expect("plist as json");
        assert_eq!(v["Label"], "dev.qcc.proxy");
        assert_eq!(v["RunAtLoad"], true);
        assert_eq!(v["KeepAlive"], true);
        let args = v["ProgramArguments"].as_array().expect("args");
        assert_eq!(
            args[1..],
            serde_json::json!(["proxy", "start", "--cluster", "c", "--port", "17860"]).as_array().expect("list")[..]
        );
    }
    let out = home.run(&["service", "uninstall", "--dir", d, "--os", "linux"]);
    assert!(out.status.success());
    assert!(!dir.join("qcc.service").exists() && !dir.join("qcc.socket").exists());
    // No systemctl: one line, nothing written.
    let out = home
        .qcc()
        .env("PATH", "/nonexistent")
        .env("XDG_CONFIG_HOME", home.path("xdg"))
        .args(["service", "install", "--os", "linux"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("systemctl not found"), "{}", stderr(&out));
    assert!(!home.path("xdg").exists(), "nothing half-written");
    let out = home.run(&["service", "install", "--cluster", "nope", "--dir", d]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // systemctl there but no user bus (a server without a login session): the install fails
    // and leaves nothing behind, the access key included (it would turn access control on at
    // the next proxy start, with no word said).
    let bin = home.path("fakebin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let fake = bin.join("systemctl");
    std::fs::write(&fake, "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = home
        .qcc()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("XDG_CONFIG_HOME", home.path("xdg"))
        .args(["service", "install", "--cluster", "c", "--port", "17862", "--os", "linux"])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("Failed to connect to bus") && err.contains("nothing was installed"),
        "{err}"
    );
    assert!(!home.home().join("access_key").exists(), "no access key left behind");
    assert!(!home.path("xdg/systemd/user/qcc.service").exists(), "no unit left behind");
}

#[test]
fn doctor_says_what_is_wrong_and_how_to_fix_it() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let bin = fake_claude(&home);
    // Nothing runs, and Claude Code's settings point at a dead port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    std::fs::create_dir_all(home.path(".claude")).expect("dir");
    std::fs::write(
        home.path(".claude/settings.json"),
        format!(r#"{{"env": {{"ANTHROPIC_BASE_URL": "http://{dead}"}}}}"#),
    )
    .expect("settings");
    let out =
        home.qcc().env("PATH", path_with(&bin)).env_remove("ANTHROPIC_BASE_URL").arg("doctor").output().expect("run");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The fix starts the proxy where Claude Code points (its port).
    let start = format!("qcc proxy start -d --cluster c --port {}", dead.port());
    assert!(text.contains("PROBLEM  proxy") && text.contains(&start), "{text}");
    assert!(text.contains("PROBLEM  settings.json") && text.contains("nothing answers there"), "{text}");
    assert!(text.contains("ok       endpoint 127.0.0.1 (http://127.0.0.1:"), "named by its name: {text}");
    // Fixed: a proxy runs and the settings point at it.
    let env = home.run(&["env", "--cluster", "c", "--port", "0"]);
    assert!(env.status.success(), "{}", stderr(&env));
    let base = running_url(&home);
    std::fs::write(home.path(".claude/settings.json"), format!(r#"{{"env": {{"ANTHROPIC_BASE_URL": "{base}"}}}}"#))
        .expect("settings");
    let out = home
        .qcc()
        .env("PATH", path_with(&bin))
        .env("ANTHROPIC_BASE_URL", &base)
        .args(["doctor", "--json"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(out.status.code(), Some(0));
    // An uninstalled service is a note, not a problem.
    let service = v["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == "service")).cloned();
    assert!(service.as_ref().is_some_and(|s| s["ok"] == true), "{v}");

    // The whole config: a fallback to a cluster that is gone, a priority level naming one, and
    // settings.json sending Claude Code past the running proxy (to something that answers).
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("json");
    cfg["profiles"]["c"]["fallback"] = serde_json::json!(["gone"]);
    std::fs::write(home.config(), serde_json::to_vec(&cfg).expect("json")).expect("write");
    std::fs::write(
        home.home().join("priority.json"),
        r#"{"priority_map": {"primary": "c", "secondary": "vanished", "fallback": null}, "active_profile": "c"}"#,
    )
    .expect("priority.json");
    let elsewhere = format!("http://{}", m.url().trim_start_matches("http://"));
    std::fs::write(
        home.path(".claude/settings.json"),
        format!(r#"{{"env": {{"ANTHROPIC_BASE_URL": "{elsewhere}"}}}}"#),
    )
    .expect("settings");
    let out =
        home.qcc().env("PATH", path_with(&bin)).env("ANTHROPIC_BASE_URL", &base).arg("doctor").output().expect("run");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("PROBLEM  clusters: cluster 'c': its fallback 'gone'"), "{text}");
    assert!(text.contains("PROBLEM  priority.json: its secondary profile 'vanished'"), "{text}");
    assert!(text.contains("PROBLEM  settings.json") && text.contains("not to the running qcc proxy"), "{text}");
    assert!(home.run(&["proxy", "stop"]).status.success());
}

/// The flags a cluster's proxy was started with are remembered: `qcc proxy restart`, `qcc env`
/// (and `qcc use`) and the service start it the same way; the access key is never kept.
#[test]
fn a_proxy_is_restarted_and_relaunched_with_the_flags_it_was_started_with() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let p = port.to_string();
    let out = home.run(&[
        "proxy",
        "start",
        "-d",
        "--cluster",
        "c",
        "--port",
        &p,
        "--verify-interval",
        "7",
        "--access-key",
        "k-0123456789abcdef-secret",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let remembered = std::fs::read_to_string(home.home().join("proxy_flags.json")).expect("remembered");
    assert!(remembered.contains("--verify-interval") && !remembered.contains("secret"), "{remembered}");
    let settings = |home: &TempHome| {
        let out = home.run(&["proxy", "status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
        let pid_file = std::fs::read_to_string(home.home().join("proxy.pid")).expect("pid file");
        let info: serde_json::Value = serde_json::from_str(&pid_file).expect("json");
        (v["settings"]["verify_interval_secs"].clone(), info["port"].clone(), info["pid"].clone())
    };
    let (interval, at, pid) = settings(&home);
    assert_eq!((interval, at.clone()), (serde_json::json!(7), serde_json::json!(port)));
    // Restarted: a new process, the same address and flags.
    let out = home.run(&["proxy", "restart"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (interval, again, new_pid) = settings(&home);
    assert_eq!((interval, again), (serde_json::json!(7), at));
    assert_ne!(new_pid, pid, "a new process");
    // Stopped, then started by `qcc env`: the same way again.
    assert!(home.run(&["proxy", "stop"]).status.success());
    let out = home.run(&["env", "--cluster", "c"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("127.0.0.1:{port}")), "{}", stdout(&out));
    assert_eq!(settings(&home).0, serde_json::json!(7));
    assert!(home.run(&["proxy", "stop"]).status.success());
    // The service's unit starts it so too, on the service's own address.
    let dir = home.path("units");
    let d = dir.to_str().expect("utf8");
    let out = home.run(&["service", "install", "--cluster", "c", "--port", "17861", "--dir", d, "--os", "linux"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let unit = std::fs::read_to_string(dir.join("qcc.service")).expect("unit");
    assert!(unit.contains("\"--verify-interval\" \"7\"") && unit.contains("\"--port\" \"17861\""), "{unit}");
    assert!(!unit.contains(&p) && !unit.contains("secret"), "{unit}");
}

/// `qcc use` without a NAME: a numbered pick list on a terminal (a pty made by `script`), never
/// when stdin is not a terminal.
#[test]
fn qcc_use_without_a_name_offers_a_pick_list_on_a_terminal_only() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    for c in ["alpha", "beta"] {
        let out = home.run(&["endpoint", "add", c, "--url", &m.url(), "--key", "sk-pick-0000000000"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = home.run(&["use"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs a profile NAME"), "{}", stderr(&out));
    if std::process::Command::new("script").arg("--version").output().is_err() {
        return; // (no `script` to make a terminal with)
    }
    let cmd = format!("{} use --no-launch --port 0", env!("CARGO_BIN_EXE_qcc"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("QCC_HOME", home.home())
        .env("QCC_CONFIG", home.config())
        .env("HOME", home.path(""))
        .env_remove("QCC_ACCESS_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"2\n").expect("answer");
    let out = child.wait_with_output().expect("script ran");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1) alpha") && said.contains("2) beta"), "{said}");
    let status = home.run(&["proxy", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status");
    assert_eq!(v["cluster"], "beta", "the one picked: {said}");
    assert!(home.run(&["proxy", "stop"]).status.success());
}

/// A proxy started without `--cluster` serves the profile priorities, and comes back that way
/// after `qcc proxy restart` (its chain, a `priority switch` made meanwhile); priority edits reach
/// it at once: `set`/`policy` by a reload, a `switch` by a checked restart. A restart that could
/// not start is refused before anything stops.
#[test]
fn a_priority_proxy_restarts_as_it_was_started_and_takes_priority_edits_live() {
    let (a, b) = (MockUpstream::start(ok()), MockUpstream::start(ok()));
    let home = TempHome::new();
    for (name, url) in [("work", a.url()), ("spare", b.url())] {
        let out = home.run(&["endpoint", "add", name, "--url", &url, "--key", "sk-test-000000000"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for args in [&["priority", "set", "work", "primary"][..], &["priority", "set", "spare", "secondary"]] {
        assert!(home.run(args).status.success());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = home.run(&["proxy", "start", "-d", "--port", &port.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = |home: &TempHome| -> serde_json::Value {
        let out = home.run(&["proxy", "status", "--json"]);
        serde_json::from_slice(&out.stdout).expect("status json")
    };
    let chain = |s: &serde_json::Value| s["clusters"][0]["chain"].as_array().cloned().unwrap_or_default();
    assert_eq!((status(&home)["cluster"].as_str(), chain(&status(&home)).len()), (Some("work"), 0));
    // `policy` reaches it at once: the secondary becomes its chain, no restart.
    let pid = |home: &TempHome| std::fs::read_to_string(home.home().join("proxy.pid")).expect("pid file");
    let before = pid(&home);
    let out = home.run(&["priority", "policy", "--auto-failover"]);
    assert!(out.status.success() && stderr(&out).contains("applied to the running proxy"), "{}", stderr(&out));
    assert_eq!(chain(&status(&home)), [serde_json::json!("spare")]);
    assert_eq!(pid(&home), before, "reloaded, not restarted");
    // A restart keeps serving by priority, with the chain.
    assert!(home.run(&["proxy", "restart"]).status.success());
    let s = status(&home);
    assert_eq!((s["cluster"].as_str(), chain(&s)), (Some("work"), vec![serde_json::json!("spare")]), "{s}");
    // A switch restarts it to serve the new profile.
    let out = home.run(&["priority", "switch", "spare"]);
    assert!(out.status.success() && stderr(&out).contains("restarting it to serve 'spare'"), "{}", stderr(&out));
    assert_eq!(status(&home)["cluster"], "spare");
    let r =
        crate::support::request(format!("127.0.0.1:{port}").parse().expect("addr"), "POST", "/v1/messages", &[], b"{}");
    assert_eq!((r.status, r.header("x-qcc-cluster")), (200, Some("spare")));
    // A config that cannot start: the restart is refused, naming why, and the proxy goes on.
    let good = std::fs::read(home.config()).expect("config");
    std::fs::write(home.config(), b"{ not json").expect("break config");
    let out = home.run(&["proxy", "restart"]);
    assert!(
        !out.status.success() && stderr(&out).contains("goes on") && stderr(&out).contains("cache.json"),
        "{}",
        stderr(&out)
    );
    std::fs::write(home.config(), good).expect("restore config");
    assert_eq!(status(&home)["cluster"], "spare", "still serving");
    assert!(home.run(&["proxy", "stop"]).status.success());
}

/// Claude Code's settings.json sends it elsewhere (it wins over the environment qcc passes):
/// `qcc use` does not launch it against the wrong place with only a warning. Without a terminal
/// to ask on it refuses, saying how to fix it; `qcc proxy use` fixes it and the launch goes on.
#[test]
fn qcc_use_refuses_while_settings_send_claude_code_elsewhere() {
    let m = MockUpstream::start(ok());
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &m.url(), "sk-a-0000000000", 1)]);
    let bin = fake_claude(&home);
    std::fs::create_dir_all(home.path(".claude")).expect("dir");
    std::fs::write(
        home.path(".claude/settings.json"),
        format!(r#"{{"env": {{"ANTHROPIC_BASE_URL": "{}"}}}}"#, m.url()),
    )
    .expect("settings");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port().to_string();
    let launch = || {
        home.qcc()
            .env("PATH", path_with(&bin))
            .stdin(std::process::Stdio::null())
            .args(["use", "c", "--port", &port])
            .output()
            .expect("run")
    };
    let out = launch();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("settings.json") && err.contains("qcc proxy use c") && err.contains("qcc proxy unuse"),
        "{err}"
    );
    assert!(!home.path("claude.out").exists(), "Claude Code was not started");
    let fix = home.qcc().args(["proxy", "use", "c", "--port", &port]).output().expect("run");
    assert!(fix.status.success(), "{}", stderr(&fix));
    let out = launch();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(home.path("claude.out"))
        .expect("claude ran")
        .contains(&format!("base:http://127.0.0.1:{port}")));
    assert!(home.run(&["proxy", "stop"]).status.success());
}
