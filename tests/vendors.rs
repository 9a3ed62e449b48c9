//! Every Anthropic-compatible vendor accepts what Claude Code sends (issue 54): request rules per
//! endpoint (by hand, from a preset, learned from a refusal), model tags, count_tokens — through
//! the real binary, with the head and body the real Claude Code 2.1.197 sent
//! (`tests/fixtures/claude-code`), against a strict mock vendor that refuses what it does not
//! know with the words such vendors use (`Mode::Strict`).

use crate::support::mock::{MockUpstream, Mode};
use crate::support::{request, stderr, stdout, Proxy, Response, TempHome};

/// The real Claude Code request: its head's headers (minus framing and Host) and its body.
fn claude_code() -> (Vec<(String, String)>, Vec<u8>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-code/");
    let head = std::fs::read_to_string(format!("{dir}head-POST.txt")).expect("fixture head");
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| !["host", "content-length", "connection"].contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}body-POST.json")).expect("fixture body")).expect("JSON");
    body["stream"] = false.into(); // (the mock answers JSON)
    (headers, serde_json::to_vec(&body).expect("JSON"))
}

fn send(proxy: &Proxy, headers: &[(String, String)], body: &[u8]) -> Response {
    let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    request(proxy.addr, "POST", "/v1/messages?beta=true", &h, body)
}

fn ok(home: &TempHome, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A strict vendor that takes the classic Messages fields, two betas, and thinking enabled or
/// disabled: what many "Anthropic-compatible" APIs take.
fn strict() -> Mode {
    Mode::Strict {
        fields: strings(&[
            "model",
            "messages",
            "system",
            "tools",
            "max_tokens",
            "stream",
            "metadata",
            "temperature",
            "thinking",
        ]),
        betas: strings(&["claude-code-20250219", "interleaved-thinking-2025-05-14"]),
        thinking: strings(&["enabled", "disabled"]),
    }
}

/// The mock's verdict on each request it got (None: it took it).
fn refusals(mock: &MockUpstream) -> Vec<Option<String>> {
    let Mode::Strict { fields, betas, thinking } = strict() else { unreachable!() };
    mock.requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/messages?"))
        .map(|r| crate::support::mock::refusal(&r.body, r.header("anthropic-beta"), &fields, &betas, &thinking))
        .collect()
}

/// The real request goes through a strict vendor with no rule written by hand: each refusal is
/// learned and retried at once (the client sees one 200), the endpoint is not blamed, and the
/// next request — and the next proxy, after a restart — sends it right the first time. Token
/// counts (a 404 there) are estimated. `--forget-rules` forgets; `--no-learn` passes the 400 on.
#[test]
fn a_strict_vendor_takes_the_real_claude_code_request_after_learning_from_its_refusals() {
    let vendor = MockUpstream::start(strict());
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "main", "--url", &vendor.url(), "--key", "sk-vendor-000000000", "--name", "strict"]);
    let log = home.path("access.jsonl");
    let mut proxy = Proxy::start(&home, &["--cluster", "main", "--access-log", log.to_str().expect("path")]);
    let (headers, body) = claude_code();

    let r = send(&proxy, &headers, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = refusals(&vendor);
    // context_management, output_config, six betas at once, adaptive thinking: four refusals,
    // then the request as the vendor takes it.
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen[..4].iter().all(Option::is_some) && seen[4].is_none(), "{seen:?}");
    let sent: serde_json::Value = serde_json::from_slice(&vendor.requests().last().expect("sent").body).expect("JSON");
    assert_eq!(sent["thinking"]["type"], "enabled", "adaptive thinking as the vendor takes it");
    assert!(sent["thinking"]["budget_tokens"].as_u64().is_some_and(|b| (1024..64000).contains(&b)));
    assert_eq!(sent["messages"], serde_json::from_slice::<serde_json::Value>(&body).expect("JSON")["messages"]);
    let status = proxy.status();
    let ep = &status["endpoints"][0];
    assert_eq!(ep["health"]["status"], "healthy", "not blamed: {ep}");
    assert_eq!(
        (ep["health"]["failed_requests"].as_u64(), &ep["in_failure_queue"]),
        (Some(0), &serde_json::json!(false))
    );
    assert_eq!(ep["learned_rules"]["drop_fields"], serde_json::json!(["context_management", "output_config"]), "{ep}");
    assert_eq!(ep["learned_rules"]["drop_betas"].as_array().map(Vec::len), Some(6), "{ep}");
    assert_eq!(ep["learned_rules"]["adaptive_thinking"], "enabled");
    assert!(proxy.log().contains("refused field context_management: learned"), "{}", proxy.log());

    // The next request: right the first time.
    let before = vendor.requests().len();
    let r = send(&proxy, &headers, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(vendor.requests().len(), before + 1, "no 400 on the next request");

    // Token counts: the vendor has none (404); the estimate answers and nothing is blamed.
    let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let r = request(proxy.addr, "POST", "/v1/messages/count_tokens?beta=true", &h, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["input_tokens"].as_u64().is_some_and(|n| n > 1000), "{}", r.text());

    // Kept across restarts: in the config, shown by `endpoint list`; the new proxy sends it right.
    let list = ok(&home, &["endpoint", "list", "main"]);
    assert!(list.contains("learned: drop context_management; drop output_config; drop beta"), "{list}");
    proxy.terminate();
    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    let before = vendor.requests().len();
    assert_eq!(send(&proxy, &headers, &body).status, 200);
    assert_eq!(vendor.requests().len(), before + 1);

    // Forgotten: the next request is refused and learned again.
    ok(&home, &["endpoint", "set", "main", "strict", "--forget-rules"]);
    assert!(!ok(&home, &["endpoint", "list", "main"]).contains("learned:"));
    crate::support::wait_until(std::time::Duration::from_secs(5), || {
        proxy.status()["endpoints"][0]["learned_rules"].is_null()
    });
    let before = vendor.requests().len();
    assert_eq!(send(&proxy, &headers, &body).status, 200);
    assert_eq!(vendor.requests().len(), before + 5, "learned again");
    drop(proxy);

    // --no-learn: the vendor's 400 goes to the client as it said it, one request, no rule.
    let vendor2 = MockUpstream::start(strict());
    let home2 = TempHome::new();
    ok(&home2, &["endpoint", "add", "main", "--url", &vendor2.url(), "--key", "sk-vendor-000000000"]);
    let proxy = Proxy::start(&home2, &["--cluster", "main", "--no-learn"]);
    let r = send(&proxy, &headers, &body);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("context_management: Extra inputs are not permitted"), "{}", r.text());
    assert_eq!(vendor2.requests().len(), 1);
    assert!(proxy.status()["endpoints"][0]["learned_rules"].is_null());
}

/// A 400 about the content (a prompt too long, a bad message) is the vendor's answer: passed on
/// byte for byte, nothing learned, nothing retried, nobody blamed.
#[test]
fn a_content_refusal_is_passed_on_and_never_learned() {
    let said = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 250000 tokens > 200000 maximum"}}"#;
    let vendor = MockUpstream::start(Mode::Json { status: 400, body: said.into() });
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "main", "--url", &vendor.url(), "--key", "sk-vendor-000000000"]);
    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    let (headers, body) = claude_code();
    let r = send(&proxy, &headers, &body);
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), said);
    assert_eq!(vendor.requests().len(), 1);
    let status = proxy.status();
    assert!(status["endpoints"][0]["learned_rules"].is_null());
    let ep = &status["endpoints"][0];
    assert_eq!(
        (ep["health"]["failed_requests"].as_u64(), &ep["in_failure_queue"]),
        (Some(0), &serde_json::json!(false)),
        "{ep}"
    );
}

/// Rules by hand: `endpoint add` takes them, `endpoint list` shows them, and the vendor gets the
/// request without what they name, as a splice (the rest byte for byte); a model tag never goes
/// upstream: it becomes the 1M-context beta where the endpoint takes betas, and is dropped where
/// a rule drops that beta.
#[test]
fn hand_written_rules_and_model_tags_shape_what_the_vendor_gets() {
    let vendor = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    ok(
        &home,
        &[
            "endpoint",
            "add",
            "main",
            "--url",
            &vendor.url(),
            "--key",
            "sk-vendor-000000000",
            "--name",
            "v",
            "--drop-field",
            "context_management",
            "--drop-beta",
            "effort-2025-11-24",
            "--adaptive-thinking",
            "drop",
            "--drop-effort",
        ],
    );
    let list = ok(&home, &["endpoint", "list", "main"]);
    assert!(
        list.contains(
            "rules: drop context_management; drop beta effort-2025-11-24; adaptive thinking -> drop; drop effort"
        ),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&home, &["endpoint", "list", "main", "--json"])).expect("JSON");
    assert_eq!(json[0]["rules"]["drop_fields"], serde_json::json!(["context_management"]));
    let bad = home.run(&["endpoint", "set", "main", "v", "--drop-field", "messages"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("never dropped"), "{}", stderr(&bad));

    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    let (headers, body) = claude_code();
    let mut v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    v["model"] = "claude-opus-4-8[1m]".into();
    let body = serde_json::to_vec(&v).expect("JSON");
    let r = send(&proxy, &headers, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = vendor.requests().last().expect("sent").body.clone();
    let sent: serde_json::Value = serde_json::from_slice(&got).expect("JSON");
    assert_eq!(sent["model"], "claude-opus-4-8", "the tag never goes upstream");
    for gone in ["context_management", "thinking", "output_config"] {
        assert!(sent.get(gone).is_none(), "{gone} left out");
    }
    // The rest is the client's bytes: the messages, byte for byte.
    let messages = serde_json::to_vec(&v["messages"]).expect("JSON");
    assert!(got.windows(messages.len()).any(|w| w == messages.as_slice()));
    let reqs = vendor.requests();
    let beta = reqs.last().expect("sent").header("anthropic-beta").unwrap_or("").to_string();
    assert!(!beta.contains("effort-2025-11-24"), "{beta}");
    assert!(beta.contains("context-1m-2025-08-07") && beta.contains("claude-code-20250219"), "{beta}");
    drop(reqs);

    // Where the endpoint drops the 1M beta, the tag is simply dropped.
    ok(
        &home,
        &[
            "endpoint",
            "set",
            "main",
            "v",
            "--no-rules",
            "--drop-beta",
            "context-1m-2025-08-07",
            "--effort-to",
            "reasoning_effort",
        ],
    );
    crate::support::wait_until(std::time::Duration::from_secs(5), || {
        proxy.status()["endpoints"][0]["rules"]["drop_betas"] == serde_json::json!(["context-1m-2025-08-07"])
    });
    let no_beta: Vec<(String, String)> = headers.iter().filter(|(n, _)| n != "anthropic-beta").cloned().collect();
    assert_eq!(send(&proxy, &no_beta, &body).status, 200);
    let reqs = vendor.requests();
    let last = reqs.last().expect("sent");
    assert_eq!(last.header("anthropic-beta"), None, "{:?}", last.headers);
    let sent: serde_json::Value = serde_json::from_slice(&last.body).expect("JSON");
    assert_eq!(sent["model"], "claude-opus-4-8");
    assert_eq!(sent["thinking"]["type"], "adaptive", "the hand rules were cleared");
    assert_eq!(sent["reasoning_effort"], "high", "the effort moved where the vendor takes it");
    assert!(sent.get("output_config").is_none(), "nothing else was in it");
}

/// Each preset's rules, checked against a mock that refuses what its vendor documents: the
/// real request goes through the first time, no refusal, nothing learned.
#[test]
fn each_presets_rules_take_the_real_request_past_its_documented_vendor() {
    let (headers, body) = claude_code();
    let all_fields: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .expect("JSON")
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    let all_betas: Vec<String> = headers
        .iter()
        .find(|(n, _)| n == "anthropic-beta")
        .map(|(_, v)| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    // As each vendor documents its Anthropic API (the preset's `rules_source`).
    let documented = [
        // Kimi: "invalid thinking: only type=enabled is allowed for this model".
        ("kimi", strings(&["enabled", "disabled"])),
        ("kimi-intl", strings(&["enabled", "disabled"])),
        // DeepSeek and MiniMax: what they do not know is ignored (every value taken).
        ("deepseek", strings(&["adaptive", "enabled", "disabled"])),
        ("minimax", strings(&["adaptive", "enabled", "disabled"])),
    ];
    for (preset, thinking) in documented {
        let vendor =
            MockUpstream::start(Mode::Strict { fields: all_fields.clone(), betas: all_betas.clone(), thinking });
        let home = TempHome::new();
        ok(
            &home,
            &["endpoint", "add", "main", "--preset", preset, "--url", &vendor.url(), "--key", "sk-vendor-000000000"],
        );
        let proxy = Proxy::start(&home, &["--cluster", "main"]);
        let r = send(&proxy, &headers, &body);
        assert_eq!(r.status, 200, "{preset}: {}", r.text());
        assert_eq!(vendor.requests().len(), 1, "{preset}: right the first time");
        assert!(proxy.status()["endpoints"][0]["learned_rules"].is_null(), "{preset}");
    }
}

/// A cluster with a route that does not look at the model still never sends a model tag on
/// (the body read for the route reads the model too).
#[test]
fn a_model_tag_is_taken_off_in_a_routed_cluster_too() {
    let vendor = MockUpstream::start(Mode::Echo);
    let other = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    ok(&home, &["endpoint", "add", "main", "--url", &vendor.url(), "--key", "sk-vendor-000000000"]);
    ok(&home, &["endpoint", "add", "big", "--url", &other.url(), "--key", "sk-other-0000000000"]);
    ok(&home, &["route", "add", "main", "--when", "input-tokens>100000000", "--to", "big"]);
    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    let body = br#"{"model":"claude-opus-4-8[1m]","max_tokens":8,"messages":[]}"#;
    let r = request(proxy.addr, "POST", "/v1/messages", &[("content-type", "application/json")], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let sent: serde_json::Value = serde_json::from_slice(&vendor.requests().last().expect("sent").body).expect("JSON");
    assert_eq!(sent["model"], "claude-opus-4-8");
    assert_eq!(other.requests().len(), 0);
}
