//! Egress through the host-side proxy, from inside a sandbox, against upstreams on this
//! machine's loopback (admitted with `--allow-private-cidr 127.0.0.0/8` and pinned with
//! `--resolve`). Nothing here sends traffic anywhere else.

use std::time::Duration;

use serde_json::json;

use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::upstream;
use crate::common::{TestServer, image};

mod auth_proxy;
mod debian;
mod forms;
mod forward_proxy;
mod providers;

#[test]
fn http_by_name_follows_access_control_its_updates_and_restarts() {
    let port = upstream::http("hello from upstream", 16);
    let pin_allowed = format!("allowed.test:80=127.0.0.1:{port}");
    let pin_other = format!("other.test:80=127.0.0.1:{port}");
    let mut server = TestServer::start_with(
        &[
            "--allow-private-cidr",
            "127.0.0.0/8",
            "--resolve",
            &pin_allowed,
            "--resolve",
            &pin_other,
        ],
        &[],
    );
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("tiny", image::tiny(), 64 << 20);
    // other.test resolves (443 could be allowed) but its port 80 is not.
    let allow = json!({"access_control": {"allow_list": ["allowed.test:80", "other.test:443"]}});
    let sb = api.ready_sandbox("egress", &snapshot, json!({"proxy_config": allow}));

    let got = api.exec(&sb, "wget -q -O - http://allowed.test/");
    assert_eq!(got.exit_code, 0, "{got:?}");
    assert_eq!(got.stdout, "hello from upstream");

    let refused = api.exec(
        &sb,
        "wget -q -O - http://other.test/ 2>&1; echo \" exit=$?\"",
    );
    assert!(
        refused.stdout.contains("403 Forbidden") && refused.stdout.contains("exit=1"),
        "{refused:?}"
    );
    // Every name resolves, to an address of the sandbox's pool: the refusal comes on the
    // connection, where it is visible.
    let unknown = api.exec(&sb, "nslookup nowhere.test 127.0.0.53");
    assert_eq!(unknown.exit_code, 0, "{unknown:?}");
    assert!(unknown.stdout.contains("198.18."), "{unknown:?}");

    // The update applies to the next connection of the running sandbox.
    let r = api.call(
        "PATCH",
        "/api/v2/sandboxes/boxes/egress",
        Some(json!({"proxy_config": {"access_control": {"allow_list": ["other.test"]}}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = api.exec(&sb, "wget -q -O - http://other.test/");
    assert_eq!(got.exit_code, 0, "{got:?}");
    let log = api.call("GET", "/api/v2/sandboxes/boxes/egress/egress-log", None);
    assert_eq!(log.status, 200, "{}", log.body);
    let decisions: Vec<(String, String)> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["host"].as_str().unwrap().to_string(),
                e["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        decisions.contains(&("other.test".into(), "denied".into())),
        "{decisions:?}"
    );

    // The way out comes back with the sandbox after a stop and a start, and after the
    // server itself crashed and came back (it re-opens the sockets in the namespace).
    let r = api.call("POST", "/api/v2/sandboxes/boxes/egress/stop", None);
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api.call("POST", "/api/v2/sandboxes/boxes/egress/start", None);
    assert!(r.status == 202 || r.status == 200, "{}", r.body);
    let sb = wait_for("egress to start again", Duration::from_secs(60), || {
        let r = api.call("GET", "/api/v2/sandboxes/boxes/egress", None);
        (r.body["status"] == "ready").then_some(r.body)
    });
    let got = api.exec(&sb, "wget -q -O - http://other.test/");
    assert_eq!(
        got.stdout, "hello from upstream",
        "after a restart: {got:?}"
    );
    server.crash_and_restart();
    let got = api.exec(&sb, "wget -q -O - http://other.test/");
    assert_eq!(
        got.stdout, "hello from upstream",
        "after a server crash: {got:?}"
    );
    let refused = api.exec(&sb, "wget -q -O - http://allowed.test/ 2>&1");
    assert!(
        refused.stdout.contains("403"),
        "the policy was lost: {refused:?}"
    );
    api.delete_sandbox("egress");
}
