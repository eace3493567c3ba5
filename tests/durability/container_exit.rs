//! A sandbox whose container ends on its own (here: a process in it asks PID 1 to shut
//! down) is reported `failed` with why, data-plane requests to it say so, `start` brings it
//! back with its files, and a neighbour is untouched.

use std::time::Duration;

use serde_json::json;

use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::server::API_KEY;
use crate::common::{TestServer, image};

#[test]
fn a_sandbox_whose_container_ends_is_reported_failed_and_starts_again() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("ends", image::tiny(), 64 << 20);
    let neighbour = api.ready_sandbox("neighbour", &snapshot, json!({}));
    let sb = api.ready_sandbox("ender", &snapshot, json!({}));
    assert_eq!(api.exec(&sb, "echo kept > /kept").exit_code, 0);

    // The exec's own answer may be cut off by the shutdown it asks for: it is not checked.
    let dp = sb["dataplane_url"].as_str().unwrap();
    let _ = api
        .raw()
        .post(format!("{dp}/execute"))
        .header("X-Api-Key", API_KEY)
        .json(&json!({"command": "kill -TERM 1", "shell": "/bin/sh", "timeout": 10}))
        .send();
    let failed = wait_for("the end to be noticed", Duration::from_secs(30), || {
        let r = api.call("GET", "/api/v2/sandboxes/boxes/ender", None);
        (r.body["status"] == "failed").then_some(r.body)
    });
    let why = failed["status_message"].as_str().unwrap_or_default();
    assert!(why.contains("exited on its own"), "{failed}");

    // A data-plane request is told why, rather than failing to reach an agent.
    let r = api
        .raw()
        .post(format!("{dp}/execute"))
        .header("X-Api-Key", API_KEY)
        .json(&json!({"command": "true", "shell": "/bin/sh"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().unwrap();
    assert!(
        text.contains("is failed, not ready") && text.contains("exited on its own"),
        "{text}"
    );

    assert_eq!(api.exec(&neighbour, "echo fine").stdout, "fine\n");
    let r = api.call("POST", "/api/v2/sandboxes/boxes/ender/start", None);
    assert!(r.status == 200 || r.status == 202, "{}", r.body);
    let sb = wait_for(
        "the sandbox to start again",
        Duration::from_secs(60),
        || {
            let r = api.call("GET", "/api/v2/sandboxes/boxes/ender", None);
            (r.body["status"] == "ready").then_some(r.body)
        },
    );
    assert_eq!(api.exec(&sb, "cat /kept").stdout, "kept\n");
    api.delete_sandbox("ender");
    api.delete_sandbox("neighbour");
}

/// A boot that fails (here: a snapshot image damaged on the host) is recorded `failed` with
/// the host tool's complaint, but no answer names a host path or a host process.
#[test]
fn a_failed_boot_says_why_without_host_paths() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("damaged", image::tiny(), 64 << 20);
    let image = server
        .state_dir
        .join("snapshots")
        .join(&snapshot)
        .join("rootfs.ext4");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/boxes",
        Some(json!({"name": "damaged", "snapshot_id": snapshot})),
    );
    assert!(r.status >= 400, "{}", r.body);
    let sb = api
        .call("GET", "/api/v2/sandboxes/boxes/damaged", None)
        .body;
    assert_eq!(sb["status"], "failed", "{sb}");
    let state_dir = server.state_dir.canonicalize().unwrap();
    for shown in [r.body.to_string(), sb.to_string()] {
        assert!(shown.contains("mount"), "{shown}");
        assert!(shown.contains("STATE_DIR/"), "{shown}");
        assert!(
            !shown.contains(&*state_dir.to_string_lossy())
                && !shown.contains(&*server.state_dir.to_string_lossy()),
            "{shown}"
        );
    }
    api.delete_sandbox("damaged");
}
