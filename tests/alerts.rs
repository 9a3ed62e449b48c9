//! Alerts (issue 30): JSON POSTs to `--notify-url` receivers, sent by the loop without holding
//! anything up, tried again when a receiver fails.

use std::time::Duration;

use crate::keys::{add_key, keys_loaded, usage_upstream, with_key};
use crate::support::mock::{ok, MockUpstream, Mode};
use crate::support::wait_until;
use crate::support::{post_messages, Proxy, TempHome};

/// The alerts a receiver got (2xx answered or not), as JSON, in order.
fn alerts(hook: &MockUpstream) -> Vec<serde_json::Value> {
    hook.requests().iter().filter_map(|r| serde_json::from_slice(&r.body).ok()).collect()
}

fn events(hook: &MockUpstream) -> Vec<String> {
    alerts(hook).iter().map(|a| a["event"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn endpoint_down_up_and_all_down_reach_every_receiver_and_a_dead_one_holds_up_nothing() {
    let home = TempHome::new();
    let a = MockUpstream::start(Mode::Status { status: 503, retry_after: None });
    let b = MockUpstream::start(ok());
    home.add_named_pair(&a.url(), &b.url());
    // A receiver that fails its first try, and one that never answers.
    let hook = MockUpstream::start(Mode::Status { status: 500, retry_after: None });
    let dead = MockUpstream::start(Mode::Hang);
    let url = format!("{}/hooks/T000/B000?token=s3cret", hook.url());
    let proxy = Proxy::start(
        &home,
        &["--cluster", "c", "--verify-interval", "1", "--notify-url", &url, "--notify-url", &dead.url()],
    );
    assert_eq!(post_messages(proxy.addr).status, 200, "served by b");
    assert!(wait_until(Duration::from_secs(5), || hook.hits() >= 1), "no alert tried");
    hook.set_mode(ok());
    // Tried again after its backoff (2 s), and delivered.
    assert!(wait_until(Duration::from_secs(6), || hook.hits() >= 2), "not tried again");
    let got = alerts(&hook);
    let down = got.last().expect("alert");
    assert_eq!(down["event"], "endpoint_down");
    assert_eq!(down["endpoint"], "a");
    assert_eq!(down["cluster"], "c");
    assert!(down["reason"].as_str().is_some_and(|r| r.contains("503")), "{down}");
    assert!(down["text"].as_str().is_some_and(|t| t.contains("endpoint 'a' of cluster 'c' is down")), "{down}");
    {
        let seen = hook.requests();
        let r = &seen[0];
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hooks/T000/B000?token=s3cret"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    // The receiver that never answers delays no request.
    for _ in 0..20 {
        assert_eq!(post_messages(proxy.addr).status, 200);
    }
    // a answers again: its probe restores it, and says so.
    a.set_mode(ok());
    assert!(
        wait_until(Duration::from_secs(8), || events(&hook).contains(&"endpoint_up".to_string())),
        "{:?}",
        events(&hook)
    );
    let up = alerts(&hook).into_iter().find(|x| x["event"] == "endpoint_up").expect("up");
    assert_eq!(up["endpoint"], "a");

    // Nothing usable left: both down, then all_down once.
    a.set_mode(Mode::Status { status: 503, retry_after: None });
    b.set_mode(Mode::Status { status: 503, retry_after: None });
    let _ = post_messages(proxy.addr);
    assert!(
        wait_until(Duration::from_secs(5), || events(&hook).iter().filter(|e| *e == "all_down").count() == 1),
        "{:?}",
        events(&hook)
    );
    let _ = post_messages(proxy.addr);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(&hook).iter().filter(|e| *e == "all_down").count(), 1, "said once");
    let log = proxy.log();
    assert!(!log.contains("s3cret") && !log.contains("T000"), "a webhook's path and query are its secret: {log}");
    let s = proxy.status();
    assert_eq!(s["alerts"]["receivers"], 2);
    assert!(s["alerts"]["delivered"].as_u64().is_some_and(|n| n >= 4), "{}", s["alerts"]);
}

#[test]
fn a_key_reaching_a_budget_or_a_cap_raises_budget_reached() {
    let home = TempHome::new();
    let up = usage_upstream();
    home.write_cluster("c", &[crate::support::Ep::new("a0000001", &up.url(), "sk-upstream-0000000001", 1)]);
    let hook = MockUpstream::start(ok());
    let proxy = Proxy::start(&home, &["--cluster", "c", "--notify-url", &hook.url()]);
    let bob = add_key(&home, "bob", &["--daily-tokens", "10"]);
    let cron = add_key(&home, "cron", &["--rpm", "1"]);
    keys_loaded(&proxy, 2);
    assert_eq!(with_key(&proxy, &bob).status, 200); // 8 tokens
    assert_eq!(with_key(&proxy, &bob).status, 200); // 16: past 10 with this answer
    assert!(wait_until(Duration::from_secs(5), || events(&hook).contains(&"budget_reached".to_string())));
    let a = alerts(&hook).into_iter().find(|x| x["event"] == "budget_reached").expect("alert");
    assert_eq!((a["key"].as_str(), a["limit"].as_str()), (Some("bob"), Some("daily_tokens")));
    assert_eq!(a["text"], "qcc: key 'bob': daily token budget of 10 reached, resets at 00:00 UTC");
    assert_eq!(with_key(&proxy, &bob).status, 429);
    assert_eq!(with_key(&proxy, &cron).status, 200);
    assert_eq!(with_key(&proxy, &cron).status, 429);
    assert_eq!(with_key(&proxy, &cron).status, 429);
    assert!(wait_until(Duration::from_secs(5), || alerts(&hook).iter().any(|x| x["key"] == "cron")));
    std::thread::sleep(Duration::from_millis(300));
    let cron_alerts: Vec<_> = alerts(&hook).into_iter().filter(|x| x["key"] == "cron").collect();
    assert_eq!(cron_alerts.len(), 1, "a cap alerts once an hour, not per refusal");
    assert_eq!(cron_alerts[0]["limit"], "rpm");
    let bob_alerts = alerts(&hook).into_iter().filter(|x| x["key"] == "bob").count();
    assert_eq!(bob_alerts, 1, "a budget alerts when reached, not per refusal");
}

/// A receiver that hangs holds its socket only while it is a receiver: taken out of the config
/// (a reload), its alert in flight is closed at once, not left open for good.
#[test]
fn a_hanging_receiver_taken_out_releases_its_socket() {
    let home = TempHome::new();
    let a = MockUpstream::start(Mode::Status { status: 503, retry_after: None });
    let b = MockUpstream::start(ok());
    home.add_named_pair(&a.url(), &b.url());
    let dead = MockUpstream::start(Mode::Hang);
    let set_receivers = |urls: serde_json::Value| {
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(home.config()).expect("cfg")).expect("json");
        cfg["settings"]["notify_urls"] = urls;
        std::fs::write(home.config(), serde_json::to_vec_pretty(&cfg).expect("json")).expect("write");
    };
    set_receivers(serde_json::json!([dead.url()]));
    let proxy = Proxy::start(&home, &["--cluster", "c", "--verify-interval", "3600"]);
    assert_eq!(post_messages(proxy.addr).status, 200, "served by b");
    assert!(wait_until(Duration::from_secs(5), || dead.hits() >= 1), "the alert is in flight");
    let open = |p: &Proxy| p.status()["connections"]["upstreams"].as_u64().unwrap_or(0);
    let before = open(&proxy);
    set_receivers(serde_json::json!([]));
    let out = home.run(&["proxy", "reload"]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    assert!(wait_until(Duration::from_secs(3), || open(&proxy) < before), "still {} open", open(&proxy));
}
