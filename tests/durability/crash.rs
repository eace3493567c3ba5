//! SIGKILL of the server mid-build, mid-create, mid-command, mid-delete, mid-stop, mid-start
//! and mid-capture, then a restart on the same state directory.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::{MIB, settled};
use crate::common::api::Api;
use crate::common::cli::Cli;
use crate::common::leftovers::assert_no_leftovers;
use crate::common::process::{run_ok, wait_for};
use crate::common::server::{API_KEY, reap_leftovers, runc_containers};
use crate::common::{TestServer, image};

#[test]
fn a_build_interrupted_by_a_crash_ends_with_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/snapshots",
        Some(json!({"name": "cut", "docker_image": image::tiny(), "fs_capacity_bytes": 64 * MIB})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    server.kill();

    let server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let snap = wait_for("the build's verdict", Duration::from_secs(120), || {
        let s = api.call("GET", &format!("/api/v2/sandboxes/snapshots/{id}"), None);
        assert_eq!(s.status, 200, "the snapshot was lost: {}", s.body);
        (s.body["status"] != "building").then_some(s.body)
    });
    match snap["status"].as_str() {
        Some("ready") => {}
        Some("failed") => assert!(
            !snap["status_message"].as_str().unwrap_or("").is_empty(),
            "a failed build must say why: {snap}"
        ),
        other => panic!("unexpected snapshot status {other:?}: {snap}"),
    }
    // The name is usable again: a new build succeeds.
    api.ready_snapshot("cut", image::tiny(), 64 * MIB);
    drop(server);
    assert_no_leftovers(&state);
}

/// Moments of a boot at which the server is killed, each observed on the host.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Right after the 201.
    Acknowledged,
    /// Once the sandbox's writable image exists (mounted or being mounted).
    UpperImageMade,
    /// Once runc knows the container (the agent may not answer yet).
    ContainerCreated,
}

fn reached(state: &Path, id: &str, moment: Moment) -> bool {
    match moment {
        Moment::Acknowledged => true,
        Moment::UpperImageMade => state
            .join(format!("runtime/sandboxes/{id}/upper.ext4"))
            .exists(),
        Moment::ContainerCreated => runc_containers(state).iter().any(|c| c.contains(id)),
    }
}

#[test]
fn a_create_interrupted_by_a_crash_is_never_stuck_provisioning() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let snap = {
        let server = TestServer::start_in(&state);
        Api::new(&server).ready_snapshot("half", image::tiny(), 64 * MIB)
    };
    let moments = [
        Moment::Acknowledged,
        Moment::UpperImageMade,
        Moment::ContainerCreated,
    ];
    for (n, moment) in moments.into_iter().enumerate() {
        let name = format!("half-{n}");
        let mut server = TestServer::start_in(&state);
        let api = Api::new(&server);
        let r = api.call(
            "POST",
            "/api/v2/sandboxes/boxes",
            Some(json!({"name": name, "snapshot_id": snap, "wait_for_ready": false})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        wait_for(&format!("{moment:?}"), Duration::from_secs(60), || {
            reached(&state, &id, moment).then_some(())
        });
        server.kill();

        let server = TestServer::start_in(&state);
        let api = Api::new(&server);
        let sb = settled(&api, &name);
        match sb["status"].as_str() {
            Some("ready") => assert_eq!(api.exec(&sb, "echo up").stdout, "up\n"),
            Some("failed" | "stopped") => assert!(
                !sb["status_message"].as_str().unwrap_or("").is_empty(),
                "killed at {moment:?}: {sb}"
            ),
            other => panic!("killed at {moment:?}: unexpected status {other:?}: {sb}"),
        }
        api.delete_sandbox(&name);
    }
    assert_no_leftovers(&state);
    reap_leftovers(&state);
}

#[test]
fn a_crash_during_a_command_keeps_sandboxes_and_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let snap = api.ready_snapshot("busy", image::tiny(), 64 * MIB);
    let busy = api.ready_sandbox("busy", &snap, json!({}));
    let parked = api.ready_sandbox("parked", &snap, json!({}));
    assert_eq!(api.exec(&parked, "echo kept > /root/file").exit_code, 0);
    let r = api.call("POST", "/api/v2/sandboxes/boxes/parked/stop", None);
    assert_eq!(r.status, 204, "{}", r.body);

    // A long command in flight through the data plane when the server dies.
    let dp = busy["dataplane_url"].as_str().unwrap().to_string();
    let http = api.raw().clone();
    let in_flight = std::thread::spawn(move || {
        http.post(format!("{dp}/execute"))
            .header("X-Api-Key", API_KEY)
            .json(&json!({"command": "sleep 30", "shell": "/bin/sh", "timeout": 60}))
            .send()
    });
    wait_for("the long command to run", Duration::from_secs(30), || {
        let ps = api.exec(&busy, "ps -o args");
        ps.stdout
            .lines()
            .any(|l| l.trim() == "sleep 30")
            .then_some(())
    });
    server.kill();
    let answer = in_flight.join().unwrap();
    assert!(
        answer.is_err() || !answer.unwrap().status().is_success(),
        "the command cannot have finished: the server died"
    );

    let server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let r = api.call("GET", "/api/v2/sandboxes/boxes/busy", None);
    assert_eq!(r.body["status"], "ready", "{}", r.body);
    assert_eq!(api.exec(&r.body, "echo again").stdout, "again\n");
    let r = api.call("GET", "/api/v2/sandboxes/boxes/parked", None);
    assert_eq!(r.body["status"], "stopped", "{}", r.body);
    let r = api.call("POST", "/api/v2/sandboxes/boxes/parked/start", None);
    assert!(r.status == 202 || r.status == 200, "{}", r.body);
    let parked = wait_for("parked to start", Duration::from_secs(60), || {
        let r = api.call("GET", "/api/v2/sandboxes/boxes/parked", None);
        (r.body["status"] == "ready").then_some(r.body)
    });
    assert_eq!(api.exec(&parked, "cat /root/file").stdout, "kept\n");
    let r = api.call("GET", &format!("/api/v2/sandboxes/snapshots/{snap}"), None);
    assert_eq!(r.body["status"], "ready", "{}", r.body);

    api.delete_sandbox("busy");
    api.delete_sandbox("parked");
    drop(server);
    assert_no_leftovers(&state);
    reap_leftovers(&state);
}

#[test]
fn a_delete_interrupted_by_a_crash_is_finished_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let snap = api.ready_snapshot("gone", image::tiny(), 64 * MIB);
    let gone = api.ready_sandbox("gone", &snap, json!({}));
    let kept = api.ready_sandbox("kept", &snap, json!({}));
    // DELETE answers once `deleting` is recorded: the crash comes before (or during) the
    // teardown.
    let r = api.call("DELETE", "/api/v2/sandboxes/boxes/gone", None);
    assert_eq!(r.status, 204, "{}", r.body);
    server.kill();

    let server = TestServer::start_in(&state);
    let api = Api::new(&server);
    api.wait_until_torn_down(gone["id"].as_str().unwrap());
    let r = api.call("GET", "/api/v2/sandboxes/boxes/kept", None);
    assert_eq!(r.body["id"], kept["id"], "{}", r.body);
    assert_eq!(api.exec(&r.body, "echo still").stdout, "still\n");
    api.delete_sandbox("kept");
    drop(server);
    assert_no_leftovers(&state);
    reap_leftovers(&state);
}

/// One server per state directory: a second is refused with a message that says what to do,
/// and the first serves on.
#[test]
fn a_second_server_on_the_same_state_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = TestServer::start_in(&state);
    let second = Cli::bare()
        .args(&["server", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .run();
    assert_ne!(second.code, 0);
    let said = format!("{}{}", second.stdout, second.stderr);
    assert!(
        said.contains("another langsmith server is already using")
            && said.contains("pass a different --state-dir"),
        "{said}"
    );
    let r = Api::new(&server).call("GET", "/api/v2/sandboxes/boxes", None);
    assert_eq!(r.status, 200);
}

/// Whether runc (under `state`) lists a container for sandbox `id`.
fn has_container(state: &Path, id: &str) -> bool {
    reached(state, id, Moment::ContainerCreated)
}

/// SIGKILL during a stop (once its container is gone), a start (once its container exists)
/// and a capture (once the snapshot image is being written): after a restart every record
/// tells the truth, the sandbox's files are intact, it runs again, and deleting everything
/// leaves nothing behind.
#[test]
fn a_stop_start_or_capture_interrupted_by_a_crash_ends_truthfully() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (snap, id) = {
        let server = TestServer::start_in(&state);
        let api = Api::new(&server);
        let snap = api.ready_snapshot("cycle", image::tiny(), 64 * MIB);
        let sb = api.ready_sandbox("cycle", &snap, json!({}));
        assert_eq!(api.exec(&sb, "echo kept > /root/file").exit_code, 0);
        (snap, sb["id"].as_str().unwrap().to_string())
    };
    let restart_and_check = |after: &str| {
        let server = TestServer::start_in(&state);
        let api = Api::new(&server);
        let sb = settled(&api, "cycle");
        let sb = match sb["status"].as_str() {
            Some("ready") => sb,
            Some("stopped" | "failed") => {
                let r = api.call("POST", "/api/v2/sandboxes/boxes/cycle/start", None);
                assert!(r.status == 200 || r.status == 202, "{after}: {}", r.body);
                settled(&api, "cycle")
            }
            other => panic!("{after}: unexpected status {other:?}: {sb}"),
        };
        assert_eq!(sb["status"], "ready", "{after}: {sb}");
        assert_eq!(api.exec(&sb, "cat /root/file").stdout, "kept\n", "{after}");
        server
    };

    // A stop, killed once the container is gone but perhaps before the record says so.
    let mut server = restart_and_check("a restart");
    let http = Api::new(&server).raw().clone();
    let url = server.url.clone();
    let stopping = std::thread::spawn(move || {
        http.post(format!("{url}/api/v2/sandboxes/boxes/cycle/stop"))
            .header("X-Api-Key", API_KEY)
            .send()
    });
    wait_for("the container to go", Duration::from_secs(60), || {
        (!has_container(&state, &id)).then_some(())
    });
    server.kill();
    let _ = stopping.join();

    // A start, killed once its container exists.
    let mut server = restart_and_check("a stop cut short");
    let api = Api::new(&server);
    let r = api.call("POST", "/api/v2/sandboxes/boxes/cycle/stop", None);
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api.call("POST", "/api/v2/sandboxes/boxes/cycle/start", None);
    assert!(r.status == 200 || r.status == 202, "{}", r.body);
    wait_for("the container to exist", Duration::from_secs(60), || {
        has_container(&state, &id).then_some(())
    });
    server.kill();

    // A capture, killed while it writes the snapshot image (the sandbox is frozen then).
    let mut server = restart_and_check("a start cut short");
    let api = Api::new(&server);
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/boxes/cycle/snapshot",
        Some(json!({"name": "cut-capture"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let captured = r.body["id"].as_str().unwrap().to_string();
    let image = state.join(format!("snapshots/{captured}/rootfs.ext4"));
    wait_for("the capture to write", Duration::from_secs(60), || {
        let r = api.call(
            "GET",
            &format!("/api/v2/sandboxes/snapshots/{captured}"),
            None,
        );
        (image.exists() || r.body["status"] != "building").then_some(())
    });
    server.kill();

    let server = restart_and_check("a capture cut short");
    let api = Api::new(&server);
    let r = api.call(
        "GET",
        &format!("/api/v2/sandboxes/snapshots/{captured}"),
        None,
    );
    match r.body["status"].as_str() {
        Some("ready") => {}
        Some("failed") => assert!(
            !r.body["status_message"].as_str().unwrap_or("").is_empty(),
            "{}",
            r.body
        ),
        other => panic!("the capture ended {other:?}: {}", r.body),
    }
    api.delete_sandbox("cycle");
    let r = api.call("GET", &format!("/api/v2/sandboxes/snapshots/{snap}"), None);
    assert_eq!(r.body["status"], "ready", "{}", r.body);
    api.wait_until_no_sandboxes();
    drop(server);
    assert_no_leftovers(&state);
    reap_leftovers(&state);
}

/// A start cut short by a crash can leave a sandbox directory with mounts and no container
/// (a warm sandbox has no record either): recovery destroys it before serving.
#[test]
fn what_a_crash_left_of_a_sandbox_without_a_record_is_gone_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    drop(TestServer::start_in(&state));
    let orphan = state.join("runtime/sandboxes/orphan-of-a-crash");
    let scratch = orphan.join("run");
    std::fs::create_dir_all(&scratch).unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "orphan-scratch"])
            .arg(&scratch),
    );

    let server = TestServer::start_in(&state);
    assert!(!orphan.exists(), "{} is still there", orphan.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains("orphan-of-a-crash"),
        "its mount is still there"
    );
    drop(server);
    assert_no_leftovers(&state);
    reap_leftovers(&state);
}
