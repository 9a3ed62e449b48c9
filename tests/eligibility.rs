//! One decision per request (issue 50): which endpoints may serve a request is decided in one
//! place, with a reason, and every path that chooses asks it — through the real binary.

use std::time::Duration;

use crate::openai::{chunks, openai_ep};
use crate::support::mock::{MockUpstream, Mode};
use crate::support::*;

const REPLY: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#;
const CHAT: &str = r#"{"id":"c1","object":"chat.completion","model":"glm","choices":[{"index":0,"message":{"role":"assistant","content":"from chat"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
/// A request with a PDF, as Claude Code sends one when it reads a PDF.
const PDF: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQ="}},{"type":"text","text":"summarise"}]}]}"#;

fn access_log(home: &TempHome) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(home.path("access.log")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn start_logged(home: &TempHome) -> Proxy {
    let log = home.path("access.log");
    Proxy::start(home, &["--cluster", "c", "--access-log", log.to_str().expect("utf-8")])
}

/// A PDF in a cluster whose first endpoint speaks Chat Completions goes to the Anthropic one, and
/// the history says why the first was passed over; after an Anthropic 529 the real error
/// reaches the client, not a "cannot be translated" 400.
#[test]
fn a_pdf_in_a_mixed_cluster_goes_to_the_endpoint_that_takes_it() {
    let oai = MockUpstream::start(Mode::Json { status: 200, body: CHAT.into() });
    let ant = MockUpstream::start(Mode::Json { status: 200, body: REPLY.into() });
    let home = TempHome::new();
    let url = format!("{}/v1", oai.url());
    home.write_cluster("c", &[openai_ep("a0000001", &url, 1), Ep::new("b0000001", &ant.url(), "sk-b-0000000000", 2)]);
    let proxy = start_logged(&home);
    let r = request(proxy.addr, "POST", "/v1/messages", &[], PDF.as_bytes());
    assert_eq!((r.status, r.json()["content"][0]["text"].as_str()), (200, Some("hi")), "{}", r.text());
    assert_eq!((oai.hits(), ant.hits()), (0, 1));
    assert!(wait_until(Duration::from_secs(3), || !access_log(&home).is_empty()));
    let line = &access_log(&home)[0];
    assert_eq!(line["skipped"][0]["endpoint"], "a0000001", "{line}");
    assert_eq!(line["skipped"][0]["why"], "its format cannot take this request", "{line}");
    let shown = stdout(&home.run(&["logs", "--file", home.path("access.log").to_str().expect("utf-8")]));
    assert!(shown.contains("skipped: ") && shown.contains("its format cannot take this request"), "{shown}");
    // A plain request still goes to the first endpoint, translated.
    let plain = br#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(proxy.addr, "POST", "/v1/messages", &[], plain);
    assert_eq!(r.json()["content"][0]["text"], "from chat", "{}", r.text());

    // The Anthropic endpoint first, failing: its error is the answer.
    let oai = MockUpstream::start(Mode::Json { status: 200, body: CHAT.into() });
    let ant = MockUpstream::start(Mode::Status { status: 529, retry_after: None });
    let home = TempHome::new();
    let url = format!("{}/v1", oai.url());
    home.write_cluster("c", &[Ep::new("b0000001", &ant.url(), "sk-b-0000000000", 1), openai_ep("a0000001", &url, 2)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let r = request(proxy.addr, "POST", "/v1/messages", &[], PDF.as_bytes());
    assert_eq!(
        (r.status, r.json()["error"]["message"].as_str()),
        (529, Some("mock 529")),
        "the real error: {}",
        r.text()
    );
    assert_eq!((ant.hits(), oai.hits()), (1, 0));
}

/// count_tokens and the model list are never sent to an OpenAI-format endpoint as a chat request:
/// while the Anthropic endpoint is down they are answered locally, as docs/translation.md says.
#[test]
fn count_tokens_and_models_are_never_billed_as_chat_requests() {
    let ant = MockUpstream::start(Mode::Status { status: 503, retry_after: None });
    let oai = MockUpstream::start(Mode::Json { status: 200, body: CHAT.into() });
    let home = TempHome::new();
    let url = format!("{}/v1", oai.url());
    for args in [
        &["endpoint", "add", "c", "--url", &ant.url(), "--key", "sk-b-0000000000", "--priority", "1"][..],
        &["endpoint", "add", "c", "--url", &url, "--key", "sk-o-0000000000", "--priority", "2", "--format", "openai"],
    ] {
        let out = home.run(args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = home.run(&["endpoint", "list", "c", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let oai_name = list.as_array().and_then(|l| l.iter().find(|e| e["format"] == "openai")).expect("the oai one")
        ["name"]
        .as_str()
        .expect("name")
        .to_string();
    let out = home.run(&["endpoint", "set", "c", &oai_name, "--model-map", "claude-*=glm-4.6"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    let plain = br#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(proxy.addr, "POST", "/v1/messages", &[], plain);
    assert_eq!(r.json()["content"][0]["text"], "from chat", "failed over: {}", r.text());
    let (ant_before, oai_before) = (ant.hits(), oai.hits());
    let n = request(
        proxy.addr,
        "POST",
        "/v1/messages/count_tokens",
        &[],
        br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"four score and seven years"}]}"#,
    );
    assert_eq!(n.status, 200, "{}", n.text());
    assert!(n.json()["input_tokens"].as_u64().is_some_and(|t| t > 0), "{}", n.text());
    let models = request(proxy.addr, "GET", "/v1/models", &[], b"");
    assert_eq!(models.status, 200, "{}", models.text());
    assert_eq!(models.json()["data"][0]["id"], "glm-4.6", "{}", models.text());
    assert_eq!((ant.hits(), oai.hits()), (ant_before, oai_before), "nothing sent upstream");
}

/// A `--concurrent 1` endpoint that is its cluster's only one is not the last resort past its
/// cap: one request at a time reaches it, the others get the 503 at once.
#[test]
fn a_cap_holds_when_its_endpoint_is_the_last_resort() {
    let a = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(700) });
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1).with(serde_json::json!({"metadata": {"concurrent": 1}}))],
    );
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let addr = proxy.addr;
    let threads: Vec<_> = (0..3)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 100 }));
            std::thread::spawn(move || request(addr, "POST", "/v1/messages", &[], br#"{"max_tokens":8}"#).status)
        })
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503, 503]);
    assert_eq!(a.hits(), 1, "one at a time on the capped endpoint");
    assert_eq!(proxy.status()["failure_queue"]["failed_endpoints_count"], 0);
}

/// A request with a chunked body is read decoded: translated for an OpenAI-format endpoint, and
/// matched by a model route.
#[test]
fn a_chunked_body_is_translated_and_routed_decoded() {
    let oai = MockUpstream::start(Mode::Sse { events: chunks(), delay: Duration::ZERO });
    let home = TempHome::new();
    let url = format!("{}/v1", oai.url());
    home.write_cluster("c", &[openai_ep("a0000001", &url, 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let body =
        r#"{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (one, two) = body.split_at(30);
    let chunked = format!("{:x}\r\n{one}\r\n{:x}\r\n{two}\r\n0\r\n\r\n", one.len(), two.len());
    let send = |addr| {
        let mut c = Conn::connect(addr);
        let head = "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        c.send(format!("{head}{chunked}").as_bytes());
        c.read_response()
    };
    let r = send(proxy.addr);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("message_stop"), "{}", r.text());
    let sent: serde_json::Value = serde_json::from_slice(&oai.requests()[0].body).expect("JSON sent");
    assert_eq!(sent["messages"][0]["content"], "hi");

    // A model route reads the decoded body too.
    let main = MockUpstream::start(Mode::Json { status: 200, body: REPLY.into() });
    let cheap = MockUpstream::start(Mode::Json { status: 200, body: REPLY.into() });
    let home = TempHome::new();
    for (c, url) in [("main", main.url()), ("cheap", cheap.url())] {
        let out = home.run(&["endpoint", "add", c, "--url", &url, "--key", "sk-test-000000000"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(home.run(&["route", "add", "main", "--model", "claude-*haiku*", "--to", "cheap"]).status.success());
    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    let r = send(proxy.addr);
    assert_eq!((r.status, r.header("x-qcc-cluster")), (200, Some("cheap")), "{}", r.text());
    assert_eq!((main.hits(), cheap.hits()), (0, 1));
}

/// After more than 64 clusters, a reload gives a retired cluster's slot to a new one: a request
/// that began before never fails over into it.
#[test]
fn a_request_never_fails_over_into_a_cluster_slot_reused_after_it_began() {
    let hang = MockUpstream::start(Mode::Hang);
    let other = MockUpstream::start(Mode::Json { status: 200, body: REPLY.into() });
    let home = TempHome::new();
    let ep = |url: &str| serde_json::json!([{"id": "e0000001", "base_url": url, "api_key": "sk-x-0000000000", "timeout": 2}]);
    // main routes to 62 clusters and falls back to "old": 64 served, every slot taken.
    let mut profiles = serde_json::Map::new();
    let routes: Vec<serde_json::Value> =
        (0..62).map(|i| serde_json::json!({"model": format!("route-{i}"), "to": format!("r{i}")})).collect();
    profiles.insert(
        "main".into(),
        serde_json::json!({"name": "main", "endpoints": ep(&hang.url()), "routes": routes, "fallback": ["old"]}),
    );
    profiles.insert("old".into(), serde_json::json!({"name": "old", "endpoints": ep(&hang.url())}));
    for i in 0..62 {
        profiles.insert(format!("r{i}"), serde_json::json!({"name": format!("r{i}"), "endpoints": ep(&other.url())}));
    }
    profiles.insert("new".into(), serde_json::json!({"name": "new", "endpoints": ep(&other.url())}));
    let write = |profiles: &serde_json::Map<String, serde_json::Value>| {
        let cfg = serde_json::json!({"profiles": profiles});
        std::fs::write(home.config(), serde_json::to_vec(&cfg).expect("json")).expect("write");
    };
    write(&profiles);
    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    assert_eq!(proxy.status()["clusters"].as_array().map(Vec::len), Some(64));
    // A request on its way to main (hanging), with "old" in its chain.
    let addr = proxy.addr;
    let t = std::thread::spawn(move || request(addr, "POST", "/v1/messages", &[], br#"{"model":"claude-x"}"#));
    assert!(wait_until(Duration::from_secs(3), || hang.hits() == 1));
    // "old" is dropped and "new" takes its slot (the only free one).
    profiles["main"]["fallback"] = serde_json::json!(["new"]);
    write(&profiles);
    let out = home.run(&["proxy", "reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = t.join().expect("client");
    assert_eq!(r.status, 504, "no retry into the reused slot: {}", r.text());
    assert_eq!(other.hits(), 0);
    // A request that begins now uses "new" as its fallback.
    let r = request(proxy.addr, "POST", "/v1/messages", &[], br#"{"model":"claude-x"}"#);
    assert_eq!((r.status, r.header("x-qcc-cluster")), (200, Some("new")), "{}", r.text());
}

/// Nothing usable: the 503 says at once what is wrong (the cluster, each reason with its count,
/// the fix), `retry-after` the soonest one may serve again, and `x-should-retry: false` when
/// nothing recovers without the operator (the official SDKs honour it).
#[test]
fn nothing_usable_says_what_is_wrong() {
    let a = MockUpstream::start(Mode::Slow { delay: Duration::from_millis(700) });
    let home = TempHome::new();
    home.write_cluster(
        "work",
        &[
            Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1)
                .with(serde_json::json!({"metadata": {"concurrent": 1}})),
            Ep::new("b0000001", &a.url(), "sk-b-0000000000", 2).with(serde_json::json!({"enabled": false})),
        ],
    );
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    let addr = proxy.addr;
    let busy = std::thread::spawn(move || request(addr, "POST", "/v1/messages", &[], br#"{"max_tokens":8}"#).status);
    assert!(wait_until(Duration::from_secs(3), || a.hits() == 1));
    let r = request(addr, "POST", "/v1/messages", &[], br#"{"max_tokens":8}"#);
    assert_eq!(r.status, 503);
    let msg = r.json()["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("cluster 'work'") && msg.contains("1 disabled") && msg.contains("1 at its cap"), "{msg}");
    assert_eq!(r.header("retry-after"), Some("1"), "a cap's slot frees soon");
    assert_eq!(r.header("x-should-retry"), None, "it recovers by itself");
    assert_eq!(busy.join().expect("thread"), 200);

    // Every endpoint disabled: nothing recovers without the operator.
    let out = home.run(&["endpoint", "disable", "work", "a0000001"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = request(addr, "POST", "/v1/messages", &[], br#"{"max_tokens":8}"#);
    assert_eq!(r.status, 503);
    let msg = r.json()["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("2 disabled") && msg.contains("qcc endpoint enable work"), "{msg}");
    assert_eq!((r.header("x-should-retry"), r.header("retry-after")), (Some("false"), None));
}

/// An Anthropic-format endpoint that answers 404 to `/v1/messages/count_tokens` lacks the API: it
/// is not blamed, queued or probed for it, the client gets qcc's estimate, and the next token
/// count is not sent there at all. Its Messages requests go on.
#[test]
fn count_tokens_never_breaks_on_an_endpoint_that_lacks_it() {
    let a = MockUpstream::start(Mode::ByPath {
        routes: vec![("/v1/messages/count_tokens".into(), Mode::Status { status: 404, retry_after: None })],
        other: Box::new(Mode::Json { status: 200, body: REPLY.into() }),
    });
    let home = TempHome::new();
    home.write_cluster("c", &[Ep::new("a0000001", &a.url(), "sk-a-0000000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let body =
        br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"four score and seven years ago"}]}"#;
    for hits in [1, 1] {
        let r = request(proxy.addr, "POST", "/v1/messages/count_tokens", &[], body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["input_tokens"].as_u64().is_some_and(|n| n > 0), "{}", r.text());
        assert_eq!(a.hits(), hits, "asked once, then remembered");
    }
    let s = proxy.status();
    assert_eq!(s["failure_queue"]["failed_endpoints_count"], 0, "{s}");
    let health = &s["endpoints"][0]["health"];
    assert_eq!(
        (health["failed_requests"].as_u64(), health["consecutive_failures"].as_u64()),
        (Some(0), Some(0)),
        "{health}"
    );
    let r = request(
        proxy.addr,
        "POST",
        "/v1/messages",
        &[],
        br#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(a.hits(), 2);
}
