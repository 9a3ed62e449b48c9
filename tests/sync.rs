//! Config sync through a folder (issue 32): the Python qcc's cloud-folder file, keys sealed with a
//! passphrase, merging by cluster and endpoint id, half-written files, a running proxy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::mock::{ok, MockUpstream};
use crate::support::{stderr, stdout, wait_until, Proxy, TempHome};

const PASS: &str = "correct horse battery staple";

fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/python")
        .join(version)
        .join("cloud/home/Dropbox/FastCC/fastcc_config.json")
}

/// A synced folder of the test.
fn folder(home: &TempHome) -> PathBuf {
    let d = home.path("Sync/FastCC");
    std::fs::create_dir_all(&d).expect("folder");
    d
}

fn sync(home: &TempHome, args: &[&str], pass: Option<&str>) -> std::process::Output {
    let mut cmd = home.qcc();
    cmd.arg("sync").args(args).env_remove("QCC_SYNC_PASSPHRASE");
    if let Some(p) = pass {
        cmd.env("QCC_SYNC_PASSPHRASE", p);
    }
    cmd.output().expect("run qcc")
}

fn ok_run(o: std::process::Output) -> String {
    assert!(o.status.success(), "stdout {} stderr {}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn endpoints(home: &TempHome, cluster: &str) -> Vec<serde_json::Value> {
    let out = ok_run(home.run(&["endpoint", "list", cluster, "--json"]));
    serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("json")
}

fn config_json(home: &TempHome) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(home.config()).expect("config")).expect("json")
}

#[test]
fn the_python_packages_cloud_file_pulls_into_a_working_config() {
    for version in ["0.4.1", "0.6.1"] {
        let home = TempHome::new();
        let dir = folder(&home);
        std::fs::copy(fixture(version), dir.join("fastcc_config.json")).expect("copy fixture");
        let d = dir.to_str().expect("utf-8");
        let out = ok_run(sync(&home, &["pull", "--dir", d], None));
        assert!(out.contains("4 added"), "{version}: {out}");
        let c = config_json(&home);
        assert_eq!(c["user_id"], "cloud:alice", "{version}");
        assert_eq!(c["settings"]["default_profile"], "team");
        let team = endpoints(&home, "team");
        assert_eq!(team.len(), 2, "{version}");
        let main = team.iter().find(|e| e["base_url"] == "https://api.example.com").expect("the primary");
        assert_eq!(main["priority"], 1);
        assert!(main["api_key"].as_str().is_some_and(|k| k.ends_with("1111")), "keys masked but there");
        assert_eq!(endpoints(&home, "solo").len(), 1, "a single profile is one endpoint");
        // Pulled again: nothing to do.
        assert!(ok_run(sync(&home, &["pull", "--dir", d], None)).contains("already in sync"));
        let status = ok_run(sync(&home, &["status", "--dir", d], None));
        assert!(status.contains("pushed by the Python qcc") && status.contains("in sync"), "{status}");
    }
}

#[test]
fn push_refuses_plain_keys_and_seals_them_with_a_passphrase() {
    let home = TempHome::new();
    home.add_named_pair("https://a.example.com", "https://b.example.com");
    let dir = folder(&home);
    let d = dir.to_str().expect("utf-8");
    let file = dir.join("fastcc_config.json");
    let out = sync(&home, &["push", "--dir", d], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refusing to write API keys in plain text"), "{}", stderr(&out));
    assert!(!file.exists(), "nothing written");

    ok_run(sync(&home, &["push", "--dir", d], Some(PASS)));
    let text = std::fs::read_to_string(&file).expect("pushed");
    assert!(!text.contains("sk-a-0000000000") && !text.contains("sk-b-0000000000"), "keys sealed");
    assert!(text.contains("https://a.example.com") && text.contains("\"priority\": 2"), "the rest readable");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["sync_source"], "fastcc");
    assert!(v["last_sync"].is_string());
    assert_eq!(v["qcc_sync"]["encryption"]["cipher"], "AES-256-GCM");
    assert!(v["qcc_sync"]["encryption"]["iterations"].as_u64().is_some_and(|n| n >= 600_000));
    assert!(v["profiles"]["c"]["endpoints"][0]["api_key"].as_str().is_some_and(|k| k.starts_with("enc:v1:")));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);

    // A passphrase from a file works the same; --plaintext writes what the Python qcc reads.
    let pf = home.path("pass.txt");
    std::fs::write(&pf, format!("{PASS}\n")).expect("write");
    ok_run(sync(&home, &["push", "--dir", d, "--passphrase-file", pf.to_str().expect("utf-8")], None));
    ok_run(sync(&home, &["push", "--dir", d, "--plaintext"], None));
    assert!(std::fs::read_to_string(&file).expect("pushed").contains("sk-a-0000000000"));
}

#[test]
fn a_wrong_passphrase_a_tampered_or_newer_file_change_nothing() {
    let a = TempHome::new();
    a.add_named_pair("https://a.example.com", "https://b.example.com");
    let dir = folder(&a);
    let d = dir.to_str().expect("utf-8");
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    let file = dir.join("fastcc_config.json");
    let pushed = std::fs::read_to_string(&file).expect("pushed");

    let b = TempHome::new();
    b.add_named_pair("https://mine.example.com", "https://b.example.com");
    let before = std::fs::read(b.config()).expect("config");
    let check = |out: std::process::Output, says: &str| {
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert_eq!(std::fs::read(b.config()).expect("config"), before, "the local config is untouched");
    };
    check(sync(&b, &["pull", "--dir", d], Some("wrong")), "wrong passphrase");
    check(sync(&b, &["pull", "--dir", d], None), "QCC_SYNC_PASSPHRASE");
    // One sealed key changed: found, named, nothing written.
    let v: serde_json::Value = serde_json::from_str(&pushed).expect("json");
    let sealed = v["profiles"]["c"]["endpoints"][1]["api_key"].as_str().expect("sealed").to_string();
    let flip = if sealed.ends_with('0') { "1" } else { "0" };
    let tampered = pushed.replace(&sealed, &format!("{}{flip}", &sealed[..sealed.len() - 1]));
    std::fs::write(&file, &tampered).expect("write");
    check(sync(&b, &["pull", "--dir", d], Some(PASS)), "signature does not match");
    let newer = pushed.replace("\"format\": 1", "\"format\": 99");
    std::fs::write(&file, &newer).expect("write");
    check(sync(&b, &["pull", "--dir", d], Some(PASS)), "newer qcc");
    std::fs::write(&file, b"[1, 2]").expect("write");
    check(sync(&b, &["pull", "--dir", d], Some(PASS)), "not a JSON object");
    let missing = a.path("nowhere");
    let out = sync(&b, &["push", "--dir", missing.to_str().expect("utf-8")], Some(PASS));
    assert!(!out.status.success() && stderr(&out).contains("no such folder"), "{}", stderr(&out));
}

#[test]
fn two_machines_merge_by_endpoint_and_a_conflict_is_reported() {
    let (a, b) = (TempHome::new(), TempHome::new());
    a.add_named_pair("https://a.example.com", "https://b.example.com");
    let dir = folder(&a);
    let d = dir.to_str().expect("utf-8");
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    let out = ok_run(sync(&b, &["pull", "--dir", d], Some(PASS)));
    assert!(out.contains("2 added"), "{out}");
    assert_eq!(endpoints(&b, "c").len(), 2);
    assert!(endpoints(&b, "c")[0]["api_key"].as_str().is_some_and(|k| k.ends_with("0000")), "keys came over");

    // B changes endpoint b and adds one; A changes endpoint a meanwhile.
    ok_run(b.run(&["endpoint", "set", "c", "b", "--priority", "5"]));
    ok_run(b.run(&[
        "endpoint",
        "add",
        "c",
        "--url",
        "https://new.example.com",
        "--key",
        "sk-new-00000000",
        "--name",
        "n",
    ]));
    ok_run(sync(&b, &["push", "--dir", d], Some(PASS)));
    ok_run(a.run(&["endpoint", "set", "c", "a", "--weight", "7"]));
    let out = ok_run(sync(&a, &["pull", "--dir", d], Some(PASS)));
    assert!(out.contains("1 added, 1 updated, 0 removed") && !out.contains("conflict"), "{out}");
    let eps = endpoints(&a, "c");
    let by = |n: &str| eps.iter().find(|e| e["name"] == n).cloned().expect("endpoint");
    assert_eq!(by("a")["weight"], 7, "A's own change kept");
    assert_eq!(by("b")["priority"], 5, "B's change taken");
    assert_eq!(by("n")["base_url"], "https://new.example.com");
    let backups = std::fs::read_dir(a.root.clone()).expect("dir").filter_map(Result::ok);
    assert!(backups.into_iter().any(|e| e.file_name().to_string_lossy().starts_with("cache.json.bak-")), "a backup");

    // Both change endpoint b (both push: last writer wins); the other's pull reports it.
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    ok_run(sync(&b, &["pull", "--dir", d], Some(PASS)));
    ok_run(a.run(&["endpoint", "set", "c", "b", "--priority", "8"]));
    ok_run(b.run(&["endpoint", "set", "c", "b", "--priority", "9"]));
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    let out = sync(&b, &["push", "--dir", d], Some(PASS));
    assert!(stderr(&out).contains("has not pulled"), "{}", stderr(&out));
    let out = ok_run(sync(&a, &["pull", "--dir", d, "--theirs"], Some(PASS)));
    assert!(out.contains("had not seen this machine's push"), "{out}");
    assert!(out.contains("conflict: c/") && out.contains("changed on both sides") && out.contains("--theirs"), "{out}");
    let eps = endpoints(&a, "c");
    assert_eq!(eps.iter().find(|e| e["name"] == "b").expect("b")["priority"], 9);
    // Removed on one machine: removed on the other at its next pull.
    ok_run(a.run(&["endpoint", "remove", "c", "n"]));
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    let out = ok_run(sync(&b, &["pull", "--dir", d], Some(PASS)));
    assert!(out.contains("1 removed"), "{out}");
    assert_eq!(endpoints(&b, "c").len(), 2);
}

#[test]
fn a_half_written_folder_file_is_read_again_never_taken_as_empty() {
    let a = TempHome::new();
    a.add_named_pair("https://a.example.com", "https://b.example.com");
    let dir = folder(&a);
    let d = dir.to_str().expect("utf-8").to_string();
    ok_run(sync(&a, &["push", "--dir", &d, "--plaintext"], None));
    let file = dir.join("fastcc_config.json");
    let whole = std::fs::read(&file).expect("pushed");
    // The sync program is mid-write: half the file now, all of it a moment later.
    std::fs::write(&file, &whole[..whole.len() / 2]).expect("write half");
    let b = TempHome::new();
    let (f, w) = (file.clone(), whole.clone());
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        std::fs::write(&f, &w).expect("write whole");
    });
    let out = ok_run(sync(&b, &["pull", "--dir", &d], None));
    writer.join().expect("writer");
    assert!(out.contains("2 added"), "{out}");
    // Still half after every read: an error, and nothing taken.
    std::fs::write(&file, &whole[..whole.len() / 2]).expect("write half");
    let c = TempHome::new();
    c.add_named_pair("https://mine.example.com", "https://b.example.com");
    let before = std::fs::read(c.config()).expect("config");
    let out = sync(&c, &["pull", "--dir", &d], None);
    assert!(!out.status.success() && stderr(&out).contains("not complete JSON"), "{}", stderr(&out));
    assert_eq!(std::fs::read(c.config()).expect("config"), before);
}

#[test]
fn a_running_proxy_picks_up_what_a_pull_brought() {
    let (a, b) = (TempHome::new(), TempHome::new());
    let (up1, up2) = (MockUpstream::start(ok()), MockUpstream::start(ok()));
    a.add_named_pair(&up1.url(), &up2.url());
    // B made its own endpoints of the same names before it ever synced: the folder's are renamed.
    b.add_named_pair(&up1.url(), &up2.url());
    let dir = folder(&a);
    let d = dir.to_str().expect("utf-8");
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    let out = ok_run(sync(&b, &["pull", "--dir", d], Some(PASS)));
    assert!(out.contains("renamed: c/") && out.contains("named 'a-2' here"), "{out}");
    let proxy = Proxy::start(&b, &["--cluster", "c"]);
    let up3 = MockUpstream::start(ok());
    ok_run(a.run(&["endpoint", "add", "c", "--url", &up3.url(), "--key", "sk-c-0000000000", "--name", "third"]));
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    let out = sync(&b, &["pull", "--dir", d], Some(PASS));
    assert!(stderr(&out).contains("applied to the running proxy"), "{}", stderr(&out));
    assert!(wait_until(Duration::from_secs(5), || {
        proxy.status()["endpoints"].as_array().is_some_and(|e| e.iter().any(|x| x["name"] == "third"))
    }));
}

/// Whoever can write the synced folder, without the passphrase, can change nothing that is
/// pulled: an endpoint whose key is sealed re-pointed to their URL, a plain client-key list laid
/// over the sealed one, the encryption stripped. Each is one line, nothing written. A client key
/// with admin rights comes in only with --admin-keys.
#[test]
fn a_folder_written_without_the_passphrase_is_refused_whole() {
    let a = TempHome::new();
    a.add_named_pair("https://a.example.com", "https://b.example.com");
    let ops = crate::keys::add_key(&a, "ops", &["--admin"]);
    let dir = folder(&a);
    let d = dir.to_str().expect("utf-8");
    ok_run(sync(&a, &["push", "--dir", d], Some(PASS)));
    let file = dir.join("fastcc_config.json");
    let pushed = std::fs::read_to_string(&file).expect("pushed");
    assert!(!pushed.contains(&ops[4..]), "the client keys are sealed");

    let b = TempHome::new();
    b.add_named_pair("https://mine.example.com", "https://b.example.com");
    let check = |args: &[&str], says: &str| {
        let before = std::fs::read(b.config()).expect("config");
        let keys_before = std::fs::read(b.home().join("keys.json")).ok();
        let out = sync(&b, args, Some(PASS));
        assert!(!out.status.success(), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert_eq!(std::fs::read(b.config()).expect("config"), before, "the config is untouched");
        assert_eq!(std::fs::read(b.home().join("keys.json")).ok(), keys_before, "the keys are untouched");
    };
    // An admin key in a genuine push: only with --admin-keys.
    check(&["pull", "--dir", d], "--admin-keys");
    let out = ok_run(sync(&b, &["pull", "--dir", d, "--admin-keys"], Some(PASS)));
    assert!(out.contains("client keys updated"), "{out}");

    // Re-pointed: endpoint b's URL changed, its sealed key left as it was.
    let v: serde_json::Value = serde_json::from_str(&pushed).expect("json");
    let mut evil = v.clone();
    evil["profiles"]["c"]["endpoints"][1]["base_url"] = serde_json::json!("https://evil.example");
    std::fs::write(&file, serde_json::to_vec_pretty(&evil).expect("json")).expect("write");
    check(&["pull", "--dir", d], "signature does not match");
    // A plain client-key list laid over the sealed one.
    let mut evil = v.clone();
    evil["qcc_client_keys"] = serde_json::json!([{"name": "mallory", "sha256": "00".repeat(32),
        "prefix": "qcc-mall", "admin": true, "created_at": "2026-12-01T00:00:00"}]);
    std::fs::write(&file, serde_json::to_vec_pretty(&evil).expect("json")).expect("write");
    check(&["pull", "--dir", d, "--admin-keys"], "signature does not match");
    // The signature taken away with the change.
    evil["qcc_sync"]["encryption"].as_object_mut().expect("encryption").remove("mac");
    std::fs::write(&file, serde_json::to_vec_pretty(&evil).expect("json")).expect("write");
    check(&["pull", "--dir", d, "--admin-keys"], "no signature");
    // The encryption stripped: a plain document, once this machine has pulled an encrypted one.
    let mut plain = v.clone();
    plain["qcc_sync"]["encryption"] = serde_json::Value::Null;
    plain.as_object_mut().expect("doc").remove("qcc_client_keys");
    fn unseal(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.starts_with("enc:v1:") => *s = "sk-attacker-0000000".into(),
            serde_json::Value::Object(m) => m.values_mut().for_each(unseal),
            serde_json::Value::Array(a) => a.iter_mut().for_each(unseal),
            _ => {}
        }
    }
    unseal(&mut plain);
    std::fs::write(&file, serde_json::to_vec_pretty(&plain).expect("json")).expect("write");
    check(&["pull", "--dir", d], "not encrypted");
    // Reordered and reindented by a sync program, unchanged: still pulls.
    let reordered: serde_json::Value = serde_json::from_str(&pushed).expect("json");
    let mut text = serde_json::to_string(&reordered).expect("json");
    text.push('\n');
    std::fs::write(&file, text).expect("write");
    ok_run(sync(&b, &["pull", "--dir", d], Some(PASS)));
}
