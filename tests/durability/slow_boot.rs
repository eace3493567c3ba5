//! Requests that only change a sandbox's record answer while its boot is under way: the
//! boot is held inside `runc run` by a gate the test opens, so the sandbox is provisioning,
//! with its lifecycle lock taken, for as long as the test needs. And reads stay available
//! while a burst of creates writes to the database.

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MIB, settled};
use crate::common::api::{Api, Reply};
use crate::common::leftovers::assert_no_leftovers;
use crate::common::{TestServer, image};

/// The official SDK gives up on a request after 10 s: an answer must come sooner.
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// An OCI runtime that runs `runc`, except that each `run` first announces itself on the
/// FIFO `entered` and then waits until the test writes to the FIFO `open`.
struct GatedRuntime {
    dir: tempfile::TempDir,
}

impl GatedRuntime {
    fn new() -> GatedRuntime {
        let dir = tempfile::tempdir().unwrap();
        for fifo in ["entered", "open"] {
            let path = std::ffi::CString::new(dir.path().join(fifo).to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        }
        let script = format!(
            "#!/bin/sh\n\
             if [ \"$3\" = run ]; then echo entered > {d}/entered; read _ < {d}/open; fi\n\
             exec runc \"$@\"\n",
            d = dir.path().display()
        );
        let binary = dir.path().join("runc-gated");
        std::fs::write(&binary, script).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        GatedRuntime { dir }
    }

    fn binary(&self) -> PathBuf {
        self.dir.path().join("runc-gated")
    }

    /// Wait until a boot is inside `runc run`, held at the gate.
    fn await_boot(&self) {
        let entered = self.dir.path().join("entered");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(std::fs::read_to_string(entered).unwrap()));
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("no boot reached `runc run`");
        assert_eq!(line.trim(), "entered");
    }

    /// Let the boot held at the gate go on.
    fn open(&self) {
        std::fs::write(self.dir.path().join("open"), "go\n").unwrap();
    }
}

impl Drop for GatedRuntime {
    /// Free a boot still held (a failed test) so its shell does not wait forever.
    fn drop(&mut self) {
        for fifo in ["entered", "open"] {
            let _ = nonblocking_open(&self.dir.path().join(fifo), fifo == "open");
        }
    }
}

fn nonblocking_open(path: &Path, write: bool) -> std::io::Result<std::fs::File> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// `call` on another thread; fails the test when no answer comes within the SDK's patience.
fn answered_in_time(call: impl FnOnce() -> Reply + Send) -> Reply {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(call());
        });
        rx.recv_timeout(ANSWER_DEADLINE)
            .expect("no answer within the SDK's 10 s")
    })
}

fn create_provisioning(api: &Api, name: &str, snap: &str) -> Value {
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/boxes",
        Some(
            json!({"name": name, "snapshot_id": snap, "wait_for_ready": false,
                    "mem_bytes": 128 * MIB}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "provisioning", "{}", r.body);
    r.body
}

#[test]
fn patch_and_delete_answer_while_a_boot_is_under_way() {
    let gate = GatedRuntime::new();
    let runtime = gate.binary();
    // No warm pool: every `runc run` through the gate is a boot this test asked for.
    let mut server = TestServer::start_with(
        &["--runtime", runtime.to_str().unwrap(), "--warm-pool", "0"],
        &[],
    );
    let api = Api::new(&server);
    let snap = api.ready_snapshot("gated", image::tiny(), 64 * MIB);
    let boxes = "/api/v2/sandboxes/boxes";

    // A rename during the boot is kept, and the boot still ends ready.
    create_provisioning(&api, "slow-a", &snap);
    gate.await_boot();
    let renamed = answered_in_time(|| {
        api.call(
            "PATCH",
            &format!("{boxes}/slow-a"),
            Some(json!({"name": "slow-renamed", "idle_ttl_seconds": 1200})),
        )
    });
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "slow-renamed");
    assert_eq!(renamed.body["status"], "provisioning");
    gate.open();
    let ready = settled(&api, "slow-renamed");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["idle_ttl_seconds"], 1200, "{ready}");
    assert_eq!(
        api.call("GET", &format!("{boxes}/slow-a"), None).status,
        404
    );
    assert_eq!(api.exec(&ready, "hostname").exit_code, 0);

    // A delete during the boot answers at once; the boot's container is torn down after.
    let slow_b = create_provisioning(&api, "slow-b", &snap);
    gate.await_boot();
    let patched = answered_in_time(|| {
        api.call(
            "PATCH",
            &format!("{boxes}/slow-b"),
            Some(json!({"idle_ttl_seconds": 0})),
        )
    });
    assert_eq!(patched.status, 200, "{}", patched.body);
    let deleted = answered_in_time(|| api.call("DELETE", &format!("{boxes}/slow-b"), None));
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    // Gone for its user at once: by name and from the list. By id, and when the list is
    // asked for `deleting` sandboxes, it shows until its teardown is done.
    let slow_b_id = slow_b["id"].as_str().unwrap();
    assert_eq!(
        api.call("GET", &format!("{boxes}/slow-b"), None).status,
        404
    );
    let listed = api.call("GET", &format!("{boxes}/{slow_b_id}"), None);
    assert_eq!(listed.body["status"], "deleting", "{}", listed.body);
    let names = |query: &str| -> Vec<String> {
        let list = api.call("GET", &format!("{boxes}?{query}"), None);
        list.body["sandboxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!names("").contains(&"slow-b".to_string()));
    assert_eq!(names("status=deleting"), ["slow-b"]);
    gate.open();
    api.wait_until_torn_down(slow_b_id);

    api.delete_sandbox("slow-renamed");
    api.wait_until_no_sandboxes();
    // A running server keeps warm sandboxes; stopping it ends them (and no others).
    server.stop();
    assert_no_leftovers(&server.state_dir);
}

#[test]
fn reads_are_served_during_a_burst_of_creates() {
    let mut server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("burst", image::tiny(), 64 * MIB);
    let boxes = "/api/v2/sandboxes/boxes";
    let (creates, reads) = std::thread::scope(|s| {
        let creates: Vec<_> = (0..8)
            .map(|i| {
                let (api, snap) = (&api, &snap);
                s.spawn(move || {
                    api.call(
                        "POST",
                        boxes,
                        Some(json!({"name": format!("burst-{i}"), "snapshot_id": snap,
                                    "timeout": 120, "mem_bytes": 128 * MIB})),
                    )
                })
            })
            .collect();
        let reads: Vec<_> = (0..200)
            .map(|_| {
                let api = &api;
                s.spawn(move || {
                    let start = Instant::now();
                    let r = api.call("GET", boxes, None);
                    (r.status, start.elapsed())
                })
            })
            .collect();
        let creates: Vec<Reply> = creates.into_iter().map(|c| c.join().unwrap()).collect();
        let reads: Vec<_> = reads.into_iter().map(|r| r.join().unwrap()).collect();
        (creates, reads)
    });
    for r in &creates {
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["status"], "ready", "{}", r.body);
    }
    assert!(reads.iter().all(|(status, _)| *status == 200), "{reads:?}");
    let slowest = reads.iter().map(|(_, t)| *t).max().unwrap();
    println!("slowest of 200 GETs during 8 creates: {slowest:?}");
    for i in 0..8 {
        api.delete_sandbox(&format!("burst-{i}"));
    }
    api.wait_until_no_sandboxes();
    // A running server keeps warm sandboxes; stopping it ends them (and no others).
    server.stop();
    assert_no_leftovers(&server.state_dir);
}
