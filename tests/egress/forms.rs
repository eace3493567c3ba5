//! Every entry form of `access_control` (spec §1.6) decides real connections as written, and
//! every malformed entry is refused with 422 naming it. One sandbox, its policy replaced
//! with `PATCH` between checks (which also shows an update applies to the next connection).
//!
//! Names and literal IPs are pinned with `--resolve` to one HTTP server on loopback, on 80
//! (judged as HTTP) and 8080 (spliced as raw TCP): no connection leaves this machine.

use serde_json::{Value, json};

use crate::common::api::Api;
use crate::common::upstream;
use crate::common::{TestServer, image};

const NAMES: [&str; 4] = ["a.test", "b.test", "x.b.test", "c.test"];
const IPS: [&str; 3] = ["192.0.2.1", "192.0.2.2", "198.51.100.7"];

fn set_policy(api: &Api, access_control: Value) {
    let r = api.call(
        "PATCH",
        "/api/v2/sandboxes/boxes/forms",
        Some(json!({"proxy_config": {"access_control": access_control}})),
    );
    assert_eq!(r.status, 200, "{access_control}: {}", r.body);
}

/// Whether `wget` in the sandbox got the upstream's page from `target` (`host[:port]`).
fn reaches(api: &Api, sb: &Value, target: &str) -> bool {
    let r = api.exec(sb, &format!("wget -q -O - http://{target}/ 2>&1"));
    let got = r.stdout == "forms hello";
    assert!(
        got || r.exit_code != 0,
        "{target}: neither the page nor a failure: {r:?}"
    );
    got
}

#[test]
fn every_entry_form_decides_as_written_and_bad_ones_get_422() {
    let http = upstream::http("forms hello", 1000);
    let mut args: Vec<String> = vec!["--allow-private-cidr".into(), "127.0.0.0/8".into()];
    for name in NAMES {
        for port in [80, 8080] {
            args.extend([
                "--resolve".into(),
                format!("{name}:{port}=127.0.0.1:{http}"),
            ]);
        }
    }
    for ip in IPS {
        args.extend(["--resolve".into(), format!("{ip}:80=127.0.0.1:{http}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args, &[]);
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("forms", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("forms", &snapshot, json!({}));

    // (access_control, targets it lets through, targets it stops)
    let cases = [
        (
            json!({}),
            vec!["a.test", "c.test:8080", "192.0.2.1"],
            vec!["192.0.2.1:8080"],
        ),
        (
            json!({"allow_list": ["a.test"]}),
            vec!["a.test", "a.test:8080"],
            vec!["c.test", "x.a.test", "192.0.2.1"],
        ),
        (
            json!({"allow_list": ["a.test:8080"]}),
            vec!["a.test:8080"],
            vec!["a.test"],
        ),
        (
            json!({"allow_list": ["*"]}),
            vec!["a.test", "c.test:8080"],
            vec!["192.0.2.1"],
        ),
        (
            json!({"allow_list": ["*:80"]}),
            vec!["c.test", "x.b.test"],
            vec!["c.test:8080", "192.0.2.1"],
        ),
        (
            json!({"allow_list": ["*.b.test"]}),
            vec!["x.b.test", "x.b.test:8080"],
            vec!["b.test", "a.test"],
        ),
        (
            json!({"allow_list": ["*.b.test:8080"]}),
            vec!["x.b.test:8080"],
            vec!["x.b.test", "b.test:8080"],
        ),
        (
            json!({"allow_list": ["~^[ab]\\.test$"]}),
            vec!["a.test", "b.test:8080"],
            vec!["x.b.test", "c.test"],
        ),
        // Unanchored, as RE2's match is.
        (
            json!({"allow_list": ["~b\\.te"]}),
            vec!["b.test", "x.b.test"],
            vec!["a.test"],
        ),
        (
            json!({"allow_list": ["192.0.2.1"]}),
            vec!["192.0.2.1"],
            vec!["192.0.2.2", "a.test"],
        ),
        (
            json!({"allow_list": ["192.0.2.1:80"]}),
            vec!["192.0.2.1"],
            vec!["192.0.2.2"],
        ),
        (
            json!({"allow_list": ["192.0.2.0/24"]}),
            vec!["192.0.2.1", "192.0.2.2"],
            vec!["198.51.100.7", "a.test"],
        ),
        (
            json!({"deny_list": ["c.test"]}),
            vec!["a.test", "x.b.test:8080", "192.0.2.1"],
            vec!["c.test", "c.test:8080"],
        ),
        (
            json!({"deny_list": ["c.test:8080"]}),
            vec!["c.test"],
            vec!["c.test:8080"],
        ),
        (
            json!({"deny_list": ["*.b.test"]}),
            vec!["b.test", "a.test"],
            vec!["x.b.test"],
        ),
        (
            json!({"deny_list": ["192.0.2.0/24"]}),
            vec!["198.51.100.7", "a.test"],
            vec!["192.0.2.1", "198.51.100.7:8080"],
        ),
        (
            json!({"allow_list": ["a.test", "c.test:8080"], "deny_list": []}),
            vec!["a.test", "c.test:8080"],
            vec!["c.test"],
        ),
    ];
    for (policy, open, closed) in cases {
        set_policy(&api, policy.clone());
        for target in open {
            assert!(reaches(&api, &sb, target), "{policy}: {target} refused");
        }
        for target in closed {
            assert!(
                !reaches(&api, &sb, target),
                "{policy}: {target} let through"
            );
        }
    }

    // IPv6 entries are valid, though a sandbox has no IPv6 way out on this backend.
    set_policy(
        &api,
        json!({"allow_list": ["[::1]", "[2001:db8::1]:22", "2001:db8::/32"]}),
    );

    let before = api.call("GET", "/api/v2/sandboxes/boxes/forms", None).body;
    for bad in [
        "example.com:abc",
        "example.com:99999",
        "example.com:0",
        "10.0.0.0/8:80",
        "10.0.0.0/33",
        "*.",
        "*.*.test",
        "~(unclosed",
        "",
        "a b.test",
        "host_with space",
        "[::1",
        "1.2.3.4:99999",
    ] {
        let r = api.call(
            "PATCH",
            "/api/v2/sandboxes/boxes/forms",
            Some(json!({"proxy_config": {"access_control": {"allow_list": ["a.test", bad]}}})),
        );
        assert_eq!(r.status, 422, "{bad:?}: {}", r.body);
        let text = r.body.to_string();
        assert!(
            text.contains("allow_list[1]"),
            "{bad:?}: the entry is not named: {text}"
        );
    }
    let both = api.call(
        "PATCH",
        "/api/v2/sandboxes/boxes/forms",
        Some(json!({"proxy_config": {"access_control": {
            "allow_list": ["a.test"], "deny_list": ["b.test"]}}})),
    );
    assert_eq!(both.status, 422, "{}", both.body);
    let after = api.call("GET", "/api/v2/sandboxes/boxes/forms", None).body;
    assert_eq!(
        before["proxy_config"], after["proxy_config"],
        "a refused update changed it"
    );
}
