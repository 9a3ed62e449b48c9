//! The dashboard manages (issue 31), through the API the page uses: every edit is the CLI's,
//! written to the config and applied live; who may is checked; keys are write-only.

use std::time::Duration;

use crate::keys::{add_key, keys_loaded};
use crate::support::mock::{ok, MockUpstream};
use crate::support::{request, stdout, wait_until, Proxy, Response, TempHome};

fn page_token(proxy: &Proxy) -> String {
    let page = request(proxy.addr, "GET", "/_qcc/", &[], b"").text();
    page.split("name=\"qcc-token\" content=\"").nth(1).and_then(|t| t.split('"').next()).expect("token").to_string()
}

fn post(proxy: &Proxy, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![("x-qcc-action", "1")];
    h.extend_from_slice(headers);
    request(proxy.addr, "POST", path, &h, b"")
}

fn endpoint_names(proxy: &Proxy, auth: &[(&str, &str)]) -> Vec<String> {
    let s = request(proxy.addr, "GET", "/_qcc/status", auth, b"").json();
    s["endpoints"].as_array().into_iter().flatten().filter_map(|e| e["name"].as_str().map(String::from)).collect()
}

#[test]
fn endpoints_and_cluster_rules_are_edited_from_the_page_as_the_cli_would() {
    let home = TempHome::new();
    let (a, b, c) = (MockUpstream::start(ok()), MockUpstream::start(ok()), MockUpstream::start(ok()));
    home.add_named_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let token = page_token(&proxy);
    let t = ("x-qcc-token", token.as_str());

    // Without the page's token (or from a page that is not this proxy's), nothing changes.
    let add = format!("/_qcc/config/endpoint/add?name=third&url={}&priority=3", c.url());
    let r = post(&proxy, &add, &[("x-qcc-key", "sk-third-000000001")]);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post(&proxy, &add, &[t, ("x-qcc-key", "sk-third-000000001"), ("origin", "http://evil.example")]);
    assert_eq!(r.status, 403);
    assert_eq!(endpoint_names(&proxy, &[]).len(), 2);

    let r = post(&proxy, &add, &[t, ("x-qcc-key", "sk-third-000000001")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("sk-third"), "no answer carries an endpoint's key");
    assert!(endpoint_names(&proxy, &[]).contains(&"third".to_string()), "applied live");
    let listed = stdout(&home.run(&["endpoint", "list", "c", "--json"]));
    assert!(listed.contains("\"third\""), "written to the config: {listed}");

    // Edit and rotate the key; the new key reaches the upstream, never a page.
    let r = post(
        &proxy,
        "/_qcc/config/endpoint/set?endpoint=third&priority=0&model_map=claude-*%3Dglm-4.6",
        &[t, ("x-qcc-key", "sk-rotated-00000002")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        wait_until(Duration::from_secs(3), || {
            let _ = request(
                proxy.addr,
                "POST",
                "/v1/messages",
                &[("content-type", "application/json")],
                br#"{"model":"claude-x"}"#,
            );
            c.requests().iter().any(|q| {
                q.raw_head.contains("sk-rotated-00000002") && String::from_utf8_lossy(&q.body).contains("glm-4.6")
            })
        }),
        "priority 0, the new key and the model map in force"
    );
    let s = request(proxy.addr, "GET", "/_qcc/status", &[], b"").text();
    assert!(!s.contains("sk-rotated") && !s.contains("sk-third"), "the status never carries a key");

    // Bad input: the exact error, nothing written.
    let before = std::fs::read(home.config()).expect("config");
    for (path, says) in [
        ("/_qcc/config/endpoint/add?name=x&url=ftp://x.example", "http"),
        ("/_qcc/config/endpoint/add?name=%3Cimg%20src%3Dx%3E&url=https://x.example", "name"),
        ("/_qcc/config/endpoint/set?endpoint=nope&priority=2", "unknown endpoint"),
        ("/_qcc/config/endpoint/set?endpoint=third&weight=many", "whole number"),
        ("/_qcc/config/cluster?strategy=fastest", "unknown strategy"),
    ] {
        let r = post(&proxy, path, &[t, ("x-qcc-key", "sk-x-0000000000001")]);
        assert!(matches!(r.status, 400 | 409), "{path}: {}", r.status);
        let msg = r.json()["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(says), "{path}: {msg}");
    }
    assert_eq!(std::fs::read(home.config()).expect("config"), before, "nothing written");

    let r = post(&proxy, "/_qcc/config/cluster?strategy=round_robin&retry_on=500,502,503", &[t]);
    assert_eq!(r.status, 200, "{}", r.text());
    let s = request(proxy.addr, "GET", "/_qcc/status", &[], b"").json();
    assert_eq!(s["strategy"], "round_robin");
    assert_eq!(s["retry_on"], serde_json::json!([500, 502, 503]));
    let r = post(&proxy, "/_qcc/config/endpoint/remove?endpoint=third", &[t]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(endpoint_names(&proxy, &[]).len(), 2);
}

#[test]
fn with_keys_only_an_admin_may_edit_and_a_new_key_is_shown_once() {
    let home = TempHome::new();
    let (a, b) = (MockUpstream::start(ok()), MockUpstream::start(ok()));
    home.add_named_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let user = add_key(&home, "user", &[]);
    let admin = add_key(&home, "ops", &["--admin"]);
    keys_loaded(&proxy, 2);
    let token = page_token(&proxy);
    let r = post(&proxy, "/_qcc/keys/add?name=carol&rpm=5", &[("x-qcc-token", &token)]);
    assert_eq!(r.status, 401, "the page's token is not a key once keys exist");
    let r = post(&proxy, "/_qcc/keys/add?name=carol&rpm=5", &[("x-api-key", &user)]);
    assert_eq!(r.status, 403, "a key without --admin may not edit");
    let r = post(&proxy, "/_qcc/keys/add?name=carol&rpm=5&daily_usd=2.5", &[("x-api-key", &admin)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let carol = r.json()["done"]["key"].as_str().expect("the new key, once").to_string();
    assert!(carol.starts_with("qcc-") && carol.len() == 44);
    keys_loaded(&proxy, 3);
    let s = request(proxy.addr, "GET", "/_qcc/status", &[("x-api-key", &admin)], b"").text();
    assert!(!s.contains(&carol[4..]), "shown once, never again");
    assert!(stdout(&home.run(&["key", "list"])).contains("$2.50/day, 5 rpm"));
    let r = post(&proxy, "/_qcc/keys/add?name=carol", &[("x-api-key", &admin)]);
    assert_eq!(r.status, 409);
    assert!(r.json()["error"]["message"].as_str().is_some_and(|m| m.contains("already exists")));
    let r = post(&proxy, "/_qcc/keys/set?name=carol&rpm=none", &[("x-api-key", &admin)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &carol)], b"{}").status, 200);
    let r = post(&proxy, "/_qcc/keys/revoke?name=carol", &[("x-api-key", &admin)]);
    assert_eq!(r.status, 200, "{}", r.text());
    // Once the page is told ok, the revoke holds: the very next request is refused.
    let r = request(proxy.addr, "POST", "/v1/messages", &[("x-api-key", &carol)], b"{}");
    assert_eq!(r.status, 401, "{}", r.text());
    // The CLI of the same home needs no key (its control token).
    assert!(home.run(&["cluster", "set", "c", "--strategy", "weighted"]).status.success());
    let s = request(proxy.addr, "GET", "/_qcc/status", &[("x-api-key", &admin)], b"").json();
    assert_eq!(s["strategy"], "weighted");
}

/// The admin routes' query parameters are percent-decoded as the page encodes them.
#[test]
fn admin_queries_are_percent_decoded() {
    let home = TempHome::new();
    let (a, b) = (MockUpstream::start(ok()), MockUpstream::start(ok()));
    home.add_named_pair(&a.url(), &b.url());
    let proxy = Proxy::start(&home, &["--cluster", "c"]);
    let token = page_token(&proxy);
    let r = post(&proxy, "/_qcc/probe?endpoint=%62", &[("x-qcc-token", &token)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["probing"].as_array().map(Vec::len), Some(1), "{}", r.text());
    let r = post(&proxy, "/_qcc/endpoint?endpoint=%62&enabled=false", &[("x-qcc-token", &token)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(wait_until(Duration::from_secs(3), || endpoint_names(&proxy, &[]).len() == 2));
    let s = request(proxy.addr, "GET", "/_qcc/status", &[], b"").json();
    assert_eq!(s["endpoints"][1]["enabled"], false, "{}", s["endpoints"][1]);
}
