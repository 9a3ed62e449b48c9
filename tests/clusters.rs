//! One proxy, several clusters (issue 41): routes by model and by request, the fallback chain,
//! what they leave in status, `/metrics`, the history and usage — through the real binary, with
//! the body of a real Claude Code request.

use std::time::Duration;

use crate::support::mock::{MockUpstream, Mode};
use crate::support::{request, stderr, stdout, wait_until, Proxy, TempHome};

/// A reply naming `model`, with usage (so the request is charged).
fn reply(model: &str) -> Mode {
    Mode::Json {
        status: 200,
        body: format!(
            r#"{{"id":"msg_1","type":"message","role":"assistant","model":"{model}","content":[{{"type":"text","text":"hi"}}],"stop_reason":"end_turn","usage":{{"input_tokens":10,"output_tokens":2}}}}"#
        ),
    }
}

/// The real Claude Code request (`tests/fixtures/claude-code`), asking for `model`.
fn claude_code_body(model: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-code/body-POST.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("JSON");
    v["model"] = model.into();
    v["stream"] = false.into();
    serde_json::to_vec(&v).expect("JSON")
}

fn post(proxy: &Proxy, body: &[u8]) -> crate::support::Response {
    request(proxy.addr, "POST", "/v1/messages?beta=true", &[("content-type", "application/json")], body)
}

fn ok(home: &TempHome, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn add(home: &TempHome, cluster: &str, name: &str, url: &str, extra: &[&str]) {
    let mut args = vec!["endpoint", "add", cluster, "--url", url, "--key", "sk-test-000000000", "--name", name];
    args.extend_from_slice(extra);
    ok(home, &args);
}

/// The config file edited by hand.
fn edit_config(home: &TempHome, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("JSON");
    edit(&mut cfg);
    std::fs::write(home.config(), serde_json::to_vec(&cfg).expect("JSON")).expect("write");
}

fn model_sent(mock: &MockUpstream) -> String {
    let reqs = mock.requests();
    let last = reqs.last().expect("a request");
    let v: serde_json::Value = serde_json::from_slice(&last.body).expect("JSON body");
    v["model"].as_str().unwrap_or("").to_string()
}

/// A Haiku request goes to the routed cluster and a Sonnet one stays; a `--when` route reads the
/// request; a route removed while the proxy runs stops applying within a second; the answer,
/// status, `/metrics`, the history and usage all say which cluster served.
#[test]
fn a_haiku_request_goes_to_the_routed_cluster_and_a_sonnet_one_stays() {
    let main = MockUpstream::start(reply("claude-sonnet-4-5"));
    let cheap = MockUpstream::start(reply("claude-haiku-4-5"));
    let tools = MockUpstream::start(reply("claude-opus-4-8"));
    let home = TempHome::new();
    add(&home, "main", "m1", &main.url(), &[]);
    add(&home, "cheap", "h1", &cheap.url(), &[]);
    add(&home, "tooling", "t1", &tools.url(), &[]);
    let said = ok(&home, &["route", "add", "main", "--model", "claude-*haiku*", "--to", "cheap"]);
    assert!(said.contains("route 1 of cluster 'main': model claude-*haiku* -> cheap"), "{said}");
    ok(&home, &["route", "add", "main", "--when", "input-tokens>1000000", "--to", "tooling"]);
    let log = home.path("access.jsonl");
    let proxy = Proxy::start(&home, &["--cluster", "main", "--access-log", log.to_str().expect("path")]);

    let r = post(&proxy, &claude_code_body("claude-haiku-4-5-20251001"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-qcc-cluster"), Some("cheap"));
    let r = post(&proxy, &claude_code_body("claude-sonnet-4-5-20250929"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-qcc-cluster"), Some("main"));
    assert_eq!((main.hits(), cheap.hits(), tools.hits()), (1, 1, 0));
    // Forwarded as it came: routing reads, never rewrites.
    assert_eq!(cheap.requests()[0].body, claude_code_body("claude-haiku-4-5-20251001"));

    let s = proxy.status();
    let clusters = s["clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 3, "{s}");
    assert_eq!(clusters[0]["name"], "main");
    assert_eq!(clusters[0]["routes"][0]["rule"], "model claude-*haiku*");
    assert_eq!(clusters[0]["routes"][0]["to"], "cheap");
    assert_eq!(clusters[0]["routes"][1]["rule"], "when input-tokens>1000000");
    let served: Vec<(String, u64)> = clusters
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["served"].as_u64().unwrap_or(9)))
        .collect();
    assert_eq!(served, [("main".into(), 1), ("cheap".into(), 1), ("tooling".into(), 0)]);
    let eps = s["endpoints"].as_array().expect("endpoints");
    assert!(eps.iter().any(|e| e["name"] == "h1" && e["cluster"] == "cheap"), "{s}");

    let m = request(proxy.addr, "GET", "/metrics", &[], b"").text();
    assert!(
        m.contains(r#"qcc_requests_total{endpoint="#) && m.contains(r#"name="h1",cluster="cheap",class="2xx"} 1"#),
        "{m}"
    );
    assert!(m.contains(r#"qcc_cluster_served_total{cluster="cheap",via="direct"} 1"#), "{m}");

    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&log).unwrap_or_default().lines().count() >= 2)
    );
    let out = ok(&home, &["logs", "--file", log.to_str().expect("path"), "--cluster", "cheap", "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out).expect("a JSON list");
    assert_eq!(entries.len(), 1, "{out}");
    assert_eq!(entries[0]["cluster"], "cheap");
    assert_eq!(entries[0]["route"], "model claude-*haiku*");

    let usage = ok(&home, &["usage", "--by", "cluster", "--json"]);
    let u: serde_json::Value = serde_json::from_str(&usage).expect("usage JSON");
    let today = u["days"].as_object().and_then(|d| d.values().next()).cloned().expect("a day");
    assert_eq!(today["cheap"]["requests"], 1, "{usage}");
    assert_eq!(today["main"]["requests"], 1, "{usage}");
    let table = ok(&home, &["usage", "--by", "cluster"]);
    assert!(table.contains("CLUSTER") && table.lines().any(|l| l.contains(" cheap ")), "{table}");
    let by_model = ok(&home, &["usage", "--by", "model", "--json"]);
    let m: serde_json::Value = serde_json::from_str(&by_model).expect("usage JSON");
    let day = m["days"].as_object().and_then(|d| d.values().next()).cloned().expect("a day");
    assert_eq!(
        (day["claude-haiku-4-5"]["requests"].as_u64(), day["claude-sonnet-4-5"]["requests"].as_u64()),
        (Some(1), Some(1)),
        "{by_model}"
    );

    // The page disables an endpoint of the routed cluster (its edit finds the cluster that has
    // it): Haiku then has nowhere to go in "cheap" (no fallback), so it is refused with 503.
    let page = request(proxy.addr, "GET", "/_qcc/", &[], b"").text();
    let token = page.split("name=\"qcc-token\" content=\"").nth(1).and_then(|t| t.split('"').next()).expect("token");
    let h = [("x-qcc-action", "1"), ("x-qcc-token", token)];
    let r = request(proxy.addr, "POST", "/_qcc/endpoint?endpoint=h1&enabled=false", &h, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let cfg = ok(&home, &["endpoint", "list", "cheap", "--json"]);
    assert!(cfg.contains("\"enabled\": false"), "{cfg}");
    assert_eq!(post(&proxy, &claude_code_body("claude-haiku-4-5-20251001")).status, 503);
    let r = request(proxy.addr, "POST", "/_qcc/endpoint?endpoint=h1&enabled=true", &h, b"");
    assert_eq!(r.status, 200, "{}", r.text());

    // Removed while it runs: Haiku stays in main from now on.
    let said = ok(&home, &["route", "remove", "main", "1"]);
    assert!(said.contains("removed route 1"), "{said}");
    let r = post(&proxy, &claude_code_body("claude-haiku-4-5-20251001"));
    assert_eq!(r.header("x-qcc-cluster"), Some("main"));
    assert_eq!((main.hits(), cheap.hits()), (2, 1));
    // The size rule is now route 1 (an estimate of the body's bytes / 4).
    ok(&home, &["route", "add", "main", "--when", "input-tokens>100", "--to", "tooling"]);
    let r = post(&proxy, &claude_code_body("claude-sonnet-4-5-20250929"));
    assert_eq!(r.header("x-qcc-cluster"), Some("tooling"), "the fixture is well over 400 bytes");
}

/// Every endpoint of the main cluster answers 500: the request continues in the fallback
/// cluster, whose endpoint's model map renames the model; once main's endpoints are queued the
/// next request goes there at once; main is first again when it answers.
#[test]
fn when_every_main_endpoint_fails_the_fallback_cluster_serves_with_its_mapped_model() {
    let a = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let b = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let glm = MockUpstream::start(reply("glm-4.6"));
    let home = TempHome::new();
    add(&home, "main", "a", &a.url(), &["--priority", "1"]);
    add(&home, "main", "b", &b.url(), &["--priority", "2"]);
    add(&home, "glm", "z", &glm.url(), &["--model-map", "claude-*=glm-4.6"]);
    let said = ok(&home, &["cluster", "set", "main", "--fallback", "glm"]);
    assert!(said.contains("falls back to glm"), "{said}");
    let hook = MockUpstream::start(Mode::Json { status: 200, body: "{}".into() });
    let proxy = Proxy::start(&home, &["--cluster", "main", "--verify-interval", "1", "--notify-url", &hook.url()]);
    let alerts = || -> Vec<serde_json::Value> {
        hook.requests().iter().filter_map(|r| serde_json::from_slice(&r.body).ok()).collect()
    };
    let switch =
        |kind: &str| alerts().into_iter().filter(|a| a["event"] == "cluster_switch" && a["type"] == kind).count();

    let r = post(&proxy, &claude_code_body("claude-opus-4-8"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-qcc-cluster"), Some("glm"));
    assert_eq!((a.hits(), b.hits(), glm.hits()), (1, 1, 1));
    assert_eq!(model_sent(&glm), "glm-4.6", "the fallback's endpoint gets its own name for the model");

    // Main's endpoints are queued: straight to the fallback, nothing sent to them.
    let r = post(&proxy, &claude_code_body("claude-opus-4-8"));
    assert_eq!((r.status, r.header("x-qcc-cluster")), (200, Some("glm")));
    assert_eq!((a.hits(), b.hits(), glm.hits()), (1, 1, 2));
    let s = proxy.status();
    assert_eq!(s["clusters"][0]["usable"], 0, "{s}");
    assert_eq!(s["clusters"][0]["chain"][0], "glm", "{s}");
    assert_eq!(s["clusters"][1]["fell_back"], 2, "{s}");
    // Said once: main's endpoints down (all_down names the fallback), and the move to glm.
    assert!(wait_until(Duration::from_secs(5), || switch("failover") == 1), "{:?}", alerts());
    let all = alerts();
    let down = all.iter().find(|a| a["event"] == "all_down").expect("all_down");
    assert_eq!((down["cluster"].as_str(), down["fallback"][0].as_str()), (Some("main"), Some("glm")), "{down}");
    let moved = all.iter().find(|a| a["event"] == "cluster_switch").expect("cluster_switch");
    assert_eq!((moved["from"].as_str(), moved["to"].as_str()), (Some("main"), Some("glm")), "{moved}");

    // Main answers again (its probe): first place again.
    a.set_mode(reply("claude-opus-4-8"));
    assert!(wait_until(Duration::from_secs(10), || proxy.status()["endpoints"][0]["usable"] == true));
    let r = post(&proxy, &claude_code_body("claude-opus-4-8"));
    assert_eq!(r.header("x-qcc-cluster"), Some("main"));
    assert_eq!(model_sent(&a), "claude-opus-4-8");
    assert!(wait_until(Duration::from_secs(5), || switch("auto") == 1), "{:?}", alerts());
    assert_eq!(switch("failover"), 1, "one move each way");
}

/// Bad routes and fallbacks are one line and write nothing; a reload that meets one (the file
/// edited by hand) keeps the running clusters.
#[test]
fn bad_routes_and_fallbacks_are_refused_and_a_reload_keeps_the_running_ones() {
    let main = MockUpstream::start(reply("claude-sonnet-4-5"));
    let other = MockUpstream::start(reply("claude-haiku-4-5"));
    let home = TempHome::new();
    add(&home, "main", "m", &main.url(), &[]);
    add(&home, "other", "o", &other.url(), &[]);
    ok(&home, &["cluster", "set", "other", "--fallback", "main"]);
    for (args, says) in [
        (&["route", "add", "main", "--model", "claude-*", "--to", "nowhere"][..], "nowhere"),
        (&["route", "add", "main", "--model", "claude *", "--to", "other"], "--model"),
        (&["route", "add", "main", "--when", "sunny", "--to", "other"], "sunny"),
        (&["route", "add", "main", "--when", "input-tokens>-5", "--to", "other"], "input-tokens"),
        (&["route", "add", "main", "--model", "a", "--when", "tools", "--to", "other"], "one of"),
        (&["route", "add", "main", "--model", "a", "--to", "main"], "another cluster"),
        (&["route", "remove", "main", "1"], "no route 1"),
        (&["cluster", "set", "main", "--fallback", "other"], "fallback cycle: main -> other -> main"),
        (&["cluster", "set", "main", "--fallback", "nowhere"], "nowhere"),
        (&["endpoint", "set", "main", "m", "--concurrent", "-1"], "concurrent"),
    ] {
        let before = std::fs::read(home.config()).expect("config");
        let out = home.run(args);
        let err = stderr(&out);
        let first = err.lines().next().unwrap_or("");
        assert!(!out.status.success() && first.contains(says), "{args:?}: {err}");
        assert_eq!(std::fs::read(home.config()).expect("config"), before, "{args:?}: nothing written");
    }
    ok(&home, &["route", "add", "main", "--model", "claude-*haiku*", "--to", "other"]);
    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    let body = claude_code_body("claude-haiku-4-5-20251001");
    assert_eq!(post(&proxy, &body).header("x-qcc-cluster"), Some("other"));

    // A hand edit that routes to a cluster that is not there: the reload skips that route, says
    // so naming it, and applies the rest (a removed cluster never leaves a config that cannot load).
    edit_config(&home, |cfg| {
        cfg["profiles"]["main"]["routes"] = serde_json::json!([{"model": "claude-*", "to": "gone"}])
    });
    let out = home.run(&["proxy", "reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        wait_until(Duration::from_secs(3), || proxy
            .log()
            .contains("cluster 'main': route 1 (model claude-*) goes to cluster 'gone'")),
        "{}",
        proxy.log()
    );
    assert_eq!(post(&proxy, &body).header("x-qcc-cluster"), Some("main"), "the route to nowhere is skipped");
    // A cycle is still refused whole: the running clusters are kept.
    edit_config(&home, |cfg| {
        cfg["profiles"]["main"]["fallback"] = serde_json::json!(["other"]);
    });
    let out = home.run(&["proxy", "reload"]);
    assert!(!out.status.success() && stderr(&out).contains("fallback cycle"), "{}", stderr(&out));
    assert_eq!(post(&proxy, &claude_code_body("claude-sonnet-4-5")).header("x-qcc-cluster"), Some("main"));
}

/// A cluster that a route, a fallback chain or priority.json names is not removed from under
/// them: the refusal names each; `--force` removes them too, and the running proxy, a reload and
/// a restart all go on.
#[test]
fn removing_a_cluster_that_something_names() {
    let main = MockUpstream::start(reply("claude-sonnet-4-5"));
    let cheap = MockUpstream::start(reply("claude-haiku-4-5"));
    let home = TempHome::new();
    add(&home, "work", "w", &main.url(), &[]);
    add(&home, "cheap", "c", &cheap.url(), &[]);
    add(&home, "spare", "s", &main.url(), &[]);
    ok(&home, &["route", "add", "work", "--model", "claude-*haiku*", "--to", "cheap"]);
    ok(&home, &["cluster", "set", "spare", "--fallback", "cheap"]);
    ok(&home, &["priority", "set", "cheap", "secondary"]);
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    let haiku = claude_code_body("claude-haiku-4-5-20251001");
    assert_eq!(post(&proxy, &haiku).header("x-qcc-cluster"), Some("cheap"));

    let before = std::fs::read(home.config()).expect("config");
    let out = home.run(&["remove", "cheap", "--yes"]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    for who in
        ["route 1 of 'work' (model claude-*haiku*)", "the fallback chain of 'spare'", "priority.json (secondary)"]
    {
        assert!(err.contains(who), "{who} in {err}");
    }
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(home.config()).expect("config"), before, "nothing written");

    let said = ok(&home, &["remove", "cheap", "--yes", "--force"]);
    assert!(said.contains("removed profile 'cheap'") && said.contains("route 1 of 'work'"), "{said}");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("JSON");
    assert!(cfg["profiles"].get("cheap").is_none() && cfg["profiles"]["work"].get("routes").is_none(), "{cfg}");
    assert!(cfg["profiles"]["spare"].get("fallback").is_none(), "{cfg}");
    let prio = std::fs::read_to_string(home.home().join("priority.json")).expect("priority.json");
    assert!(!prio.contains("\"cheap\""), "{prio}");
    // The running proxy took it at once; reload and restart work.
    assert_eq!(post(&proxy, &haiku).header("x-qcc-cluster"), Some("work"));
    let out = home.run(&["proxy", "reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(proxy);
    let proxy = Proxy::start(&home, &["--cluster", "work"]);
    assert_eq!(post(&proxy, &haiku).status, 200);
}

/// The Python qcc's profile priorities as a fallback chain: a proxy started without --cluster
/// serves the primary, the secondary takes over when it cannot, each move is a `switch_history`
/// entry (failover, then auto when the primary answers again); with auto-failover off there is
/// no chain.
#[test]
fn profile_priorities_are_the_fallback_chain_of_a_proxy_started_without_a_cluster() {
    let a = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let b = MockUpstream::start(reply("glm-4.6"));
    let home = TempHome::new();
    add(&home, "work", "a", &a.url(), &[]);
    add(&home, "spare", "b", &b.url(), &["--model-map", "claude-*=glm-4.6"]);
    ok(&home, &["priority", "set", "work", "primary"]);
    ok(&home, &["priority", "set", "spare", "secondary"]);

    // auto_failover is off by default (as in the Python qcc): no chain, the 500 is the answer.
    let mut proxy = Proxy::start(&home, &["--verify-interval", "1"]);
    assert_eq!(proxy.status()["clusters"].as_array().map(Vec::len), Some(1));
    assert_eq!(post(&proxy, &claude_code_body("claude-opus-4-8")).status, 500);
    proxy.terminate();

    ok(&home, &["priority", "policy", "--auto-failover"]);
    let proxy = Proxy::start(&home, &["--verify-interval", "1"]);
    let s = proxy.status();
    assert_eq!((s["cluster"].as_str(), s["clusters"][0]["chain"][0].as_str()), (Some("work"), Some("spare")), "{s}");
    let r = post(&proxy, &claude_code_body("claude-opus-4-8"));
    assert_eq!((r.status, r.header("x-qcc-cluster")), (200, Some("spare")), "{}", r.text());
    assert_eq!(model_sent(&b), "glm-4.6");
    let history = || -> Vec<serde_json::Value> {
        let path = home.home().join("priority.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default();
        v["switch_history"].as_array().cloned().unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(5), || history().iter().any(|h| h["type"] == "failover")),
        "{:?}",
        history()
    );
    let last = history().last().cloned().expect("an entry");
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("work"), Some("spare")), "{last}");
    let listed = ok(&home, &["priority", "history"]);
    assert!(listed.contains("failover"), "{listed}");

    // The primary answers its probe: the next request is its again, and that is an `auto` entry.
    a.set_mode(reply("claude-opus-4-8"));
    assert!(wait_until(Duration::from_secs(10), || proxy.status()["clusters"][0]["usable"] == 1));
    let r = post(&proxy, &claude_code_body("claude-opus-4-8"));
    assert_eq!(r.header("x-qcc-cluster"), Some("work"));
    assert!(
        wait_until(Duration::from_secs(5), || history().last().is_some_and(|h| h["type"] == "auto")),
        "{:?}",
        history()
    );
    assert_eq!(history().iter().filter(|h| h["type"] == "failover").count(), 1, "one move each way");
}

/// A long-running proxy whose routes name a new cluster at each of 70 reloads (more than the 64
/// a request's chain can hold at once): it keeps serving, each route reaching its cluster.
#[test]
fn clusters_come_and_go_over_many_reloads() {
    let main = MockUpstream::start(reply("claude-sonnet-4-5"));
    let other = MockUpstream::start(reply("claude-haiku-4-5"));
    let home = TempHome::new();
    add(&home, "main", "m", &main.url(), &[]);
    let proxy = Proxy::start(&home, &["--cluster", "main"]);
    let body = claude_code_body("claude-haiku-4-5-20251001");
    for i in 0..70 {
        let name = format!("x{i}");
        edit_config(&home, |cfg| {
            let profiles = cfg["profiles"].as_object_mut().expect("profiles");
            profiles.retain(|k, _| k == "main");
            let ep =
                serde_json::json!({"id": format!("e{i:07}"), "base_url": other.url(), "api_key": "sk-x-000000000"});
            profiles.insert(name.clone(), serde_json::json!({"name": name, "endpoints": [ep]}));
            cfg["profiles"]["main"]["routes"] = serde_json::json!([{"model": "claude-*haiku*", "to": name}]);
        });
        let out = home.run(&["proxy", "reload"]);
        assert!(out.status.success(), "reload {i}: {}", stderr(&out));
        let r = post(&proxy, &body);
        assert_eq!((r.status, r.header("x-qcc-cluster")), (200, Some(name.as_str())), "reload {i}");
    }
    let s = proxy.status();
    assert_eq!(s["clusters"].as_array().map(Vec::len), Some(2), "{}", s["clusters"]);
    assert_eq!(other.hits(), 70);
}
