//! Durable state: a server killed with SIGKILL at an awkward moment comes back with every
//! record truthful, running sandboxes still running, and nothing left behind once the
//! sandboxes are deleted. Also: many concurrent creates and deletes leave nothing half-made.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::server::{API_KEY, reap_leftovers};
use crate::common::{TestServer, image};

const MIB: i64 = 1 << 20;

/// After every sandbox of `state_dir` is deleted: no container in its runc root, no mount
/// under it and no loop device backed by a file under it.
pub fn assert_no_leftovers(state_dir: &Path) {
    let root = state_dir.join("runtime/runc");
    let list = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["list", "-q"])
        .output()
        .unwrap();
    let containers = String::from_utf8_lossy(&list.stdout);
    assert!(
        containers.trim().is_empty(),
        "containers left: {containers}"
    );
    let prefix = state_dir.to_string_lossy().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&prefix)))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
    let loops = Command::new("losetup")
        .args(["--list", "--noheadings", "--output", "NAME,BACK-FILE"])
        .output()
        .unwrap();
    let loops = String::from_utf8_lossy(&loops.stdout);
    let ours: Vec<&str> = loops.lines().filter(|l| l.contains(&prefix)).collect();
    assert!(ours.is_empty(), "loop devices left: {ours:#?}");
}

/// Poll the sandbox `name` until its status is no longer `provisioning`; returns its JSON.
fn settled(api: &Api, name: &str) -> Value {
    wait_for(
        "the sandbox to leave provisioning",
        Duration::from_secs(120),
        || {
            let r = api.call("GET", &format!("/api/v2/sandboxes/boxes/{name}"), None);
            assert_eq!(r.status, 200, "{}", r.body);
            (r.body["status"] != "provisioning").then_some(r.body)
        },
    )
}

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
        Moment::ContainerCreated => {
            let list = Command::new("runc")
                .arg("--root")
                .arg(state.join("runtime/runc"))
                .args(["list", "-q"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&list.stdout).contains(id)
        }
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
fn concurrent_creates_and_deletes_leave_nothing_half_made() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("par", image::tiny(), 64 * MIB);
    let url = server.url.clone();
    let workers: Vec<_> = (0..20)
        .map(|i| {
            let (url, snap) = (url.clone(), snap.clone());
            std::thread::spawn(move || {
                // Another quarter are deleted by a second client while their create waits.
                let racer = (i % 4 == 2).then(|| {
                    let url = url.clone();
                    std::thread::spawn(move || delete_once_listed(&url, &format!("par-{i}")))
                });
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(180))
                    .build()
                    .unwrap();
                let body = json!({"name": format!("par-{i}"), "snapshot_id": snap,
                    "wait_for_ready": i % 2 == 0, "timeout": 120, "mem_bytes": 128 * MIB});
                let r = http
                    .post(format!("{url}/api/v2/sandboxes/boxes"))
                    .header("X-Api-Key", API_KEY)
                    .json(&body)
                    .send()
                    .unwrap();
                let status = r.status().as_u16();
                let reply: Value = r.json().unwrap_or(Value::Null);
                // A quarter are deleted at once, racing their own boot.
                if status == 201 && i % 4 == 1 {
                    let d = http
                        .delete(format!("{url}/api/v2/sandboxes/boxes/par-{i}"))
                        .header("X-Api-Key", API_KEY)
                        .send()
                        .unwrap();
                    assert_eq!(d.status().as_u16(), 204, "delete par-{i}");
                }
                if let Some(racer) = racer {
                    racer.join().unwrap();
                }
                (i, status, reply)
            })
        })
        .collect();
    for worker in workers {
        let (i, status, reply) = worker.join().unwrap();
        match status {
            201 if i % 2 == 0 => assert_eq!(reply["status"], "ready", "par-{i}: {reply}"),
            201 => {}
            // Deleted by the racer while its create waited: a clear "gone" answer.
            404 | 409 if i % 4 == 2 => {
                assert!(reply["detail"].is_string() || reply.is_object(), "{reply}")
            }
            _ => panic!("par-{i} failed: {status} {reply}"),
        }
    }

    // Every sandbox still listed is either working or failed with a reason.
    let list = api.call("GET", "/api/v2/sandboxes/boxes?limit=100", None);
    let names: Vec<String> = list.body["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "deleting")
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    for name in &names {
        let sb = settled(&api, name);
        match sb["status"].as_str() {
            Some("ready") => assert_eq!(api.exec(&sb, "echo ok").stdout, "ok\n", "{name}"),
            Some("failed") => assert!(sb["status_message"].is_string(), "{sb}"),
            other => panic!("{name} is {other:?}: {sb}"),
        }
    }
    let deleters: Vec<_> = names
        .into_iter()
        .map(|name| {
            let url = url.clone();
            std::thread::spawn(move || {
                let d = reqwest::blocking::Client::new()
                    .delete(format!("{url}/api/v2/sandboxes/boxes/{name}"))
                    .header("X-Api-Key", API_KEY)
                    .timeout(Duration::from_secs(180))
                    .send()
                    .unwrap();
                assert_eq!(d.status().as_u16(), 204, "delete {name}");
            })
        })
        .collect();
    for d in deleters {
        d.join().unwrap();
    }
    wait_for("every sandbox to be gone", Duration::from_secs(120), || {
        let list = api.call("GET", "/api/v2/sandboxes/boxes?limit=100", None);
        list.body["sandboxes"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
    assert_no_leftovers(&server.state_dir);
}

/// DELETE `name` as soon as GET finds it (racing a create that is still waiting).
fn delete_once_listed(url: &str, name: &str) {
    let http = reqwest::blocking::Client::new();
    let get = || {
        http.get(format!("{url}/api/v2/sandboxes/boxes/{name}"))
            .header("X-Api-Key", API_KEY)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    wait_for("the sandbox to be listed", Duration::from_secs(60), || {
        (get() == 200).then_some(())
    });
    let d = http
        .delete(format!("{url}/api/v2/sandboxes/boxes/{name}"))
        .header("X-Api-Key", API_KEY)
        .timeout(Duration::from_secs(180))
        .send()
        .unwrap();
    assert_eq!(d.status().as_u16(), 204, "racing delete of {name}");
}
