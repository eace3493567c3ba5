//! The state disk filling up: with the server's state directory on a small filesystem that
//! something else fills to the last block, new work (a create, a build) is refused with a
//! 507 that says the disk is full and creates nothing, a running sandbox keeps running and
//! answering, nothing acknowledged before is lost (also across a restart), and once space is
//! freed everything works again.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::MIB;
use crate::common::api::Api;
use crate::common::leftovers::assert_no_leftovers;
use crate::common::process::run_ok;
use crate::common::server::reap_leftovers;
use crate::common::{TestServer, image};

/// A 512 MiB ext4 filesystem mounted at `mount` for the test's life.
struct SmallDisk<'a> {
    mount: &'a Path,
}

impl<'a> SmallDisk<'a> {
    fn mount(image: &Path, mount: &'a Path) -> SmallDisk<'a> {
        run_ok(Command::new("truncate").args(["-s", "512M"]).arg(image));
        run_ok(
            Command::new("mke2fs")
                .args(["-q", "-t", "ext4", "-F"])
                .arg(image),
        );
        std::fs::create_dir_all(mount).unwrap();
        run_ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(image)
                .arg(mount),
        );
        SmallDisk { mount }
    }
}

impl Drop for SmallDisk<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.mount).status();
    }
}

#[test]
fn a_full_state_disk_refuses_new_work_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("disk");
    let disk = SmallDisk::mount(&dir.path().join("disk.img"), &mount);
    let state = disk.mount.join("state");
    let mut server = TestServer::start_in(&state);
    let api = Api::new(&server);
    let snap = api.ready_snapshot("full", image::tiny(), 64 * MIB);
    let sb = api.ready_sandbox("before", &snap, json!({}));
    assert_eq!(api.exec(&sb, "echo kept > /root/file").exit_code, 0);

    // Something else takes every free block of the state disk.
    let filler = disk.mount.join("filler");
    let fill = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    assert!(!fill.status.success(), "the disk did not fill up");

    // New work is refused, saying why; nothing half-made stays listed as ready.
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/boxes",
        Some(json!({"name": "after", "snapshot_id": snap})),
    );
    assert_eq!(r.status, 507, "{}", r.body);
    assert_eq!(
        r.body["detail"]["error"], "InsufficientStorage",
        "{}",
        r.body
    );
    assert!(
        r.body.to_string().contains("state disk is full"),
        "{}",
        r.body
    );
    assert_eq!(
        api.call("GET", "/api/v2/sandboxes/boxes/after", None)
            .status,
        404
    );
    let r = api.call(
        "POST",
        "/api/v2/sandboxes/snapshots",
        Some(json!({"name": "later", "docker_image": image::tiny()})),
    );
    assert_eq!(r.status, 507, "{}", r.body);
    // The running sandbox keeps running and answering.
    let r = api.call("GET", "/api/v2/sandboxes/boxes/before", None);
    assert_eq!(r.body["status"], "ready", "{}", r.body);
    assert_eq!(api.exec(&sb, "cat /root/file").stdout, "kept\n");

    // Space back, and a restart: everything acknowledged is there, and new work goes.
    std::fs::remove_file(&filler).unwrap();
    server.crash_and_restart();
    let api = Api::new(&server);
    let r = api.call("GET", "/api/v2/sandboxes/boxes/before", None);
    assert_eq!(r.body["status"], "ready", "{}", r.body);
    assert_eq!(api.exec(&r.body, "cat /root/file").stdout, "kept\n");
    let r = api.call("GET", &format!("/api/v2/sandboxes/snapshots/{snap}"), None);
    assert_eq!(r.body["status"], "ready", "{}", r.body);
    let again = api.ready_sandbox("again", &snap, json!({}));
    assert_eq!(api.exec(&again, "echo up").stdout, "up\n");
    api.delete_sandbox("again");
    api.delete_sandbox("before");
    api.wait_until_no_sandboxes();
    drop(server);
    assert_no_leftovers(&state);
    reap_leftovers(&state);
}
