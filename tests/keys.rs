//! A team on one VPS (issue 30): named client keys with limits, per-key usage, and the keys
//! reaching a running proxy by themselves.

use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode};
use crate::support::{request, stderr, stdout, wait_until, Conn, Ep, Proxy, Response, TempHome};

/// A Messages reply that reports 8 tokens (5 in, 3 out) of a priced model.
pub const USAGE_BODY: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":5,"output_tokens":3}}"#;

pub fn usage_upstream() -> MockUpstream {
    MockUpstream::start(Mode::Json { status: 200, body: USAGE_BODY.into() })
}

pub fn with_key(proxy: &Proxy, key: &str) -> Response {
    request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[("content-type", "application/json"), ("x-api-key", key)],
        br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#,
    )
}

/// `qcc key add NAME ARGS...`: the key, alone on stdout.
pub fn add_key(home: &TempHome, name: &str, args: &[&str]) -> String {
    let out = home.qcc().args(["key", "add", name]).args(args).output().expect("run qcc");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "only the key on stdout: {text:?}");
    text.trim().to_string()
}

/// Wait (bounded) until the running proxy says it read `n` client keys.
pub fn keys_loaded(proxy: &Proxy, n: usize) {
    let line = format!("client keys read: {n} defined");
    assert!(wait_until(Duration::from_secs(3), || proxy.log().contains(&line)), "{}", proxy.log());
}

fn error_message(r: &Response) -> String {
    r.json()["error"]["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_key_reaches_the_running_proxy_its_budget_holds_across_a_restart_and_revoking_ends_it() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let mut proxy = Proxy::start(&home, &["--cluster", "c"]);
    // No keys yet: loopback is open, as before.
    assert_eq!(with_key(&proxy, "anything").status, 200);
    // A client on a keep-alive connection across every change below.
    let mut conn = Conn::connect(proxy.addr);

    let bob = add_key(&home, "bob", &["--daily-tokens", "12"]);
    assert!(bob.starts_with("qcc-") && bob.len() >= 36, "{bob}");
    let file = home.home().join("keys.json");
    let stored = std::fs::read_to_string(&file).expect("keys.json");
    assert!(!stored.contains(&bob[4..]), "only a hash is stored");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);

    // Picked up without a restart: without a key is refused now, bob's key works.
    assert!(wait_until(Duration::from_secs(2), || with_key(&proxy, "anything").status == 401), "keys not picked up");
    let hits = up.hits();
    let r = with_key(&proxy, &bob);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.hits(), hits + 1);
    let seen = up.requests().last().map(|r| r.raw_head.clone()).expect("request");
    assert!(!seen.contains(&bob), "the client key is never forwarded: {seen}");
    assert!(seen.contains("sk-upstream-0000000001"), "the endpoint's own key goes upstream");
    let r = conn.request("POST", "/v1/messages", &[("authorization", &format!("Bearer {bob}"))], b"{}");
    assert_eq!(r.status, 200, "Bearer works too, on the connection opened before the key existed");

    // 16 tokens counted (8 each): over the budget of 12. Refused without touching an upstream.
    let hits = up.hits();
    let r = with_key(&proxy, &bob);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert_eq!(error_message(&r), "key 'bob': daily token budget of 12 reached, resets at 00:00 UTC");
    let after: u64 = r.header("retry-after").expect("retry-after").parse().expect("seconds");
    assert!((1..=86_400).contains(&after));
    assert_eq!(up.hits(), hits, "a refused request never reaches an upstream");

    // The usage by key names bob (never the key) with the tokens counted.
    let out = home.run(&["usage", "--by", "key", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let day = v["keys"].as_object().and_then(|d| d.values().next()).expect("a day").clone();
    assert_eq!(day["bob"]["tokens"], 16);
    assert_eq!(day["bob"]["requests"], 2, "the refused request went nowhere and is not counted");
    assert!(!stdout(&out).contains(&bob[4..]));
    let table = home.run(&["usage", "--by", "key"]);
    assert!(stdout(&table).contains("bob") && stdout(&table).contains("12 tokens/day"), "{}", stdout(&table));

    // The budget is counted from the usage file: a restart keeps it.
    assert!(proxy.terminate().is_some_and(|s| s.success()));
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    assert_eq!(with_key(&proxy, &bob).status, 429, "budget survives a restart");
    // Raising it works at once, without a restart.
    assert!(home.run(&["key", "set", "bob", "--daily-tokens", "100"]).status.success());
    assert!(wait_until(Duration::from_secs(2), || with_key(&proxy, &bob).status == 200), "raised budget not applied");

    // Revoked: 401 with the reason.
    let out = home.run(&["key", "revoke", "bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_until(Duration::from_secs(2), || with_key(&proxy, &bob).status == 401), "revoke not applied");
    assert_eq!(error_message(&with_key(&proxy, &bob)), "key 'bob' was revoked");
    let list = home.run(&["key", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(v["keys"][0]["status"], "revoked");
    assert!(v["keys"][0].get("sha256").is_none() && !stdout(&list).contains(&bob[8..]));
    assert!(v["keys"][0]["prefix"].as_str().is_some_and(|p| bob.starts_with(p)));
}

#[test]
fn rpm_and_concurrency_caps_answer_429_with_retry_after() {
    let home = TempHome::new();
    let slow = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(800) });
    home.write_cluster("c", &[Ep::new("a0000001", &slow.url(), "sk-upstream-0000000001", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let rpm = add_key(&home, "script", &["--rpm", "2"]);
    let one = add_key(&home, "single", &["--concurrent", "1"]);
    assert!(wait_until(Duration::from_secs(2), || with_key(&proxy, "x").status == 401));

    assert_eq!(with_key(&proxy, &rpm).status, 200);
    assert_eq!(with_key(&proxy, &rpm).status, 200);
    let hits = slow.hits();
    let r = with_key(&proxy, &rpm);
    assert_eq!(r.status, 429);
    assert!(error_message(&r).starts_with("key 'script': 2 requests per minute reached, try again in "));
    let wait: u64 = r.header("retry-after").expect("retry-after").parse().expect("secs");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(slow.hits(), hits);

    // Two at once for a key allowed one: the second is refused while the first runs.
    let addr = proxy.addr;
    let key = one.clone();
    let first = std::thread::spawn(move || request(addr, "POST", "/v1/messages", &[("x-api-key", &key)], b"{}").status);
    assert!(wait_until(Duration::from_secs(5), || slow.hits() > hits), "first request not upstream");
    let r = with_key(&proxy, &one);
    assert_eq!(r.status, 429);
    assert_eq!(error_message(&r), "key 'single': 1 requests in progress at once is its limit");
    assert_eq!(first.join().expect("thread"), 200);
    assert_eq!(with_key(&proxy, &one).status, 200, "free again once the first ended");

    // The limits show in the status (the dashboard's keys table) and /metrics, by name.
    let admin = add_key(&home, "ops", &["--admin"]);
    // (Polled by the log, not with the key: wrong keys from one address are limited to 10 a minute.)
    keys_loaded(&proxy, 3);
    let r = request(proxy.addr, "GET", "/_qcc/status", &[("x-api-key", &rpm)], b"");
    assert_eq!(r.status, 403, "a key without --admin may not read the admin pages");
    let s = request(proxy.addr, "GET", "/_qcc/status", &[("x-api-key", &admin)], b"").json();
    let keys = s["keys"].as_array().expect("keys");
    let script = keys.iter().find(|k| k["name"] == "script").expect("script row");
    assert_eq!(script["limits"]["rpm"], 2);
    assert_eq!(script["today"]["requests"], 2);
    assert_eq!(script["limited"][2], 1, "one refusal by rpm");
    let m = request(proxy.addr, "GET", "/metrics", &[("x-api-key", &admin)], b"").text();
    assert!(m.contains("qcc_key_requests_today{key=\"script\"} 2"), "{m}");
    assert!(m.contains("qcc_key_limited_total{key=\"single\",limit=\"concurrent\"} 1"), "{m}");
    assert!(!m.contains(&rpm[4..]) && !s.to_string().contains(&rpm[4..]), "names only, never keys");
}

#[test]
fn expired_and_other_cluster_keys_are_refused_and_the_access_key_still_works() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let out = home.run(&["endpoint", "add", "ops", "--url", &up.url(), "--key", "sk-ops-000000000001"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let old = add_key(&home, "old", &["--expires", "2020-01-01"]);
    let ops = add_key(&home, "opsbot", &["--cluster", "ops"]);
    let log = home.path("access.log");
    let access = "the-access-key-0123456789";
    let proxy =
        Proxy::start(&home, &["--cluster", "c", "--access-key", access, "--access-log", log.to_str().expect("utf-8")]);
    // Every start says that access control is on (a key made since the last start turns it on).
    assert!(
        wait_until(Duration::from_secs(3), || proxy
            .log()
            .contains("access control is on: requests need the access key")),
        "{}",
        proxy.log()
    );
    let r = with_key(&proxy, &old);
    assert_eq!((r.status, error_message(&r)), (401, "key 'old' expired on 2020-01-01".into()));
    let r = with_key(&proxy, &ops);
    assert_eq!(r.status, 403);
    assert_eq!(error_message(&r), "key 'opsbot' is for cluster 'ops'; this proxy serves 'c'");
    assert_eq!(with_key(&proxy, access).status, 200, "the access key keeps working beside client keys");
    let seen = up.requests().last().map(|r| r.raw_head.clone()).expect("request");
    assert!(!seen.contains(access), "the access key is never forwarded");
    // The access log names the key (or the access key) of each request.
    assert!(wait_until(Duration::from_secs(3), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains(r#""key":"(access key)""#))
    }));
    let out = home.run(&["key", "list"]);
    let text = stdout(&out);
    assert!(text.contains("expired") && text.contains("ops") && !text.contains(&old[8..]), "{text}");
    // The access key's usage row counts its requests, as a client key's does.
    let out = home.run(&["usage", "--by", "key", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let day = v["keys"].as_object().and_then(|d| d.values().next()).cloned().unwrap_or_default();
    assert_eq!(day["(access key)"]["requests"], 1, "{v}");
}

#[test]
fn bad_key_commands_say_one_line_and_write_nothing() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    add_key(&home, "bob", &[]);
    let file = home.home().join("keys.json");
    let before = std::fs::read(&file).expect("keys.json");
    for (args, says) in [
        (vec!["key", "add", "bob"], "already exists"),
        (vec!["key", "add", "amy", "--rpm", "-1"], "--rpm"),
        (vec!["key", "add", "amy", "--daily-usd", "-5"], "--daily-usd"),
        (vec!["key", "add", "amy", "--expires", "2027-02-30"], "YYYY-MM-DD"),
        (vec!["key", "add", "amy", "--expires", "soon"], "YYYY-MM-DD"),
        (vec!["key", "add", "amy smith"], "letters, digits"),
        (vec!["key", "add", "amy", "--cluster", "nope"], "no such cluster"),
        (vec!["key", "set", "nobody", "--rpm", "3"], "no key named 'nobody'"),
        (vec!["key", "set", "bob"], "needs something to change"),
        (vec!["key", "revoke", "nobody"], "no key named"),
    ] {
        let out = home.run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.lines().next().is_some_and(|l| l.starts_with("qcc: error: ")), "{args:?}: {err}");
        assert_eq!(std::fs::read(&file).expect("keys.json"), before, "{args:?} wrote the file");
    }
    // A broken keys file: a one-line error naming it, for the CLI and for a proxy start.
    std::fs::write(&file, b"{\"version\": 1, \"keys\": [").expect("write");
    let out = home.run(&["key", "list"]);
    assert!(!out.status.success() && stderr(&out).contains("keys.json"), "{}", stderr(&out));
    let out = home.run(&["proxy", "start", "--cluster", "c", "--port", "0"]);
    assert!(!out.status.success() && stderr(&out).contains("keys.json"), "{}", stderr(&out));
    let out = home.run(&["proxy", "start", "--cluster", "c", "--port", "0", "--notify-url", "ftp://x.example/"]);
    assert!(!out.status.success() && stderr(&out).contains("--notify-url"), "{}", stderr(&out));
}

#[test]
fn a_running_proxy_keeps_its_keys_when_the_file_breaks_and_hostile_keys_leave_only_a_length() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &[]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let file = home.home().join("keys.json");
    std::fs::write(&file, b"{ not json").expect("write");
    assert!(
        wait_until(Duration::from_secs(3), || proxy.log().contains("keeping the 1 client keys")),
        "{}",
        proxy.log()
    );
    assert_eq!(with_key(&proxy, &bob).status, 200, "the keys already loaded still work");

    let long = format!("qcc-{}", "Z".repeat(10_000));
    assert_eq!(with_key(&proxy, &long).status, 401);
    let mut c = Conn::connect(proxy.addr);
    c.send(
        b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: qcc-SECRET\rPART\r\ncontent-length: 0\r\n\r\n",
    );
    let (status, _) = c.read_head();
    assert_eq!(status, 400, "a bare CR in a header is malformed HTTP, refused before any key is looked at");
    assert!(wait_until(Duration::from_secs(3), || proxy.log().contains("(10004 bytes)")), "{}", proxy.log());
    let log = proxy.log();
    assert!(!log.contains("ZZZZ") && !log.contains("SECRET") && !log.contains(&bob[4..]), "{log}");
}

#[test]
fn a_person_points_claude_code_at_a_keyed_proxy_with_qcc_client_key() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let alice = add_key(&home, "alice", &[]);
    // Without it: the placeholder would be refused, and that is said.
    let out = home.run(&["env", "--cluster", "c", "--port", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("QCC_CLIENT_KEY"), "{}", stderr(&out));
    // With it: the exports carry the person's key, and requests made with them go through.
    let out = home.qcc().args(["env", "--cluster", "c"]).env("QCC_CLIENT_KEY", &alice).output().expect("run");
    let exports = stdout(&out);
    assert!(exports.contains(&format!("ANTHROPIC_AUTH_TOKEN='{alice}'")), "{exports}");
    assert!(
        exports.starts_with("unset ANTHROPIC_API_KEY\n") && !exports.contains("export ANTHROPIC_API_KEY"),
        "{exports}"
    );
    let evald = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{exports}\nprintf '%s %s' \"$ANTHROPIC_BASE_URL\" \"$ANTHROPIC_AUTH_TOKEN\""))
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&evald.stdout).to_string();
    let (base, token) = text.split_once(' ').expect("two values");
    assert_eq!(token, alice);
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("address");
    let r = request(addr, "POST", "/v1/messages", &[("authorization", &format!("Bearer {token}"))], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Both credential headers carry a client key (the launcher sets `x-api-key` and
/// `Authorization`): neither reaches a pass-through endpoint; a credential that is not ours does.
#[test]
fn no_client_key_reaches_a_pass_through_upstream() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "", 1)]);
    let bob = add_key(&home, "bob", &[]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let bearer = format!("Bearer {bob}");
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#;
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &bob), ("authorization", &bearer)], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[("authorization", &bearer), ("x-api-key", "sk-ant-their-own-key"), ("x-api-key", &bob)],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2);
    for rec in reqs.iter() {
        assert!(!rec.raw_head.contains(&bob[4..]), "a client key reached the upstream:\n{}", rec.raw_head);
    }
    assert!(reqs[0].header("x-api-key").is_none() && reqs[0].header("authorization").is_none());
    assert_eq!(reqs[1].header("x-api-key"), Some("sk-ant-their-own-key"), "a key not ours passes through");
}

/// Requests without a key (a `/metrics` scraper, the dashboard opened without one) never lock an
/// address out; wrong keys do, but a valid key from the same address is still served.
#[test]
fn keyless_requests_never_lock_out_and_a_valid_key_is_never_refused() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &[]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    for path in ["/metrics", "/_qcc/status", "/_qcc/logs"] {
        for _ in 0..12 {
            assert_eq!(request(proxy.addr, "GET", path, &[], b"").status, 401, "{path}");
        }
    }
    assert_eq!(with_key(&proxy, &bob).status, 200, "keyless requests locked the address out");
    for _ in 0..12 {
        with_key(&proxy, "qcc-wrongwrongwrongwrongwrongwrongwrongwrong");
    }
    let r = with_key(&proxy, "qcc-wrongwrongwrongwrongwrongwrongwrongwrong");
    assert_eq!(r.status, 429, "wrong keys are limited: {}", r.text());
    assert_eq!(with_key(&proxy, &bob).status, 200, "a valid key is never refused by the lockout");
}

/// Under steady traffic with the request history on, `qcc key revoke` bites within a second,
/// and the CLI and the dashboard editing the keys file at the same moment lose no edit.
#[test]
fn a_revoke_bites_within_a_second_under_load_and_concurrent_edits_are_all_kept() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let bob = add_key(&home, "bob", &[]);
    let admin = add_key(&home, "ops", &["--admin"]);
    let log = home.home().join("access.jsonl");
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-log", log.to_str().expect("path")]);
    // Steady traffic: two clients back to back (bounded: 20 s or until told to stop).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, addr, key) = (stop.clone(), proxy.addr, admin.clone());
            std::thread::spawn(move || {
                let until = std::time::Instant::now() + Duration::from_secs(20);
                let mut c = Conn::connect(addr);
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < until {
                    assert_eq!(c.request("POST", "/v1/messages", &[("x-api-key", &key)], b"{}").status, 200);
                    n += 1;
                }
                n
            })
        })
        .collect();
    assert_eq!(with_key(&proxy, &bob).status, 200);
    let out = home.run(&["key", "revoke", "bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let revoked = std::time::Instant::now();
    assert!(wait_until(Duration::from_secs(5), || with_key(&proxy, &bob).status == 401), "never revoked under load");
    let took = revoked.elapsed();
    // Edits from both sides at once: ten keys from the CLI, ten from the dashboard.
    let cmds: Vec<std::process::Command> = (0..10)
        .map(|i| {
            let mut c = home.qcc();
            c.args(["key", "add", &format!("cli{i}")]);
            c
        })
        .collect();
    let cli = std::thread::spawn(move || {
        for mut c in cmds {
            let out = c.output().expect("qcc key add");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    });
    for i in 0..10 {
        let path = format!("/_qcc/keys/add?name=page{i}");
        let r = request(proxy.addr, "POST", &path, &[("x-qcc-action", "1"), ("x-api-key", &admin)], b"");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    cli.join().expect("cli edits");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let served: usize = load.into_iter().map(|t| t.join().expect("load")).sum();
    let list = home.run(&["key", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(22), "an edit was lost: {v}");
    assert!(served > 50, "the load ran ({served} requests)");
    assert!(took < Duration::from_secs(1), "revoked after {took:?} under load");
}

/// A key edit applies when the command returns: a script's very next request meets it (no 401
/// for a key just added, no 200 for a key just revoked, the new limit at once).
#[test]
fn key_edits_apply_when_the_command_returns() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    for i in 0..5 {
        let key = add_key(&home, &format!("k{i}"), &[]);
        assert_eq!(with_key(&proxy, &key).status, 200, "key {i} at once");
    }
    let out = home.run(&["key", "set", "k0", "--rpm", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = add_key(&home, "last", &["--rpm", "1"]);
    assert_eq!(with_key(&proxy, &key).status, 200);
    assert_eq!(with_key(&proxy, &key).status, 429, "its limit at once");
    let out = home.run(&["key", "revoke", "last"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(with_key(&proxy, &key).status, 401, "revoked at once");
}

/// A person's own client key wins over the access key sent beside it (the `apiKeyHelper` that
/// `qcc proxy use` writes sends the access key on every request): the request is theirs, counted
/// as theirs, and their limits apply.
#[test]
fn a_persons_own_key_wins_over_the_access_key_beside_it() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let alice = add_key(&home, "alice", &["--rpm", "1"]);
    let access = "the-access-key-0123456789";
    let proxy = Proxy::start(&home, &["--cluster", "c", "--access-key", access]);
    let both = |proxy: &Proxy| {
        let bearer = format!("Bearer {alice}");
        request(
            proxy.addr,
            "POST",
            "/v1/messages",
            &[("x-api-key", access), ("authorization", &bearer), ("content-type", "application/json")],
            br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#,
        )
    };
    assert_eq!(both(&proxy).status, 200);
    let r = both(&proxy);
    assert_eq!(r.status, 429, "alice's --rpm 1 applies: {}", r.text());
    assert!(error_message(&r).contains("key 'alice'"), "{}", r.text());
    let out = home.run(&["usage", "--by", "key", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let day = v["keys"].as_object().and_then(|d| d.values().next()).cloned().unwrap_or_default();
    assert_eq!(day["alice"]["requests"], 1, "{v}");
    assert!(day.get("(access key)").is_none_or(|a| a["requests"] == 0), "{v}");
}
