//! Upgrading from the Python qcc: every file under `tests/fixtures/python/` was written by the
//! real Python package (qcc 0.4.1 and 0.6.1, through `scripts/python-fixtures.sh`), never by hand.
//! qcc must load each one with the Python meaning of every field, serve it, and rewrite it
//! without touching what it does not own.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::mock::{ok, MockUpstream};
use crate::support::*;

const VERSIONS: [&str; 2] = ["0.4.1", "0.6.1"];

fn fixture_homes() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python");
    let mut homes = Vec::new();
    for v in VERSIONS {
        let dir = root.join(v);
        let mut scenarios: Vec<PathBuf> =
            std::fs::read_dir(&dir).expect("fixture dir").map(|e| e.expect("entry").path().join("home")).collect();
        scenarios.sort();
        assert!(scenarios.len() >= 4, "{}: fixtures missing", dir.display());
        homes.extend(scenarios);
    }
    homes
}

/// A test home holding a copy of a fixture: its cache.json as $QCC_CONFIG, its `.qcc/` as
/// $QCC_HOME, its `.claude/` under $HOME.
fn install(fixture: &Path) -> TempHome {
    let home = TempHome::new();
    std::fs::copy(fixture.join(".fastcc/cache.json"), home.config()).expect("copy cache.json");
    std::fs::create_dir_all(home.home()).expect("state dir");
    for (from, to) in [(fixture.join(".qcc"), home.home()), (fixture.join(".claude"), home.path(".claude"))] {
        let Ok(dir) = std::fs::read_dir(&from) else { continue };
        std::fs::create_dir_all(&to).expect("dir");
        for e in dir {
            let e = e.expect("entry");
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
    home
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn name(fixture: &Path) -> String {
    fixture
        .parent()
        .and_then(|p| p.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR"))).ok())
        .unwrap()
        .display()
        .to_string()
}

/// Every fixture loads: `config list --json` lists every profile, a single-endpoint profile is
/// one endpoint at priority 1 whatever its profile-level `priority` class says, and
/// `endpoint list` shows each cluster as the Python package wrote it.
#[test]
fn every_python_file_loads_with_the_python_meaning() {
    for fixture in fixture_homes() {
        let home = install(&fixture);
        let raw = read_json(&home.config());
        let out = home.run(&["config", "list", "--json"]);
        assert!(out.status.success(), "{}: {}", name(&fixture), stderr(&out));
        let listed: Value = serde_json::from_str(&stdout(&out)).expect("json");
        let profiles = raw["profiles"].as_object().expect("profiles");
        assert_eq!(listed["profiles"].as_array().map(Vec::len), Some(profiles.len()), "{}", name(&fixture));
        assert_eq!(listed["default_profile"], raw["settings"]["default_profile"], "{}", name(&fixture));
        for (pname, p) in profiles {
            let out = home.run(&["endpoint", "list", pname, "--json"]);
            assert!(out.status.success(), "{} {pname}: {}", name(&fixture), stderr(&out));
            let eps: Value = serde_json::from_str(&stdout(&out)).expect("json");
            let eps = eps.as_array().expect("list");
            match p.get("endpoints").and_then(Value::as_array).filter(|l| !l.is_empty()) {
                None => {
                    // `qcc add`'s shape: "priority" is the profile class ("primary", ...).
                    assert!(p["priority"].is_string(), "{}: {p}", name(&fixture));
                    assert_eq!(eps.len(), 1, "{} {pname}", name(&fixture));
                    assert_eq!(eps[0]["priority"], 1);
                    assert_eq!(eps[0]["enabled"], true, "the profile's own `enabled` is not the endpoint's");
                    assert_eq!(eps[0]["base_url"].as_str(), p["base_url"].as_str().map(|u| u.trim_end_matches('/')));
                }
                Some(list) => {
                    assert_eq!(eps.len(), list.len());
                    for (got, want) in eps.iter().zip(list) {
                        for field in ["id", "priority", "weight", "max_failures", "timeout", "enabled"] {
                            assert_eq!(got[field], want[field], "{} {pname} {field}", name(&fixture));
                        }
                    }
                }
            }
            let text = stdout(&out);
            assert!(!text.contains("fixtureAAAA") && !text.contains("fixtureCCCC"), "keys are masked: {text}");
        }
        // A Python proxy's pid file (its process long gone) never makes a proxy look alive.
        let out = home.run(&["proxy", "status"]);
        assert_eq!(out.status.code(), Some(3), "{}: {}", name(&fixture), stderr(&out));
    }
}

/// Point every base URL of a config at `mock`, keeping each path prefix.
fn retarget(config: &Path, mock: &str) {
    fn fix(v: &mut Value, mock: &str) {
        match v {
            Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    match (k.as_str(), val.as_str()) {
                        ("base_url", Some(url)) if !url.is_empty() => {
                            let rest = url.split_once("://").map_or("", |(_, r)| r);
                            let path = rest.find('/').map_or("", |i| &rest[i..]);
                            *val = Value::String(format!("{mock}{}", path.trim_end_matches('/')));
                        }
                        _ => fix(val, mock),
                    }
                }
            }
            Value::Array(list) => list.iter_mut().for_each(|x| fix(x, mock)),
            _ => {}
        }
    }
    let mut v = read_json(config);
    fix(&mut v, mock);
    std::fs::write(config, serde_json::to_vec_pretty(&v).expect("json")).expect("write");
}

/// `qcc proxy start` serves every profile of every fixture (base URLs pointed at a mock upstream),
/// with the endpoint's key, the base URL's path prefix, and the Python failure queue's counters.
#[test]
fn proxy_start_serves_every_python_profile() {
    let mock = MockUpstream::start(ok());
    for fixture in fixture_homes() {
        let home = install(&fixture);
        let raw = read_json(&home.config());
        retarget(&home.config(), &mock.url());
        let queue_before = std::fs::read(home.home().join("failure_endpoints.json"))
            .ok()
            .map(|b| serde_json::from_slice::<Value>(&b).expect("python queue file")["stats"]["total_failed"].clone());
        for (pname, p) in raw["profiles"].as_object().expect("profiles") {
            let first = p.get("endpoints").and_then(|l| l.get(0)).unwrap_or(p);
            let key = first["api_key"].as_str().expect("key");
            let prefix = first["base_url"]
                .as_str()
                .and_then(|u| u.split_once("://"))
                .map_or("", |(_, r)| r.find('/').map_or("", |i| r[i..].trim_end_matches('/')));
            let mut proxy = Proxy::start(&home, &["--cluster", pname]);
            let before = mock.hits();
            let r = post_messages(proxy.addr);
            assert_eq!(r.status, 200, "{} {pname}: {}", name(&fixture), r.text());
            assert_eq!(mock.hits(), before + 1);
            {
                let seen = mock.requests();
                let last = seen.last().expect("a request");
                assert_eq!(last.header("x-api-key"), Some(key), "{} {pname}", name(&fixture));
                assert_eq!(last.path, format!("{prefix}/v1/messages"), "{} {pname}", name(&fixture));
            }
            let st = proxy.status();
            if let Some(total_failed) = &queue_before {
                assert_eq!(&st["failure_queue"]["stats"]["total_failed"], total_failed, "counters carried over");
                assert_eq!(st["failure_queue"]["failed_endpoints_count"], 0, "queued ids cleared on start");
            }
            assert_eq!(proxy.terminate().and_then(|s| s.code()), Some(0));
        }
    }
}

/// A rewrite by qcc changes only what it was asked to: `qcc default` leaves the file
/// byte-for-byte as Python wrote it but for that one value; `qcc endpoint add` on a single
/// profile turns it into a cluster and leaves every other profile, setting and field as it was;
/// files qcc does not own (`priority.json`, Claude Code's `settings.json`) are never touched.
#[test]
fn rewrites_keep_what_qcc_does_not_own() {
    for fixture in fixture_homes() {
        let home = install(&fixture);
        let original = std::fs::read_to_string(home.config()).expect("config");
        let raw: Value = serde_json::from_str(&original).expect("json");
        let profiles: Vec<String> = raw["profiles"].as_object().expect("profiles").keys().cloned().collect();
        let untouched: Vec<(PathBuf, Vec<u8>)> =
            [home.home().join("priority.json"), home.path(".claude/settings.json")]
                .into_iter()
                .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
                .collect();

        // `qcc default`: one value changes, every other byte stays.
        let target = profiles.last().expect("a profile");
        let out = home.run(&["default", target]);
        assert!(out.status.success(), "{}: {}", name(&fixture), stderr(&out));
        let old_default = match &raw["settings"]["default_profile"] {
            Value::String(s) => format!("\"{s}\""),
            _ => "null".to_string(),
        };
        let expected = original.replacen(
            &format!("\"default_profile\": {old_default}"),
            &format!("\"default_profile\": \"{target}\""),
            1,
        );
        let rewritten = std::fs::read_to_string(home.config()).expect("config");
        assert_eq!(rewritten.trim_end_matches('\n'), expected, "{}", name(&fixture));

        // `qcc endpoint add` on the first profile.
        let first = &profiles[0];
        let out =
            home.run(&["endpoint", "add", first, "--url", "https://added.example.com", "--key", "sk-added-000000"]);
        assert!(out.status.success(), "{}: {}", name(&fixture), stderr(&out));
        let after = read_json(&home.config());
        assert_eq!(after["user_id"], raw["user_id"]);
        for (k, v) in raw["settings"].as_object().expect("settings") {
            if k != "default_profile" {
                assert_eq!(&after["settings"][k], v, "{} settings.{k}", name(&fixture));
            }
        }
        for p in &profiles[1..] {
            assert_eq!(after["profiles"][p], raw["profiles"][p], "{} profile {p} untouched", name(&fixture));
        }
        let (was, now) = (&raw["profiles"][first], &after["profiles"][first]);
        for (k, v) in was.as_object().expect("profile") {
            if !["endpoints", "base_url", "api_key"].contains(&k.as_str()) {
                assert_eq!(&now[k], v, "{} {first}.{k}", name(&fixture));
            }
        }
        let old_eps = was.get("endpoints").and_then(Value::as_array).cloned().unwrap_or_default();
        let new_eps = now["endpoints"].as_array().expect("now a cluster");
        if old_eps.is_empty() {
            // The single profile's own endpoint comes first, then the added one.
            assert_eq!(new_eps.len(), 2);
            assert_eq!(new_eps[0]["base_url"], was["base_url"]);
            assert_eq!(new_eps[0]["api_key"], was["api_key"]);
        } else {
            assert_eq!(&new_eps[..old_eps.len()], &old_eps[..], "existing endpoints byte-equal as values");
        }
        assert_eq!(new_eps.last().expect("added")["base_url"], "https://added.example.com");
        // The profile still loads, now with one more endpoint.
        let out = home.run(&["endpoint", "list", first, "--json"]);
        assert!(out.status.success());
        for (path, bytes) in untouched {
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "{} must stay untouched", path.display());
        }
    }
}

/// Values qcc cannot use are still one clear line naming the file, the profile and the field —
/// but only for fields qcc reads.
#[test]
fn unusable_values_name_file_profile_and_field() {
    let home = TempHome::new();
    let cases = [
        (r#"{"id": "aaaaaaaa", "base_url": "https://a.example", "api_key": "k", "priority": -1}"#, "\"priority\""),
        (r#"{"id": "aaaaaaaa", "base_url": "https://a.example", "api_key": "k", "weight": "heavy"}"#, "\"weight\""),
    ];
    for (ep, field) in cases {
        let cfg = format!(
            r#"{{"profiles": {{"ok": {{"name": "ok", "priority": "fallback", "base_url": "https://b.example", "api_key": "k"}},
                "bad": {{"name": "bad", "priority": "primary", "endpoints": [{ep}]}}}}}}"#
        );
        std::fs::write(home.config(), cfg).expect("config");
        let out = home.run(&["endpoint", "list", "bad"]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains("cache.json") && err.contains("'bad'") && err.contains(field), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        // The good profile, with its profile-level "priority" class, is unaffected.
        let out = home.run(&["endpoint", "list", "ok", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Fields qcc does not read may hold anything.
    std::fs::write(
        home.config(),
        r#"{"profiles": {"x": {"name": "x", "priority": {"odd": true}, "enabled": "maybe", "last_used": 5,
            "endpoints": [{"id": "aaaaaaaa", "base_url": "https://a.example", "api_key": "k",
                           "health_status": "weird", "metadata": [1, 2], "source_profile": 7}]}}}"#,
    )
    .expect("config");
    let out = home.run(&["endpoint", "list", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The Python qcc's profile priorities (`priority.json` as qcc 0.6.1 wrote it): listed, edited
/// in its shape (unknown fields kept), and what a proxy started without `--cluster` serves.
#[test]
fn priorities_from_the_python_qcc_are_read_edited_and_served() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/0.6.1/cluster/home");
    let home = install(&fixture);
    let list = home.run(&["priority", "list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let v: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(v["active_profile"], "b", "{v}");
    assert_eq!(v["levels"][0], serde_json::json!({"level": "primary", "profile": "a", "active": false}));
    // Pinned by the Python qcc's `switch`: a proxy without --cluster serves b.
    let proxy = Proxy::start(&home, &[]);
    assert_eq!(proxy.status()["cluster"], "b", "{}", proxy.log());
    drop(proxy);
    let mut raw = read_json(&home.home().join("priority.json"));
    raw["from_a_newer_python"] = serde_json::json!([1, 2]);
    std::fs::write(home.home().join("priority.json"), raw.to_string()).expect("write");
    let out = home.run(&["priority", "switch", "work"]);
    assert!(!out.status.success() && stderr(&out).contains("has no priority"), "{}", stderr(&out));
    for args in [
        &["priority", "set", "work", "secondary"][..],
        &["priority", "switch", "work"],
        &["priority", "policy", "--auto-failover", "--cooldown", "60"],
    ] {
        let out = home.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let bad = home.run(&["priority", "set", "nope", "primary"]);
    assert!(!bad.status.success() && stderr(&bad).lines().count() == 1, "{}", stderr(&bad));
    let after = read_json(&home.home().join("priority.json"));
    assert_eq!(after["priority_map"], serde_json::json!({"primary": "a", "secondary": "work", "fallback": "c"}));
    assert_eq!(after["active_profile"], "work");
    assert_eq!(after["policy"]["auto_failover"], true);
    assert_eq!(after["policy"]["cooldown_period"], 60);
    assert_eq!(after["from_a_newer_python"], serde_json::json!([1, 2]), "unknown fields kept");
    let last = after["switch_history"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(
        (last["from"].as_str(), last["to"].as_str(), last["type"].as_str()),
        (Some("b"), Some("work"), Some("manual"))
    );
    let h = home.run(&["priority", "history", "-n", "1"]);
    assert!(stdout(&h).contains("b -> work"), "{}", stdout(&h));
}
