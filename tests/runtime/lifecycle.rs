//! Start, stop, restart and destroy: files survive a stop, destroy leaves nothing, and a
//! failed start cleans up after itself.

use std::path::PathBuf;
use std::time::Duration;

use super::fixture::{Fixture, MIB, loops_bound_to};
use crate::common::cgroup::cgroup_file;
use crate::common::process::wait_for;
use langsmith::runtime::{ContainerState, RuntimeError};

#[tokio::test]
async fn files_survive_stop_and_start_and_destroy_leaves_nothing() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let id = &fixture.id("life");
    let spec = fixture.spec(id);

    runtime.start(&spec).await.expect("first start");
    assert_eq!(runtime.state(id).await, ContainerState::Running);
    assert_eq!(runtime.list().await, vec![id.to_string()]);
    assert_eq!(fixture.healthz(id).await, Ok(200));

    let environ = fixture.exec_ok(id, "tr '\\0' '\\n' < /proc/1/environ");
    for expected in [
        "GREETING=hello",
        &format!("HOSTNAME=sb-{id}"),
        "HOME=/root",
        "PATH=/usr/local/sbin:",
    ] {
        assert!(
            environ.contains(expected),
            "{expected} missing from {environ}"
        );
    }
    assert_eq!(fixture.exec_ok(id, "hostname"), format!("sb-{id}\n"));
    assert_eq!(
        fixture.exec_ok(id, "cat /etc/hostname"),
        format!("sb-{id}\n")
    );
    assert!(
        fixture
            .exec_ok(id, "cat /etc/hosts")
            .contains("127.0.0.1\tlocalhost")
    );

    fixture.exec_ok(id, "echo kept > /root/note && sync");
    // Starting a running sandbox changes nothing.
    runtime.start(&spec).await.expect("start while running");

    runtime.stop(id).await.expect("stop");
    assert_eq!(runtime.state(id).await, ContainerState::Absent);
    let dir = fixture.sandbox_dir(id);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&*dir.to_string_lossy()),
        "stop left mounts"
    );
    let upper = runtime.upper_image(id);
    assert!(upper.is_file(), "stop must keep the upper image");
    assert_eq!(loops_bound_to(&upper), "");
    fixture.assert_snapshot_released();
    runtime
        .stop(id)
        .await
        .expect("stopping a stopped sandbox is fine");

    runtime.start(&spec).await.expect("second start");
    assert_eq!(fixture.exec_ok(id, "cat /root/note"), "kept\n");

    runtime.destroy(id).await.expect("destroy");
    fixture.assert_no_trace(id).await;
    runtime.destroy(id).await.expect("destroy twice");
    runtime
        .destroy(&fixture.id("never-started"))
        .await
        .expect("destroy an unknown id");
    fixture.assert_snapshot_released();
}

/// Starts `id` and opens its container's mount namespace, which keeps the container's copies
/// of its mounts alive while held. Gives the sandbox directory, the namespace and the upper
/// image.
async fn start_and_hold(fixture: &Fixture, id: &str) -> (PathBuf, std::fs::File, PathBuf) {
    fixture
        .runtime
        .start(&fixture.spec(id))
        .await
        .expect("start");
    let dir = fixture.sandbox_dir(id);
    let pid = std::fs::read_to_string(dir.join("bundle/container.pid")).unwrap();
    let namespace = std::fs::File::open(format!("/proc/{}/ns/mnt", pid.trim())).unwrap();
    (dir, namespace, fixture.runtime.upper_image(id))
}

/// The kernel unbinds a loop device only once the last mount of its filesystem is gone, and
/// a container's mounts can outlive runc by a moment: until its mount namespace is freed.
/// Here the test holds that namespace open, so the moment lasts until it lets go. A stop
/// returns only after that, with the upper image no longer bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_returns_only_once_the_kernel_has_let_go_of_the_disks() {
    let fixture = Fixture::new();
    let id = fixture.id("held");
    let (dir, namespace, upper) = start_and_hold(&fixture, &id).await;
    let bound = || loops_bound_to(&upper);
    assert_ne!(
        bound(),
        "",
        "a running sandbox's upper image is on a loop device"
    );

    let stop = tokio::spawn({
        let runtime = fixture.runtime.clone();
        let id = id.clone();
        async move { runtime.stop(&id).await }
    });
    // The host's mounts go first; the container's copies stay with the held namespace.
    wait_for("the stop to unmount", Duration::from_secs(60), || {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        (!mountinfo.contains(&*dir.to_string_lossy())).then_some(())
    });
    assert_ne!(bound(), "", "the held namespace keeps the disk bound");
    assert!(
        !stop.is_finished(),
        "stop returned with its disk still bound"
    );

    drop(namespace);
    stop.await
        .unwrap()
        .expect("stop, once the namespace is gone");
    assert_eq!(bound(), "");
    fixture.runtime.destroy(&id).await.expect("destroy");
    fixture.assert_no_trace(&id).await;
    fixture.assert_snapshot_released();
}

/// A teardown that gave up waiting for the kernel (something still holds the disk) gives up
/// again when retried, however many host mounts are already gone: it knows the upper image's
/// loop device from the start's record, not only from the mount table. Only once the holder
/// lets go does a stop pass, with the disk unbound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teardown_retried_while_the_disk_is_held_waits_again() {
    let fixture = Fixture::new();
    let id = fixture.id("held-twice");
    let (_, namespace, upper) = start_and_hold(&fixture, &id).await;
    let bound = || loops_bound_to(&upper);

    for attempt in ["stop", "a retried stop"] {
        let error = fixture.runtime.stop(&id).await.expect_err(attempt);
        assert!(
            matches!(error, RuntimeError::LoopsStillBound(_)),
            "{attempt}: {error}"
        );
        assert_ne!(
            bound(),
            "",
            "{attempt}: the held namespace keeps the disk bound"
        );
    }
    drop(namespace);
    fixture
        .runtime
        .stop(&id)
        .await
        .expect("stop, once the namespace is gone");
    assert_eq!(bound(), "");
    fixture.runtime.destroy(&id).await.expect("destroy");
    fixture.assert_no_trace(&id).await;
    fixture.assert_snapshot_released();
}

#[tokio::test]
async fn a_start_that_fails_reports_why_and_leaves_nothing() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;

    // A snapshot that is not a filesystem: the lower mount fails.
    let garbage = runtime.root().join("garbage.img");
    std::fs::write(&garbage, vec![0x5a; 1 << 20]).unwrap();
    let bad_image = &fixture.id("badimage");
    let mut spec = fixture.spec(bad_image);
    spec.snapshot_image = garbage;
    let error = runtime.start(&spec).await.expect_err("garbage snapshot");
    assert!(matches!(error, RuntimeError::Io { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("no ext4 filesystem, or a damaged one"),
        "{error}"
    );
    runtime
        .destroy(bad_image)
        .await
        .expect("destroy after failed mount");
    fixture.assert_no_trace(bad_image).await;

    // A working directory that is a file: runc cannot start the agent, after the rootfs was
    // mounted. The error carries runc's complaint from agent.log.
    let bad_cwd = &fixture.id("badcwd");
    let mut spec = fixture.spec(bad_cwd);
    spec.cwd = Some("/bin/busybox".to_string());
    let error = runtime.start(&spec).await.expect_err("cwd is a file");
    let message = error.to_string();
    assert!(matches!(error, RuntimeError::NotReady { .. }), "{message}");
    assert!(message.contains("the agent log"), "{message}");
    assert!(message.contains("not a directory"), "{message}");
    let dir = fixture.sandbox_dir(bad_cwd);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&*dir.to_string_lossy()),
        "failed start left mounts"
    );
    assert_eq!(runtime.state(bad_cwd).await, ContainerState::Absent);
    runtime
        .destroy(bad_cwd)
        .await
        .expect("destroy after failed run");
    fixture.assert_no_trace(bad_cwd).await;
    fixture.assert_snapshot_released();
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_happens() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let mut spec = fixture.spec("../escape");
    let error = runtime.start(&spec).await.expect_err("bad id");
    assert!(matches!(error, RuntimeError::InvalidId { .. }), "{error}");

    spec.id = fixture.id("ok");
    spec.hostname = "ok".to_string();
    spec.mem_bytes = 0;
    let error = runtime.start(&spec).await.expect_err("zero memory");
    assert!(
        error.to_string().contains("mem_bytes must be positive"),
        "{error}"
    );

    spec.mem_bytes = 1 << 27;
    spec.snapshot_image = runtime.root().join("missing.ext4");
    let error = runtime.start(&spec).await.expect_err("missing snapshot");
    assert!(matches!(error, RuntimeError::SnapshotMissing(_)), "{error}");
    assert!(!fixture.sandbox_dir(&spec.id).exists());
}

#[tokio::test]
async fn a_larger_capacity_grows_the_upper_image_and_keeps_its_files() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let id = &fixture.id("grow");
    let mut spec = fixture.spec(id);
    spec.fs_capacity_bytes = 32 * MIB;
    runtime.start(&spec).await.expect("start at 32 MiB");
    fixture.exec_ok(id, "dd if=/dev/zero of=/root/first bs=1M count=20 && sync");
    runtime.stop(id).await.expect("stop");

    spec.fs_capacity_bytes = 96 * MIB;
    runtime.start(&spec).await.expect("start at 96 MiB");
    assert_eq!(
        std::fs::metadata(runtime.upper_image(id)).unwrap().len(),
        96 * MIB as u64
    );
    assert_eq!(fixture.exec_ok(id, "stat -c %s /root/first"), "20971520\n");
    fixture.exec_ok(id, "dd if=/dev/zero of=/root/second bs=1M count=50 && sync");
    runtime.stop(id).await.expect("stop");

    // A smaller capacity never shrinks the image (that could lose files).
    spec.fs_capacity_bytes = 16 * MIB;
    runtime.start(&spec).await.expect("start asking for less");
    assert_eq!(
        std::fs::metadata(runtime.upper_image(id)).unwrap().len(),
        96 * MIB as u64
    );
    assert_eq!(fixture.exec_ok(id, "stat -c %s /root/second"), "52428800\n");
    runtime.stop(id).await.expect("stop");

    // A filesystem the check cannot repair is a clear error, and nothing stays. The whole
    // image is zeroed: with only the primary superblock gone e2fsck may recover from a
    // backup copy, so that would not reliably be unrepairable.
    {
        let image = std::fs::OpenOptions::new()
            .write(true)
            .open(runtime.upper_image(id))
            .unwrap();
        image.set_len(0).unwrap();
        image.set_len(96 * MIB as u64).unwrap();
    }
    spec.fs_capacity_bytes = 128 * MIB;
    let error = runtime.start(&spec).await.expect_err("unrepairable image");
    assert!(matches!(error, RuntimeError::GrowDisk { .. }), "{error}");
    assert!(error.to_string().contains("e2fsck"), "{error}");
    assert_eq!(runtime.state(id).await, ContainerState::Absent);
    // The unfinished grow is retried even when the old capacity is asked for again.
    spec.fs_capacity_bytes = 96 * MIB;
    let error = runtime.start(&spec).await.expect_err("still unrepairable");
    assert!(matches!(error, RuntimeError::GrowDisk { .. }), "{error}");
    runtime.destroy(id).await.expect("destroy");
    fixture.assert_no_trace(id).await;
}

/// A start that finds its container running gives it the spec's hostname and limits: how a
/// create takes over a warm sandbox. Files the sandbox wrote itself are left alone.
#[tokio::test]
async fn starting_a_running_sandbox_gives_it_the_specs_hostname_and_limits() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let id = &fixture.id("live");
    let mut spec = fixture.spec(id);
    spec.hostname = "warm".to_string();
    runtime.start(&spec).await.expect("start");
    let cgroup =
        |controller: &str, file: &str| cgroup_file(controller, id, file).trim().to_string();
    assert_eq!(cgroup("cpu", "cpu.cfs_quota_us"), "100000");

    spec.hostname = "renamed".to_string();
    spec.cpu_millicores = 500;
    spec.mem_bytes = 96 * MIB;
    spec.pids_limit = 64;
    runtime.start(&spec).await.expect("start while running");
    assert_eq!(
        fixture.exec_ok(
            id,
            "hostname; cat /etc/hostname; grep -c renamed /etc/hosts"
        ),
        "renamed\nrenamed\n1\n"
    );
    assert_eq!(cgroup("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(
        cgroup("memory", "memory.limit_in_bytes"),
        (96 * MIB).to_string()
    );
    assert_eq!(cgroup("pids", "pids.max"), "64");

    fixture.exec_ok(id, "echo mine > /etc/hostname");
    spec.hostname = "again".to_string();
    runtime.start(&spec).await.expect("start while running");
    assert_eq!(
        fixture.exec_ok(id, "hostname; cat /etc/hostname"),
        "again\nmine\n"
    );

    runtime.destroy(id).await.expect("destroy");
    fixture.assert_no_trace(id).await;
}
