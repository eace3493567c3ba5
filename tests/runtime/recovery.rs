//! What a server restart finds after a crash: a dead agent, a container without its mounts
//! cleaned up, mounts without a container. Start and destroy both cope.

use std::time::{Duration, Instant};

use std::process::Command;

use super::fixture::{Fixture, open_runtime};
use crate::common::process::run_ok;
use langsmith::runtime::ContainerState;

#[tokio::test]
async fn start_and_destroy_recover_from_partial_state() {
    let fixture = Fixture::new();
    let id = &fixture.id("crash");
    let container = format!("ls-{id}");
    let spec = fixture.spec(id);
    fixture.runtime.start(&spec).await.expect("start");
    fixture.exec_ok(id, "echo before > /root/mark && sync");
    let state_root = fixture.runtime.root().join("runc");
    let state_root = state_root.to_string_lossy();

    // The agent dies: the container still exists, stopped, with its filesystems mounted.
    run_ok(Command::new("runc").args(["--root", &state_root, "kill", &container, "KILL"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while fixture.runtime.state(id).await != ContainerState::Stopped {
        assert!(Instant::now() < deadline, "the container never stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A restarted server re-adopts it from the list and starts it afresh.
    let restarted = open_runtime(fixture.runtime.root());
    assert_eq!(restarted.list().await, vec![id.to_string()]);
    restarted
        .start(&spec)
        .await
        .expect("start after the agent died");
    assert_eq!(fixture.exec_ok(id, "cat /root/mark"), "before\n");

    // The container is gone but its mounts and loop devices are not.
    run_ok(Command::new("runc").args(["--root", &state_root, "delete", "--force", &container]));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = fixture.sandbox_dir(id);
    assert!(mountinfo.contains(&*dir.to_string_lossy()));
    assert_eq!(restarted.state(id).await, ContainerState::Absent);
    restarted.destroy(id).await.expect("destroy leftovers");
    fixture.assert_no_trace(id).await;
    fixture.assert_snapshot_released();
}
