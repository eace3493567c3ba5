//! Idle stop, delete after stop and `persistent: false`, on a server whose TTL minute is
//! one second (`LANGSMITH_SERVER_TTL_UNIT_SECONDS=1`), so `60` means one second.

use std::time::Duration;

use serde_json::json;

use super::wait_for_status;
use crate::common::TestServer;
use crate::common::api::Api;
use crate::common::image;
use crate::common::process::wait_for;

const LIMIT: Duration = Duration::from_secs(60);

fn fast_server() -> TestServer {
    TestServer::start_with(&[], &[("LANGSMITH_SERVER_TTL_UNIT_SECONDS", "1")])
}

#[test]
fn an_idle_sandbox_stops_and_starts_again() {
    let server = fast_server();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("idle", image::tiny(), 64 << 20);
    // Never idle-stopped: the control for the one below.
    let busy = api.ready_sandbox("kept", &snap, json!({"idle_ttl_seconds": 0}));
    api.ready_sandbox("idler", &snap, json!({"idle_ttl_seconds": 60}));

    let stopped = wait_for_status(&api, "idler", "stopped", LIMIT);
    assert!(stopped["stopped_at"].is_string(), "{stopped}");
    // Started again with idle stops off, so it stays up for the check below.
    let r = api.call(
        "PATCH",
        "/api/v2/sandboxes/boxes/idler",
        Some(json!({"idle_ttl_seconds": 0})),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/boxes/idler/start",
        Some(json!({})),
    );
    assert!(r.status < 300, "{:?}", r.body);
    let idler = wait_for_status(&api, "idler", "ready", LIMIT);
    assert_eq!(api.exec(&idler, "echo back").stdout, "back\n");

    assert_eq!(api.exec(&busy, "echo alive").stdout, "alive\n");
    let kept = api.call("GET", "/api/v2/sandboxes/boxes/kept", None);
    assert_eq!(kept.body["status"], "ready");
    api.delete_sandbox("kept");
    api.delete_sandbox("idler");
}

/// The sandbox's data-plane URL outlives a stop: a request to it starts the sandbox again
/// and is answered once it runs, with the files it had.
#[test]
fn a_data_plane_request_wakes_an_idle_stopped_sandbox() {
    let server = fast_server();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("wake", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("sleeper", &snap, json!({"idle_ttl_seconds": 60}));
    assert_eq!(api.exec(&sb, "echo kept > /root/file").exit_code, 0);
    wait_for_status(&api, "sleeper", "stopped", LIMIT);

    // The same URL as before the stop; the status is not checked afterwards, since with a
    // one-second idle TTL it may already be stopped again.
    assert_eq!(api.exec(&sb, "cat /root/file").stdout, "kept\n");
    api.delete_sandbox("sleeper");
}

#[test]
fn a_stopped_sandbox_is_deleted_after_its_delay() {
    let server = fast_server();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("doomed", image::tiny(), 64 << 20);
    api.ready_sandbox(
        "doomed",
        &snap,
        json!({"idle_ttl_seconds": 0, "delete_after_stop_seconds": 60}),
    );
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/boxes/doomed/stop",
        Some(json!({})),
    );
    assert_eq!(r.status, 204, "{:?}", r.body);
    wait_for("the stopped sandbox to be deleted", LIMIT, || {
        let r = api.call("GET", "/api/v2/sandboxes/boxes/doomed", None);
        (r.status == 404).then_some(())
    });
    // Its snapshot is free again once the sandbox is gone.
    let del = api.call(
        "DELETE",
        &format!("/api/v2/sandboxes/snapshots/{snap}"),
        None,
    );
    assert_eq!(del.status, 204, "{:?}", del.body);
}

#[test]
fn a_non_persistent_sandbox_forgets_its_files_on_stop() {
    let server = fast_server();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("ephemeral", image::tiny(), 64 << 20);
    for (name, persistent) in [("keeps", true), ("forgets", false)] {
        let sb = api.ready_sandbox(
            name,
            &snap,
            json!({"idle_ttl_seconds": 0, "persistent": persistent}),
        );
        assert_eq!(api.exec(&sb, "echo data > /root/file").exit_code, 0);
        let stop = api.call(
            "POST",
            &format!("/api/v2/sandboxes/boxes/{name}/stop"),
            None,
        );
        assert_eq!(stop.status, 204, "{:?}", stop.body);
        let start = api.call(
            "POST",
            &format!("/api/v2/sandboxes/boxes/{name}/start"),
            None,
        );
        assert!(start.status < 300, "{:?}", start.body);
        let sb = wait_for_status(&api, name, "ready", LIMIT);
        let seen = api.exec(&sb, "cat /root/file 2>/dev/null || echo gone");
        let expected = if persistent { "data\n" } else { "gone\n" };
        assert_eq!(seen.stdout, expected, "{name}");
        // The snapshot's own files are still there either way.
        assert_eq!(
            api.exec(&sb, "cat /etc/hello").stdout,
            "hello from the tiny image\n"
        );
        api.delete_sandbox(name);
    }
}

/// A command running longer than the idle TTL is activity: the sandbox is not stopped under
/// it, and goes idle only once the command is done.
#[test]
fn a_running_command_keeps_a_sandbox_awake() {
    let server = fast_server();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("busy", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("busy", &snap, json!({"idle_ttl_seconds": 0}));
    let out = std::thread::scope(|s| {
        let command = s.spawn(|| api.exec(&sb, "touch /tmp/started; sleep 4; echo finished"));
        wait_for("the command to start", LIMIT, || {
            (api.exec(&sb, "test -e /tmp/started").exit_code == 0).then_some(())
        });
        // Now a one-second idle TTL: four TTLs of work are still running in one request.
        let r = api.call(
            "PATCH",
            "/api/v2/sandboxes/boxes/busy",
            Some(json!({"idle_ttl_seconds": 60})),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        command.join().unwrap()
    });
    assert_eq!(out.stdout, "finished\n", "{out:?}");
    wait_for_status(&api, "busy", "stopped", LIMIT);
    api.delete_sandbox("busy");
}
