//! Commands that act on the running proxy: edits applied live, reload, health and queue tools.

use serde_json::Value;

use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::raw::one_endpoint;
use crate::support::*;

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", stdout(o), stderr(o)))
}

/// `endpoint disable` takes an endpoint out of rotation at once and `endpoint add` adds one,
/// without a restart and without resetting the other endpoint's health; each says it applied.
#[test]
fn endpoint_edits_apply_to_the_running_proxy_at_once() {
    let (a, b, c) = (MockUpstream::start(ok()), MockUpstream::start(ok()), MockUpstream::start(ok()));
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    for _ in 0..3 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    let o = home.run(&["endpoint", "disable", "c", "a0000001"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("applied to the running proxy"), "{}", stderr(&o));
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!((a.hits(), b.hits()), (3, 1), "disabled: out of rotation at once");

    let o = home.run(&["endpoint", "add", "c", "--url", &c.url(), "--key", "sk-c-0000000000", "--priority", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let new_id = stdout(&o).trim().to_string();
    assert_eq!(new_id.len(), 8, "stdout is the id alone: {:?}", stdout(&o));
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(c.hits(), 1, "the new priority-0 endpoint serves at once");
    let s = proxy.status();
    let b_health = s["endpoints"].as_array().unwrap().iter().find(|e| e["id"] == "b0000001").unwrap()["health"].clone();
    assert_eq!(b_health["total_requests"], 1, "B's health kept across the reload: {b_health}");

    // set: a new priority; enable brings A back.
    assert!(home.run(&["endpoint", "set", "c", &new_id, "--priority", "9"]).status.success());
    assert!(home.run(&["endpoint", "enable", "c", "a0000001"]).status.success());
    assert_eq!(post_messages(proxy.addr).status, 200);
    assert_eq!(a.hits(), 4);
    let list = json_of(&home.run(&["endpoint", "list", "c", "--json"]));
    let set = list.as_array().unwrap().iter().find(|e| e["id"] == new_id.as_str()).unwrap().clone();
    assert_eq!(set["priority"], 9);
    assert_eq!(home.run(&["endpoint", "set", "c", "ffffffff", "--weight", "5"]).status.code(), Some(2));
    assert_eq!(home.run(&["endpoint", "set", "c", &new_id, "--timeout", "0"]).status.code(), Some(2));

    // A hand edit, applied with `proxy reload`.
    home.write_cluster("c", &[Ep::new("b0000001", &b.url(), "sk-b-0000000000", 1)]);
    let o = home.run(&["proxy", "reload"]);
    assert!(o.status.success() && stdout(&o).contains("removed"), "{} {}", stdout(&o), stderr(&o));
    assert_eq!(proxy.status()["endpoints"].as_array().map(Vec::len), Some(1));
    // No proxy for another cluster: nothing extra said.
    let o = home.run(&["endpoint", "add", "other", "--url", &c.url(), "--key", "sk-c-0000000000"]);
    assert!(!stderr(&o).contains("applied"), "{}", stderr(&o));
}

/// `health test` probes every endpoint for real, without a proxy; exit 1 when one fails.
#[test]
fn health_test_without_a_proxy() {
    let (good, bad) = (MockUpstream::start(ok()), MockUpstream::start(Mode::Status { status: 401, retry_after: None }));
    let home = TempHome::new();
    home.write_cluster(
        "c",
        &[
            Ep::new("a0000001", &good.url(), "sk-a-0000000000", 1),
            Ep::new("b0000001", &bad.url(), "sk-b-0000000000", 2),
        ],
    );
    let o = home.run(&["health", "test", "c", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v[0]["ok"], true);
    assert_eq!(v[0]["status"], 200);
    assert_eq!(v[1]["ok"], false);
    assert_eq!(v[1]["status"], 401);
    assert!(v[1]["reason"].as_str().unwrap_or("").contains("mock 401"), "{v}");
    {
        let seen = good.requests();
        let probe = &seen[0];
        assert_eq!((probe.method.as_str(), probe.path.as_str()), ("POST", "/v1/messages"));
        assert_eq!(probe.header("x-api-key"), Some("sk-a-0000000000"));
    }
    let o = home.run(&["health", "test", "c", "a0000001", "--probe-model", "claude-probe-x"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(good.requests().last().is_some_and(|r| String::from_utf8_lossy(&r.body).contains("claude-probe-x")));
    let row = stdout(&o).lines().nth(1).unwrap_or_default().to_string();
    assert!(row.starts_with("127.0.0.1 ") && row.contains(" ok "), "the endpoint by its name: {row}");
    let by_name = home.run(&["health", "test", "c", "127.0.0.1", "--json"]);
    assert_eq!(json_of(&by_name)[0]["id"], "a0000001", "picked by name too");
    let refused = MockUpstream::refused_url();
    home.write_cluster("d", &[Ep::new("d0000001", &refused, "sk-d-0000000000", 1)]);
    let o = home.run(&["health", "test", "d", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(json_of(&o)[0]["reason"].as_str().unwrap_or("").contains("connect"), "{}", stdout(&o));
}

/// `queue list`, `queue retry`, `health check/metrics/history/config` against the running proxy.
#[test]
fn queue_and_health_tools_of_the_running_proxy() {
    let (a, b) = (MockUpstream::start(Mode::Status { status: 503, retry_after: None }), MockUpstream::start(ok()));
    let home = TempHome::new();
    home.write_pair(&a.url(), &b.url());
    // No proxy yet: exit 3.
    assert_eq!(home.run(&["queue", "list"]).status.code(), Some(3));
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    for _ in 0..4 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    let list = json_of(&home.run(&["queue", "list", "--json"]));
    assert_eq!(list[0]["id"], "a0000001");
    assert_eq!(list[0]["reason"], "HTTP 503");
    assert!(list[0]["since"].is_string() && list[0]["next_check_in_secs"].as_u64() > Some(3000), "{list}");
    // Still failing: retry says so (exit 1); once it answers, retry restores it.
    let o = home.run(&["queue", "retry", "a0000001"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    a.set_mode(ok());
    let o = home.run(&["queue", "retry-all"]);
    assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
    assert_eq!(proxy.status()["failure_queue"]["failed_endpoints_count"], 0);
    assert_eq!(home.run(&["queue", "retry", "a0000001"]).status.code(), Some(2), "no longer queued");

    let o = home.run(&["health", "check", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_of(&o).as_array().map(Vec::len), Some(2));
    let m = json_of(&home.run(&["health", "metrics", "b0000001", "--json"]));
    assert_eq!(m[0]["latency_ms"]["samples"], 4, "B served all four: {m}");
    assert!(m[0]["latency_ms"]["p99"].as_f64() >= m[0]["latency_ms"]["p50"].as_f64());
    let h = json_of(&home.run(&["health", "history", "a0000001", "--json"]));
    let kinds: Vec<&str> = h.as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    for k in ["queued", "failed", "probe_failed", "probe_ok"] {
        assert!(kinds.contains(&k), "history has {k}: {kinds:?}");
    }
    let failed_probe = h.as_array().unwrap().iter().find(|e| e["event"] == "probe_failed").unwrap();
    assert_eq!(failed_probe["detail"], "HTTP 503", "with its reason: {failed_probe}");
    assert!(stdout(&home.run(&["health", "history", "-n", "2"])).lines().count() == 2);
    let c = json_of(&home.run(&["health", "config", "--json"]));
    assert_eq!(c["verify_interval_secs"], 3600);
    assert_eq!(c["strategy"], "priority_failover");
    // Actions need the custom header (a page on another site cannot send it).
    let r = request(proxy.addr, "POST", "/_qcc/queue/clear", &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    // Without a key configured, an action also needs the token of the page the proxy served.
    let r = request(proxy.addr, "POST", "/_qcc/queue/clear", &[("x-qcc-action", "1")], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    let page = request(proxy.addr, "GET", "/_qcc/", &[], b"").text();
    let token = page.split("name=\"qcc-token\" content=\"").nth(1).and_then(|t| t.split('"').next()).expect("token");
    assert_eq!(token.len(), 64);
    let r = request(proxy.addr, "POST", "/_qcc/queue/clear", &[("x-qcc-action", "1"), ("x-qcc-token", token)], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn a_bad_endpoint_id_is_one_line_and_a_refused_reload_says_what_the_proxy_said() {
    let m = MockUpstream::start(ok());
    let (home, _proxy) = one_endpoint(&m.url(), &[]);
    // A hand-edited id the dashboard and /metrics cannot carry: the reload is refused, and the
    // CLI says so (not "cannot reach").
    home.write_cluster("c", &[Ep::new("bad\"id", &m.url(), "sk-a-0000000000", 1)]);
    let out = home.run(&["proxy", "reload"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(!err.contains("cannot reach"), "{err}");
    assert!(err.contains("endpoint id") && err.contains("409"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = home.run(&["endpoint", "list", "c"]);
    assert!(!out.status.success() && stderr(&out).contains("endpoint id"), "{}", stderr(&out));
}
