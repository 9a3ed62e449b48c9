//! One proxy for every terminal (issue 51, item 1): a proxy started for one cluster serves any
//! cluster of the config at `/c/NAME`, loading it on demand; `qcc env` and `qcc use` hand that URL
//! out; keys and the places that say which cluster served hold for it — through the binary.

use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode};
use crate::support::{request, stderr, stdout, wait_until, Proxy, TempHome};

fn reply(model: &str) -> Mode {
    Mode::Json {
        status: 200,
        body: format!(
            r#"{{"id":"msg_1","type":"message","role":"assistant","model":"{model}","content":[{{"type":"text","text":"hi"}}],"stop_reason":"end_turn","usage":{{"input_tokens":10,"output_tokens":2}}}}"#
        ),
    }
}

fn ok(home: &TempHome, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn post(proxy: &Proxy, path: &str, key: Option<&str>) -> crate::support::Response {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(k) = key {
        headers.push(("x-api-key", k));
    }
    request(proxy.addr, "POST", path, &headers, br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#)
}

#[test]
fn a_proxy_for_one_cluster_serves_any_other_at_its_path() {
    let work = MockUpstream::start(reply("work-model"));
    let glm = MockUpstream::start(reply("glm-model"));
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "work", "--url", &work.url(), "--key", "sk-work-000000000", "--name", "w"]);
    ok(&home, &["endpoint", "add", "glm", "--url", &glm.url(), "--key", "sk-glm-0000000000", "--name", "g"]);
    let log = home.path("access.jsonl");
    let proxy = Proxy::start(&home, &["--cluster", "work", "--access-log", log.to_str().expect("path")]);
    assert_eq!(proxy.status()["clusters"].as_array().map(Vec::len), Some(1), "only 'work' at start");

    // Not served yet: loaded on demand; the upstream never sees the prefix.
    let r = post(&proxy, "/c/glm/v1/messages?beta=true", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-qcc-cluster"), Some("glm"));
    assert_eq!(glm.requests().last().expect("sent").path, "/v1/messages?beta=true");
    assert!(proxy.log().contains("cluster 'glm' asked for by URL"), "{}", proxy.log());
    // Served now; the started cluster as before, by its own path or by name.
    assert_eq!(post(&proxy, "/c/glm/v1/messages", None).header("x-qcc-cluster"), Some("glm"));
    assert_eq!(post(&proxy, "/v1/messages", None).header("x-qcc-cluster"), Some("work"));
    assert_eq!(post(&proxy, "/c/work/v1/messages", None).header("x-qcc-cluster"), Some("work"));
    assert_eq!((glm.requests().len(), work.requests().len()), (2, 2));
    let clusters: Vec<String> = proxy.status()["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    assert!(clusters.contains(&"glm".to_string()), "{clusters:?}");
    // A cluster the config does not have: a 404 that names it; nothing sent anywhere.
    let r = post(&proxy, "/c/nope/v1/messages", None);
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("nope"), "{}", r.text());
    assert_eq!((glm.requests().len(), work.requests().len()), (2, 2));
    // The history says which cluster served.
    assert!(wait_until(Duration::from_secs(3), || std::fs::read_to_string(&log).is_ok_and(|l| l
        .lines()
        .filter(|l| l.contains("\"cluster\":\"glm\""))
        .count()
        >= 2)));

    // The CLI hands that URL out while the proxy for 'work' runs.
    let env = ok(&home, &["env", "--cluster", "glm"]);
    assert!(env.contains(&format!("ANTHROPIC_BASE_URL='{}/c/glm'", proxy.url())), "{env}");
    let env = ok(&home, &["env", "--cluster", "work"]);
    assert!(env.contains(&format!("ANTHROPIC_BASE_URL='{}'", proxy.url())), "{env}");
    let dry = ok(&home, &["use", "glm", "--dry-run"]);
    assert!(dry.contains(&format!("serves 'glm' at {}/c/glm", proxy.url())), "{dry}");
}

/// Keys hold for a cluster named by URL: a key for 'glm' may use it there and nowhere else.
#[test]
fn a_key_for_one_cluster_is_held_to_it_at_its_path() {
    let work = MockUpstream::start(reply("work-model"));
    let glm = MockUpstream::start(reply("glm-model"));
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "work", "--url", &work.url(), "--key", "sk-work-000000000"]);
    ok(&home, &["endpoint", "add", "glm", "--url", &glm.url(), "--key", "sk-glm-0000000000"]);
    let bob = crate::keys::add_key(&home, "bob", &["--cluster", "glm"]);
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    assert_eq!(post(&proxy, "/c/glm/v1/messages", Some(&bob)).status, 200);
    let r = post(&proxy, "/v1/messages", Some(&bob));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("key 'bob' is for cluster 'glm'"), "{}", r.text());
    assert_eq!(post(&proxy, "/c/glm/v1/messages", None).status, 401, "access control as for any request");
    assert_eq!(work.requests().len(), 0);
}

/// Claude Code's start-up `HEAD /` (sent without a key) is never an endpoint failure: relayed as
/// the endpoint answers it, it lowers no success rate and queues nothing.
#[test]
fn claude_codes_startup_head_is_not_an_endpoint_failure() {
    let up = MockUpstream::start(Mode::Status { status: 401, retry_after: None });
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "work", "--url", &up.url(), "--key", "sk-work-000000000"]);
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    for _ in 0..3 {
        let mut c = crate::support::Conn::connect(proxy.addr);
        c.send(format!("HEAD / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", proxy.addr).as_bytes());
        assert_eq!(c.read_head().0, 401, "the endpoint's answer, relayed");
    }
    let ep = &proxy.status()["endpoints"][0];
    assert_eq!(ep["health"]["failed_requests"], 0, "{ep}");
    assert_eq!(ep["health"]["success_rate"], 100.0, "{ep}");
    assert_eq!(ep["in_failure_queue"], false, "{ep}");
}

/// `qcc dashboard`: the page's address and how to sign in, never a key in the URL; exit 3 with
/// no proxy.
#[test]
fn the_dashboard_command_says_where_and_how_to_sign_in() {
    let up = MockUpstream::start(reply("m"));
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "work", "--url", &up.url(), "--key", "sk-work-000000000"]);
    let none = home.run(&["dashboard"]);
    assert_eq!(none.status.code(), Some(3), "{}", stderr(&none));
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    let said = ok(&home, &["dashboard"]);
    assert!(said.starts_with(&format!("{}/_qcc/\n", proxy.url())), "{said}");
    assert!(said.contains("no sign-in"), "{said}");
    drop(proxy);
    let alice = crate::keys::add_key(&home, "alice", &["--admin"]);
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    let said = ok(&home, &["dashboard"]);
    assert!(said.contains("sign in: the page asks for a key once; give it an admin client key"), "{said}");
    assert!(!said.contains(&alice) && !said.contains("qcc-"), "no key shown: {said}");
    // --open with no browser here: said, and still the address.
    let out = home
        .qcc()
        .args(["dashboard", "--open"])
        .env("BROWSER", "/nonexistent-browser")
        .env("PATH", "/nonexistent")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(stdout(&out).starts_with(&format!("{}/_qcc/", proxy.url())));
    assert!(stderr(&out).contains("no browser could be started"), "{}", stderr(&out));
}

/// `qcc statusline`: Claude Code's session JSON on stdin, one line from the running proxy; with
/// no proxy an honest line; `--install`/`--uninstall` keep the rest of settings.json.
#[test]
fn the_status_line_says_who_answered_the_session_and_what_is_left() {
    use std::io::Write;
    let up = MockUpstream::start(reply("glm-4.6"));
    let home = TempHome::new();
    ok(
        &home,
        &[
            "endpoint",
            "add",
            "work",
            "--url",
            &up.url(),
            "--key",
            "sk-work-000000000",
            "--name",
            "glm",
            "--model-map",
            "claude-*=glm-4.6",
        ],
    );
    let status_line = |input: &str| {
        let mut child = home
            .qcc()
            .arg("statusline")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success());
        stdout(&out).trim().to_string()
    };
    let session = "6c850c7d-0b28-40d2-82e7-b33b5011c85e";
    let input = format!(
        r#"{{"session_id":"{session}","model":{{"id":"claude-opus-4-8"}},"workspace":{{"current_dir":"/x"}}}}"#
    );
    assert_eq!(status_line(&input), "qcc: no proxy running here");
    let bob = crate::keys::add_key(&home, "bob", &["--daily-usd", "5"]);
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    assert_eq!(status_line(&input), "qcc work · no request yet");
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[("content-type", "application/json"), ("x-api-key", &bob), ("x-claude-code-session-id", session)],
        br#"{"model":"claude-opus-4-8","max_tokens":8,"messages":[]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let line = status_line(&input);
    assert!(line.starts_with("qcc work → glm · glm-4.6 · 12 tokens $"), "{line}");
    assert!(line.ends_with(" · bob $5.00 left"), "{line}");

    // Installed into settings.json beside what is there, and taken out again.
    let settings = home.path(".claude/settings.json");
    let settings = std::path::Path::new(&settings);
    std::fs::create_dir_all(settings.parent().expect("dir")).expect("mkdir");
    std::fs::write(settings, br#"{"theme": "dark"}"#).expect("write");
    ok(&home, &["statusline", "--install"]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(settings).expect("read")).expect("JSON");
    assert_eq!(v["theme"], "dark");
    assert_eq!(v["statusLine"]["type"], "command");
    assert!(v["statusLine"]["command"].as_str().is_some_and(|c| c.ends_with("qcc statusline")), "{v}");
    ok(&home, &["statusline", "--uninstall"]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(settings).expect("read")).expect("JSON");
    assert!(v.get("statusLine").is_none() && v["theme"] == "dark", "{v}");
}

/// `--log-bodies DIR`: one file per request with both sides of a translation, credentials masked;
/// the history names it and `qcc logs` shows it.
#[test]
fn the_body_log_has_both_sides_and_no_credential() {
    let chat = r#"{"id":"c1","object":"chat.completion","model":"glm-4.6","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":2}}"#;
    let up = MockUpstream::start(Mode::Json { status: 200, body: chat.into() });
    let home = TempHome::new();
    ok(
        &home,
        &[
            "endpoint",
            "add",
            "oa",
            "--url",
            &format!("{}/v1", up.url()),
            "--key",
            "sk-endpoint-SECRET-0000",
            "--format",
            "openai",
            "--model-map",
            "claude-*=glm-4.6",
        ],
    );
    let dir = home.path("bodies");
    let log = home.path("access.jsonl");
    let proxy = Proxy::start(
        &home,
        &["--cluster", "oa", "--log-bodies", dir.to_str().expect("path"), "--access-log", log.to_str().expect("path")],
    );
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[("content-type", "application/json"), ("x-api-key", "sk-ant-client-SECRET-1111")],
        br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let file = dir.join("body-001.txt");
    assert!(wait_until(Duration::from_secs(3), || file.exists()), "no body log");
    let text = std::fs::read_to_string(&file).expect("read");
    for said in [
        "== the client's request",
        "\"content\":\"hi\"",
        "== attempt 1:",
        "/chat/completions",
        "\"model\":\"glm-4.6\"",
        "== its answer, as received",
        "hello there",
        "== its answer, translated (Messages)",
        "\"type\":\"message\"",
    ] {
        assert!(text.contains(said), "{said} not in {text}");
    }
    assert!(!text.contains("SECRET"), "a credential in the body log: {text}");
    assert!(
        wait_until(Duration::from_secs(3), || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("body-001.txt")))
    );
    let shown = ok(&home, &["logs", "--file", log.to_str().expect("path")]);
    assert!(shown.contains(&format!("bodies: {}", file.display())), "{shown}");
}
