//! Models and money (issue 29): model maps per endpoint, probe models, cost in USD, failover
//! rules per cluster — through the real binary, against mock upstreams that record what they got.

use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode};
use crate::support::raw::{json_reply, one_endpoint, raw_upstream};
use crate::support::Conn;
use crate::support::{request, stderr, stdout, wait_until, Proxy, TempHome};

const BODY: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"system":"s","messages":[{"role":"user","content":"hi \u00e9"}],"stream":false}"#;

fn reply(model: &str) -> Mode {
    Mode::Json {
        status: 200,
        body: format!(
            r#"{{"model":"{model}","content":[],"usage":{{"input_tokens":1000000,"output_tokens":1000000,"cache_read_input_tokens":1000000}}}}"#
        ),
    }
}

fn post(proxy: &Proxy, path: &str, body: &[u8]) -> crate::support::Response {
    request(proxy.addr, "POST", path, &[("content-type", "application/json")], body)
}

#[test]
fn each_endpoint_gets_its_own_mapping_of_the_clients_model_and_unmapped_bodies_go_byte_for_byte() {
    let glm = MockUpstream::start(Mode::Status { status: 529, retry_after: None });
    let kimi = MockUpstream::start(reply("kimi-k2-0905"));
    let plain = MockUpstream::start(reply("claude-sonnet-4-5"));
    let home = TempHome::new();
    let add = |args: &[&str]| {
        let out = home.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    add(&[
        "endpoint",
        "add",
        "c",
        "--url",
        &glm.url(),
        "--key",
        "sk-glm-000000000",
        "--name",
        "glm",
        "--model-map",
        "claude-*-haiku-*=glm-4.5-air",
        "--model-map",
        "claude-*=glm-4.6",
    ]);
    add(&[
        "endpoint",
        "add",
        "c",
        "--url",
        &kimi.url(),
        "--key",
        "sk-kimi-00000000",
        "--name",
        "kimi",
        "--priority",
        "2",
        "--model-map",
        "claude-*=kimi-k2",
    ]);
    let proxy = Proxy::start(&home, &["--verify-interval", "3600"]);
    let r = post(&proxy, "/v1/messages", BODY.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let sent_glm: serde_json::Value = serde_json::from_slice(&glm.requests()[0].body).expect("json");
    let sent_kimi: serde_json::Value = serde_json::from_slice(&kimi.requests()[0].body).expect("json");
    let client: serde_json::Value = serde_json::from_str(BODY).expect("json");
    assert_eq!(sent_glm["model"], "glm-4.6");
    assert_eq!(sent_kimi["model"], "kimi-k2", "the failover maps the client's model, not the first mapping");
    for sent in [&sent_glm, &sent_kimi] {
        let mut rest = sent.clone();
        rest["model"] = client["model"].clone();
        assert_eq!(rest, client, "only the model changed");
    }
    let (len, got) = {
        let reqs = kimi.requests();
        (reqs[0].header("content-length").map(str::to_string), reqs[0].body.len().to_string())
    };
    assert_eq!(len.as_deref(), Some(got.as_str()), "the length of the body it got");
    // count_tokens is mapped the same way.
    glm.set_mode(reply("glm-4.6"));
    proxy.signal(libc::SIGHUP); // (nothing changed; the queue keeps glm out for now)
    let r = post(&proxy, "/v1/messages/count_tokens", BODY.as_bytes());
    assert_eq!(r.status, 200);
    let last = kimi.requests().last().map(|q| q.body.clone()).expect("count_tokens");
    assert!(String::from_utf8_lossy(&last).contains("\"kimi-k2\""), "{}", String::from_utf8_lossy(&last));
    // The log has both names; usage is under the model the upstream reported.
    assert!(
        wait_until(Duration::from_secs(5), || proxy.log().contains("model=claude-sonnet-4-5->kimi-k2")),
        "{}",
        proxy.log()
    );
    let today = &proxy.status()["usage"]["today"];
    let kimi_id = proxy.status()["endpoints"][1]["id"].as_str().expect("id").to_string();
    assert!(today[&kimi_id]["kimi-k2-0905"]["requests"].as_u64() >= Some(1), "{today}");

    // An endpoint without a map, and a body that is not JSON: forwarded byte for byte.
    let home2 = TempHome::new();
    assert!(home2.run(&["endpoint", "add", "p", "--url", &plain.url(), "--key", "sk-p-00000000000"]).status.success());
    assert!(home2
        .run(&["endpoint", "add", "p", "--url", &plain.url(), "--key", "sk-p-00000000000", "--model-map", "gpt-*=x"])
        .status
        .success());
    let proxy2 = Proxy::start(&home2, &[]);
    let odd = br#"{ "model" : "claude-sonnet-4-5" ,"max_tokens":1}"#;
    assert_eq!(post(&proxy2, "/v1/messages", odd).status, 200);
    assert_eq!(plain.requests().last().expect("req").body, odd.to_vec(), "no rule matched: untouched");
    assert_eq!(post(&proxy2, "/v1/messages", b"not json at all").status, 200);
    assert_eq!(plain.requests().last().expect("req").body, b"not json at all".to_vec());
}

#[test]
fn probes_ask_for_the_endpoints_own_model() {
    let m = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let ok = MockUpstream::start(reply("x"));
    let home = TempHome::new();
    assert!(home
        .run(&["endpoint", "add", "c", "--url", &m.url(), "--key", "sk-a-0000000000", "--probe-model", "glm-4.5-air"])
        .status
        .success());
    assert!(home
        .run(&["endpoint", "add", "c", "--url", &ok.url(), "--key", "sk-b-0000000000", "--priority", "2"])
        .status
        .success());
    let proxy = Proxy::start(&home, &["--verify-interval", "1"]);
    assert_eq!(post(&proxy, "/v1/messages", BODY.as_bytes()).status, 200);
    assert!(wait_until(Duration::from_secs(10), || m.requests().len() >= 2), "a probe came");
    let probe: serde_json::Value = serde_json::from_slice(&m.requests().last().expect("probe").body).expect("json");
    assert_eq!(probe["model"], "glm-4.5-air");
    assert_eq!(probe["max_tokens"], 10);
}

#[test]
fn cost_in_usd_everywhere_and_no_price_for_unknown_models() {
    let m = MockUpstream::start(reply("claude-sonnet-4-5-20250929"));
    let home = TempHome::new();
    assert!(home
        .run(&["endpoint", "add", "c", "--url", &m.url(), "--key", "sk-a-0000000000", "--name", "main"])
        .status
        .success());
    let proxy = Proxy::start(&home, &[]);
    assert_eq!(post(&proxy, "/v1/messages", BODY.as_bytes()).status, 200);
    // 1M input at $3, 1M output at $15, 1M cache reads at $0.30.
    let s = proxy.status();
    let id = s["endpoints"][0]["id"].as_str().expect("id").to_string();
    let usd = s["usage"]["cost_today"][&id]["cost_usd"].as_f64().expect("cost");
    assert!((usd - 18.30).abs() < 1e-6, "{usd}");
    let v: serde_json::Value = serde_json::from_slice(&home.run(&["usage", "--json"]).stdout).expect("json");
    let day = v["days"].as_object().and_then(|d| d.values().next()).expect("a day");
    let rec = &day[&id]["claude-sonnet-4-5-20250929"];
    assert!((rec["cost_usd"].as_f64().expect("cost") - 18.30).abs() < 1e-6, "{rec}");
    assert!((rec["cache_hit_rate"].as_f64().expect("hit") - 0.5).abs() < 1e-9, "{rec}");
    let text = stdout(&home.run(&["usage"]));
    assert!(text.contains("$18.30") && text.contains("50"), "{text}");
    let metrics = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("qcc_cost_usd_total{") && l.contains("name=\"main\"") && l.ends_with(" 18.3")),
        "{metrics}"
    );
    // A model without a price says so, and a config price is used.
    m.set_mode(reply("glm-4.6"));
    assert_eq!(post(&proxy, "/v1/messages", BODY.as_bytes()).status, 200);
    assert!(stdout(&home.run(&["usage"])).contains("no price"));
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(home.config()).expect("cfg")).expect("json");
    cfg["settings"]["prices"] = serde_json::json!({"glm-*": {"input": 0.6, "output": 2.2}});
    std::fs::write(home.config(), serde_json::to_vec(&cfg).expect("json")).expect("write");
    assert!(!stdout(&home.run(&["usage"])).contains("no price"));
    // The running proxy takes the new prices on reload: today's cost now counts the glm reply.
    let o = home.run(&["proxy", "reload"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let usd = proxy.status()["usage"]["cost_today"][&id]["cost_usd"].as_f64().expect("cost");
    assert!(usd > 18.30 + 2.8 - 1e-6, "{usd}");
    cfg["settings"]["prices"] = serde_json::json!({"glm-*": {"input": "cheap"}});
    std::fs::write(home.config(), serde_json::to_vec(&cfg).expect("json")).expect("write");
    let out = home.run(&["usage"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("glm-*.input") && stderr(&out).trim().lines().count() == 1, "{}", stderr(&out));
}

#[test]
fn failover_rules_per_cluster_apply_live() {
    let a = MockUpstream::start(Mode::Status { status: 429, retry_after: None });
    let b = MockUpstream::start(reply("x"));
    let home = TempHome::new();
    home.add_named_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--verify-interval", "3600"]);
    // Only 5xx fail over now: a 429 goes to the client as is, and blames nobody.
    let out = home.run(&["cluster", "set", "c", "--retry-on", "500,502,503,504,529"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("applied to the running proxy"), "{}", stderr(&out));
    let r = post(&proxy, "/v1/messages", BODY.as_bytes());
    assert_eq!(r.status, 429);
    assert_eq!(b.hits(), 0);
    assert_eq!(proxy.status()["failure_queue"]["stats"]["total_failed"], 0);
    let show = stdout(&home.run(&["cluster", "show", "c"]));
    assert!(show.contains("retry on: 500, 502, 503, 504, 529"), "{show}");
    assert!(home.run(&["cluster", "set", "c", "--strategy", "round_robin"]).status.success());
    assert_eq!(proxy.status()["strategy"], "round_robin");
    // Bad input: one line, nothing written.
    let before = std::fs::read(home.config()).expect("cfg");
    for bad in [
        &["cluster", "set", "c", "--retry-on", "200"][..],
        &["cluster", "set", "c", "--retry-on", "5xx"],
        &["cluster", "set", "c", "--strategy", "fastest"],
        &["cluster", "set", "nope", "--retry-on", "500"],
    ] {
        let out = home.run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{bad:?}: {}", stderr(&out));
    }
    for bad in [
        &["endpoint", "set", "c", "a", "--model-map", "claude-*"][..],
        &["endpoint", "set", "c", "a", "--model-map", "=x"],
        &["endpoint", "set", "c", "a", "--probe-model", "a b"],
    ] {
        let out = home.run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read(home.config()).expect("cfg"), before);
}

/// A client-chosen model name against a wildcard rule costs the loop next to nothing: a 4 KB
/// name against `*-*-*x` (cubic for a backtracking matcher) is matched by no rule and goes
/// through unchanged, and the proxy answers another client meanwhile.
#[test]
fn a_hostile_model_name_cannot_stall_the_loop() {
    let up = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    let out = home.run(&[
        "endpoint",
        "add",
        "c",
        "--url",
        &up.url(),
        "--key",
        "sk-up-000000000",
        "--name",
        "up",
        "--model-map",
        "*-*-*x=glm-4.6",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let name = "a-".repeat(2048);
    let body = format!(r#"{{"model":"{name}","max_tokens":8,"messages":[]}}"#);
    let addr = proxy.addr;
    let hostile = std::thread::spawn(move || {
        request(addr, "POST", "/v1/messages", &[("content-type", "application/json")], body.as_bytes())
    });
    let started = std::time::Instant::now();
    assert_eq!(post(&proxy, "/v1/messages", BODY.as_bytes()).status, 200);
    let r = hostile.join().expect("hostile request");
    assert_eq!(r.status, 200);
    assert!(r.text().contains(&name), "passed through unmapped");
    // A deadline, not a measurement: a backtracking matcher holds the loop for minutes here.
    assert!(started.elapsed() < Duration::from_secs(10), "the loop stalled for {:?}", started.elapsed());
    let short = r#"{"model":"1-2-3x","max_tokens":8,"messages":[]}"#;
    assert!(post(&proxy, "/v1/messages", short.as_bytes()).text().contains("glm-4.6"), "the rule still maps");
}

/// a model name is decoded as JSON (an escaped quote is part of it), and an
/// upstream inventing a name per reply cannot grow what the proxy keeps.
#[test]
fn model_names_are_decoded_and_capped() {
    let (url, _) = raw_upstream(false, |n| {
        let model = if n == 0 { r#"m\"x"#.to_string() } else { format!("invented-{n}-{}", "z".repeat(200)) };
        json_reply(&format!(r#"{{"model":"{model}","content":[],"usage":{{"input_tokens":1,"output_tokens":2}}}}"#))
    });
    let (_h, proxy) = one_endpoint(&url, &[]);
    let mut c = Conn::connect(proxy.addr);
    for _ in 0..100 {
        assert_eq!(c.request("POST", "/v1/messages", &[], b"{}").status, 200);
    }
    let s = proxy.status();
    let models = s["usage"]["today"]["a0000001"].as_object().expect("usage today").clone();
    assert!(models.contains_key("m\"x"), "{:?}", models.keys().collect::<Vec<_>>());
    assert!(models.len() <= 33, "{} models kept", models.len());
    assert!(models.keys().all(|k| k.len() <= 64), "long names are cut");
    let total: u64 = models.values().map(|c| c["requests"].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 100, "every reply counted");
    assert!(models["other"]["requests"].as_u64().unwrap_or(0) > 0);
    let metrics = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    assert!(metrics.len() < 64 * 1024, "/metrics is {} bytes", metrics.len());
}

/// `qcc usage` shows an upstream's model name with its control characters escaped.
#[test]
fn usage_escapes_control_characters() {
    let home = TempHome::new();
    let evil = "m\u{1b}]0;pwned\u{7}\r\n2026-01-01 fake-row";
    let usage = serde_json::json!({"days": {"2026-12-02": {"a0000001": {evil: {"requests": 1}}}}});
    std::fs::create_dir_all(home.home()).expect("home");
    std::fs::write(home.home().join("usage.json"), usage.to_string()).expect("usage");
    let out = home.run(&["usage"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\r'), "{text:?}");
    assert!(text.contains("m\\x1b]0;pwned\\x07\\x0d\\x0a2026-01-01 fake-row"), "{text}");
    assert_eq!(text.lines().count(), 3, "header, the row, the total: no faked row\n{text}");
}

/// Vendor presets: `qcc presets` lists them, `endpoint add --preset` fills the URL, the model
/// map and the name; `$QCC_HOME/presets.json` adds one (here a local vendor, so a request
/// through the proxy shows the map at work); an unknown preset or a broken file is one line.
#[test]
fn presets_fill_an_endpoint_and_the_users_file_adds_one() {
    let up = MockUpstream::start(Mode::Echo);
    let home = TempHome::new();
    let listed = home.run(&["presets", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let names: Vec<&str> = v.as_array().expect("list").iter().filter_map(|p| p["name"].as_str()).collect();
    for n in ["anthropic", "deepseek", "glm", "kimi", "minimax", "qwen", "openrouter"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(
        v.as_array().expect("list").iter().all(|p| p["format"] == "anthropic" || p["format"] == "openai"),
        "each says its format: {v}"
    );
    let key = home.path("key");
    std::fs::write(&key, "sk-vendor-0000000000\n").expect("key");
    let k = key.to_str().expect("utf-8");
    let out = home.run(&["endpoint", "add", "c", "--preset", "glm", "--key-file", k]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = home.run(&["endpoint", "list", "c", "--json"]);
    let eps: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(eps[0]["name"], "glm");
    assert_eq!(eps[0]["base_url"], "https://open.bigmodel.cn/api/anthropic");
    assert!(eps[0].to_string().contains("glm-4.7"), "the preset's model map: {}", eps[0]);
    assert_eq!(eps[0]["format"], "anthropic");
    // A preset of an OpenAI-format provider adds an endpoint of that format.
    let out = home.run(&[
        "endpoint",
        "add",
        "c",
        "--preset",
        "ollama",
        "--key",
        "ollama",
        "--model-map",
        "claude-*=qwen3-coder",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = home.run(&["endpoint", "list", "c", "--json"]);
    let eps: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!((eps[1]["name"].as_str(), eps[1]["format"].as_str()), (Some("ollama"), Some("openai")), "{eps}");
    // The user's own preset, used end to end.
    let mine = serde_json::json!([{"name": "local", "title": "a local relay", "base_url": up.url(),
        "model_map": [["claude-*", "local-model-1"]], "key_url": "https://example.com/keys",
        "prices": {"local-model-1": {"input": 0.5, "output": 2.0}}}]);
    std::fs::create_dir_all(home.home()).expect("home");
    std::fs::write(home.home().join("presets.json"), mine.to_string()).expect("presets");
    let out = home.run(&["endpoint", "add", "d", "--preset", "local", "--key-file", k]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(home.config()).expect("cfg")).expect("json");
    assert_eq!(cfg["settings"]["prices"]["local-model-1"]["output"], 2.0, "the preset's prices: {cfg}");
    let proxy = Proxy::start(&home, &["--cluster", "d"]);
    let r = post(&proxy, "/v1/messages", BODY.as_bytes());
    assert!(r.text().contains("local-model-1"), "mapped by the preset's rule: {}", r.text());
    // Bad: an unknown preset, a broken file.
    let out = home.run(&["endpoint", "add", "c", "--preset", "glmm", "--key-file", k]);
    assert!(!out.status.success() && stderr(&out).contains("no preset 'glmm'"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
    std::fs::write(home.home().join("presets.json"), "{broken").expect("presets");
    let out = home.run(&["presets"]);
    assert!(!out.status.success() && stderr(&out).contains("presets.json"), "{}", stderr(&out));
    // A format qcc does not carry is refused when the file is read, not when a request fails.
    let gemini = serde_json::json!([{"name": "gem", "base_url": up.url(), "format": "gemini"}]);
    std::fs::write(home.home().join("presets.json"), gemini.to_string()).expect("presets");
    let out = home.run(&["endpoint", "add", "e", "--preset", "gem", "--key-file", k]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("presets.json") && err.contains("\"gemini\""), "{err}");
    assert_eq!(stderr(&out).lines().count(), 1);
}
