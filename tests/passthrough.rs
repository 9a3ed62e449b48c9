//! Your own Claude login first, API keys behind it (issue 53, item 1): a `--pass-through`
//! endpoint forwards the client's own credential; on a 429 the request fails over to an endpoint
//! with its own key, which never sees the login; no credential of qcc's reaches the pass-through
//! endpoint; the login is never kept, logged or shown; such an endpoint is probed by the next
//! request, never with a stored credential — through the binary.

use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode};
use crate::support::{request, stderr, stdout, wait_until, Proxy, TempHome};

const LOGIN: &str = "sk-ant-oat01-PERSONAL-LOGIN-TOKEN-abcdefghijklmnop";

fn ok(home: &TempHome, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn post(proxy: &Proxy, extra: &[(&str, &str)]) -> crate::support::Response {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-ant-oat01-PERSONAL-LOGIN-TOKEN-abcdefghijklmnop"),
        ("anthropic-beta", "oauth-2025-04-20,claude-code-20250219"),
    ];
    headers.extend_from_slice(extra);
    request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &headers,
        br#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}"#,
    )
}

#[test]
fn the_own_login_goes_first_and_never_anywhere_else() {
    let mine = MockUpstream::start(crate::support::mock::ok());
    let paid = MockUpstream::start(crate::support::mock::ok());
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "me", "--url", &mine.url(), "--pass-through", "--name", "login", "--priority", "1"]);
    ok(
        &home,
        &[
            "endpoint",
            "add",
            "me",
            "--url",
            &paid.url(),
            "--key",
            "sk-paid-0000000000",
            "--name",
            "paid",
            "--priority",
            "2",
        ],
    );
    let bad = home.run(&["endpoint", "add", "me", "--url", &mine.url(), "--pass-through", "--key", "k"]);
    assert!(!bad.status.success() && stderr(&bad).contains("give no --key"), "{}", stderr(&bad));
    assert!(ok(&home, &["endpoint", "list", "me"]).contains("(pass-through)"));
    let log = home.path("access.jsonl");
    let proxy = Proxy::start(
        &home,
        &["--cluster", "me", "--access-log", log.to_str().expect("path"), "--verify-interval", "1"],
    );

    // The login goes to the pass-through endpoint as sent, betas and all.
    assert_eq!(post(&proxy, &[]).status, 200);
    let got = mine.requests().last().expect("sent").raw_head.clone();
    assert!(
        got.contains(&format!("authorization: Bearer {LOGIN}"))
            || got.contains(&format!("Authorization: Bearer {LOGIN}")),
        "{got}"
    );
    assert!(got.contains("oauth-2025-04-20"), "{got}");
    assert_eq!(paid.requests().len(), 0);

    // A usage limit (429): fails over to the paid key, which never sees the login or its beta.
    mine.set_mode(Mode::Status { status: 429, retry_after: None });
    let r = post(&proxy, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = paid.requests().last().expect("sent").raw_head.clone();
    assert!(sent.contains("sk-paid-0000000000"), "{sent}");
    assert!(!sent.contains(LOGIN) && !sent.contains("oauth-2025"), "{sent}");
    assert!(sent.contains("claude-code-20250219"), "{sent}");

    // Queued, it is never probed with any stored credential: the next request after a probe round
    // is its probe, with that request's own login, and it comes back.
    mine.set_mode(crate::support::mock::ok());
    let before = mine.requests().len();
    std::thread::sleep(Duration::from_millis(2500)); // two probe rounds
    assert_eq!(mine.requests().len(), before, "no probe of a pass-through endpoint");
    assert!(wait_until(Duration::from_secs(5), || {
        post(&proxy, &[]);
        !proxy.status()["endpoints"][0]["in_failure_queue"].as_bool().unwrap_or(true)
    }));
    assert!(mine.requests().len() > before);
    assert!(
        mine.requests().iter().all(|r| r.raw_head.contains(LOGIN)),
        "every request it got carried a client's own login"
    );

    // Never kept, logged or shown.
    let metrics = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    for (what, text) in [
        ("status", proxy.status().to_string()),
        ("metrics", metrics),
        ("log", proxy.log()),
        ("history", std::fs::read_to_string(&log).unwrap_or_default()),
    ] {
        assert!(!text.contains("PERSONAL-LOGIN"), "the login in the {what}");
    }
}

/// With access control on, a person's qcc key travels beside their login (`x-qcc-key`), is taken
/// out, and nothing of qcc's reaches the pass-through endpoint; `qcc env` keeps the login.
#[test]
fn a_qcc_key_beside_the_login_is_ours_and_goes_nowhere() {
    let mine = MockUpstream::start(crate::support::mock::ok());
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "me", "--url", &mine.url(), "--pass-through"]);
    let env = ok(&home, &["env", "--cluster", "me"]);
    assert!(env.contains("unset ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN"), "{env}");
    assert!(!env.contains("export ANTHROPIC_AUTH_TOKEN") && !env.contains("CUSTOM_HEADERS"), "the login stays: {env}");
    drop(home);

    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "me", "--url", &mine.url(), "--pass-through"]);
    let access = "qcc-access-key-0123456789abcdef";
    let proxy = Proxy::start(&home, &["--cluster", "me", "--access-key", access]);
    assert_eq!(post(&proxy, &[]).status, 401, "a login alone is not a key of ours");
    assert_eq!(post(&proxy, &[("x-qcc-key", access)]).status, 200);
    let got = mine.requests().last().expect("sent").raw_head.clone();
    assert!(got.contains(LOGIN) && !got.contains(access) && !got.to_ascii_lowercase().contains("x-qcc"), "{got}");
    let env = home.qcc().args(["env", "--cluster", "me"]).env("QCC_CLIENT_KEY", access).output().expect("run");
    let env = stdout(&env);
    assert!(env.contains(&format!("export ANTHROPIC_CUSTOM_HEADERS='x-qcc-key: {access}'")), "{env}");
    assert!(!env.contains("export ANTHROPIC_AUTH_TOKEN"), "{env}");
}
