//! A create naming no snapshot boots `system/default:latest`, built once on first use.

use std::time::Duration;

use serde_json::json;

use super::wait_for_status;
use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::image;

#[test]
fn creating_without_a_snapshot_builds_the_default_once() {
    let server = TestServer::start_with(&["--default-image", image::tiny()], &[]);
    let api = Api::new(&server);

    // A zero wait cannot outlast the build this very request starts.
    let impatient = api.call(
        "POST",
        "/api/v2/sandboxes/boxes",
        Some(json!({"name": "impatient", "wait_for_ready": true, "timeout": 0})),
    );
    assert_eq!(impatient.status, 408, "{:?}", impatient.body);
    assert!(
        impatient.body.to_string().contains("built on first use"),
        "{:?}",
        impatient.body
    );
    // Two more creates while it builds: one waits server-side, one answers at once.
    let (waiting, queued) = std::thread::scope(|s| {
        let waiting = s.spawn(|| {
            api.call(
                "POST",
                "/api/v2/sandboxes/boxes",
                Some(json!({"name": "waiting", "wait_for_ready": true, "timeout": 100})),
            )
        });
        let queued = api.call(
            "POST",
            "/api/v2/sandboxes/boxes",
            Some(json!({"name": "queued", "wait_for_ready": false})),
        );
        (waiting.join().unwrap(), queued)
    });
    assert_eq!(queued.status, 201, "{:?}", queued.body);
    assert_eq!(queued.body["status"], "provisioning");
    assert_eq!(waiting.status, 201, "{:?}", waiting.body);
    assert_eq!(waiting.body["status"], "ready");
    let limit = Duration::from_secs(60);
    for name in ["impatient", "queued"] {
        wait_for_status(&api, name, "ready", limit);
    }

    // One build served all three, and it is the tagged default.
    let defaults = api.call(
        "GET",
        "/api/v2/sandboxes/snapshots?name_contains=system/default",
        None,
    );
    let items = defaults.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", defaults.body);
    assert_eq!(items[0]["tags"], json!(["latest"]));
    assert_eq!(waiting.body["snapshot_id"], items[0]["id"]);
    assert_eq!(queued.body["snapshot_id"], items[0]["id"]);
    assert_eq!(
        api.exec(&waiting.body, "cat /etc/hello").stdout,
        "hello from the tiny image\n"
    );

    // Later creates boot the cached snapshot straight away.
    let later = api.call(
        "POST",
        "/api/v2/sandboxes/boxes",
        Some(json!({"name": "later"})),
    );
    assert_eq!(later.status, 201, "{:?}", later.body);
    assert_eq!(later.body["snapshot_id"], items[0]["id"]);
    for name in ["impatient", "waiting", "queued", "later"] {
        api.delete_sandbox(name);
    }
}

/// The real default: Debian packages via mmdebstrap (about a minute or two, needs the
/// Debian mirror). Run it with
/// `cargo test --test main server_features::default_snapshot::debian -- --ignored`.
#[test]
#[ignore]
fn debian_default_snapshot_has_python_and_tools() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/boxes",
        Some(json!({"name": "deb", "wait_for_ready": false})),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sb = wait_for_status(&api, "deb", "ready", Duration::from_secs(900));
    let out = api.exec(
        &sb,
        "python --version && python3 -c 'print(6*7)' && git --version >/dev/null && \
         curl --version >/dev/null && ps -o pid= -p 1 >/dev/null && echo tools-ok",
    );
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(out.stdout.contains("Python 3"), "{out:?}");
    assert!(out.stdout.contains("42\ntools-ok"), "{out:?}");
    api.delete_sandbox("deb");
}
