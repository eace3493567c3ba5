//! Durable state: a server killed with SIGKILL at an awkward moment comes back with every
//! record truthful, running sandboxes still running, and nothing left behind once the
//! sandboxes are deleted (`crash`); many concurrent creates and deletes leave nothing
//! half-made (`concurrency`); a boot in progress holds up neither a rename nor a delete,
//! and creates hold up no reads (`slow_boot`); a container that ends on its own is reported
//! `failed` and starts again (`container_exit`); a registry that dies mid-pull fails the
//! build and leaves no partial blob (`registry_dies`); a full state disk refuses new work
//! clearly and loses nothing (`disk_full`).

mod concurrency;
mod container_exit;
mod crash;
mod disk_full;
mod registry_dies;
mod slow_boot;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::api::Api;
use crate::common::process::wait_for;
use crate::common::server::runc_containers;

const MIB: i64 = 1 << 20;

/// After every sandbox of `state_dir` is deleted and its server stopped (a running server
/// keeps warm sandboxes for the next create, and destroys them when it stops): no container
/// in its runc root, no mount under it and no loop device backed by a file under it.
pub fn assert_no_leftovers(state_dir: &Path) {
    let containers = runc_containers(state_dir);
    assert!(containers.is_empty(), "containers left: {containers:?}");
    let prefix = state_dir.to_string_lossy().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&prefix)))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
    // No host id range is still claimed for one of this server's sandboxes.
    let claims: Vec<String> = std::fs::read_dir("/run/langsmith/ranges")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter(|owner| owner.starts_with(&prefix))
        .collect();
    assert!(claims.is_empty(), "id ranges still claimed: {claims:#?}");
    // The kernel clears an autoclear loop device from a work queue after its last user is
    // gone (the container's mount namespace dies with its last process), so a device may
    // outlive the delete by a moment; one that is still bound after the limit has leaked.
    let ours = || {
        let loops = Command::new("losetup")
            .args(["--list", "--noheadings", "--output", "NAME,BACK-FILE"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&loops.stdout)
            .lines()
            .filter(|l| l.contains(&prefix))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut left = ours();
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = ours();
    }
    assert!(left.is_empty(), "loop devices left: {left:#?}");
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
