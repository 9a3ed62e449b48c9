//! HTTPS upstreams: rustls with webpki-roots plus an extra CA; certificate checks always on.

use crate::support::mock::OK_BODY;
use crate::support::tls::{Leaf, TestCa, TlsMock};
use crate::support::{post_messages, wait_until, Ep, Proxy, TempHome};

#[test]
fn https_upstream_trusted_through_ca_file_flag_and_endpoint_field() {
    let ca = TestCa::new();
    let mock = TlsMock::start(ca.server_config(Leaf::Good), OK_BODY);
    let home = TempHome::new();
    let pem = ca.write_pem(&home.root);
    home.write_cluster("c", &[Ep::new("t1000001", &mock.url(), "sk-tls-00000000", 1)]);
    let proxy = Proxy::start(&home, &["--cluster", "c", "--ca-file", pem.to_str().expect("utf8")]);
    for _ in 0..3 {
        let r = post_messages(proxy.addr);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, OK_BODY.as_bytes());
    }
    assert_eq!(mock.hits(), 3);
    drop(proxy);
    // The per-endpoint field works the same.
    let home2 = TempHome::new();
    let pem2 = ca.write_pem(&home2.root);
    home2.write_cluster(
        "c",
        &[Ep::new("t1000002", &mock.url(), "sk-tls-00000000", 1).with(serde_json::json!({"ca_file": pem2}))],
    );
    let proxy = Proxy::start(&home2, &["--cluster", "c"]);
    assert_eq!(post_messages(proxy.addr).status, 200);
}

#[test]
fn untrusted_wrong_host_and_expired_certificates_are_refused_with_the_reason() {
    let ca = TestCa::new();
    let cases = [
        (Leaf::Good, false, "UnknownIssuer"),
        (Leaf::WrongHost, true, "not valid for name"),
        (Leaf::Expired, true, "xpired"),
    ];
    for (leaf, trust, reason) in cases {
        let mock = TlsMock::start(ca.server_config(leaf), OK_BODY);
        let home = TempHome::new();
        let pem = ca.write_pem(&home.root);
        home.write_cluster("c", &[Ep::new("t2000001", &mock.url(), "sk-tls-00000000", 1)]);
        let mut args = vec!["--cluster", "c"];
        let pem_arg = pem.to_string_lossy().into_owned();
        if trust {
            args.extend(["--ca-file", pem_arg.as_str()]);
        }
        let proxy = Proxy::start(&home, &args);
        let r = post_messages(proxy.addr);
        assert_eq!(r.status, 502, "{reason}: {}", r.text());
        assert_eq!(mock.hits(), 0, "{reason}: no request may pass a failed handshake");
        assert!(
            wait_until(std::time::Duration::from_secs(2), || proxy.log().contains(reason)),
            "{reason} not logged:\n{}",
            proxy.log()
        );
        assert_eq!(proxy.status()["failure_queue"]["failed_endpoints_count"], 1);
    }
}

/// `qcc health test` speaks TLS itself (no proxy): a trusted upstream answers, an untrusted
/// one fails with the reason.
#[test]
fn health_test_probes_https_endpoints() {
    let ca = TestCa::new();
    let mock = TlsMock::start(ca.server_config(Leaf::Good), OK_BODY);
    let home = TempHome::new();
    let pem = ca.write_pem(&home.root);
    home.write_cluster(
        "c",
        &[
            Ep::new("t3000001", &mock.url(), "sk-tls-00000000", 1).with(serde_json::json!({"ca_file": pem})),
            Ep::new("t3000002", &mock.url(), "sk-tls-00000000", 2),
        ],
    );
    let o = home.run(&["health", "test", "c", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["ok"], true, "{v}");
    assert_eq!(v[1]["ok"], false);
    assert!(v[1]["reason"].as_str().unwrap_or("").contains("UnknownIssuer"), "{v}");
    assert_eq!(mock.hits(), 1);
}
