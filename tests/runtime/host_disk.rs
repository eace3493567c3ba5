//! A sandbox cannot spend the host's disk outside its own upper image, and a full agent log
//! stops neither PID 1 nor the restart of its data-plane server.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::fixture::{Fixture, MIB};
use crate::common::process::wait_for;

/// Bytes allocated on the host filesystem of `dir` under it, not counting other filesystems
/// (the sandbox's own mounts) and the upper image, whose size the capacity bounds.
fn host_bytes_under(dir: &Path, device: u64, upper_image: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.dev() != device || path == upper_image {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += host_bytes_under(&path, device, upper_image);
        }
    }
    total
}

#[tokio::test]
async fn the_agent_log_is_small_and_bounded() {
    let fixture = Fixture::new();
    let id = &fixture.id("disk");
    fixture
        .runtime
        .start(&fixture.spec(id))
        .await
        .expect("start");
    let dir = fixture.sandbox_dir(id);
    let device = std::fs::metadata(&dir).unwrap().dev();
    let upper = fixture.runtime.upper_image(id);

    // PID 1's stdout is the agent log; writing to it through /proc must hit a small limit.
    let flood = fixture.exec(id, "head -c 52428800 /dev/zero >> /proc/1/fd/1");
    assert!(!flood.status.success(), "50 MiB fitted in the agent log");
    // The agent's log is on a small tmpfs while it runs; its end is kept beside it on stop.
    let (agent_log, saved_log) = (dir.join("log/agent.log"), dir.join("agent.log"));
    let log_size = std::fs::metadata(&agent_log).unwrap().len();
    // Filled up to its limit (so the flood did reach it), and not beyond.
    assert!(
        (MIB as u64..=2 * MIB as u64).contains(&log_size),
        "agent log holds {log_size} bytes"
    );
    let host = host_bytes_under(&dir, device, &upper);
    assert!(host < MIB as u64, "{host} bytes landed on the host disk");

    // The agent still answers after both floods.
    assert_eq!(fixture.healthz(id).await, Ok(200));
    // Stop keeps only a bounded end of the log on the host disk.
    fixture.runtime.stop(id).await.expect("stop");
    let saved = std::fs::metadata(&saved_log).unwrap().len();
    assert_eq!(saved, 64 * 1024);
    fixture.runtime.destroy(id).await.expect("destroy");
    fixture.assert_no_trace(id).await;
}

#[tokio::test]
async fn pid1_outlives_a_full_log_and_restarts_its_server() {
    let fixture = Fixture::new();
    let id = &fixture.id("fulllog");
    fixture
        .runtime
        .start(&fixture.spec(id))
        .await
        .expect("start");
    // Fill PID 1's log from inside, then kill the data-plane server: PID 1's message about
    // it meets a full log, which must neither stop it nor the restart.
    let flood = fixture.exec(id, "head -c 52428800 /dev/zero >> /proc/1/fd/2");
    assert!(!flood.status.success(), "50 MiB fitted in the agent log");
    // Processes other than PID 1 running the agent (the pattern does not match itself).
    let servers = "for d in /proc/[0-9]*; do p=${d#/proc/}; \
         if [ $p != 1 ] && tr '\\0' ' ' < $d/cmdline 2>/dev/null | grep -q 'langsmith [a]gent'; \
         then echo $p; fi; done";
    let first = fixture.exec_ok(id, servers);
    assert_eq!(first.lines().count(), 1, "{first}");
    fixture.exec_ok(id, &format!("kill -9 {first}"));
    let second = wait_for("a new data-plane server", Duration::from_secs(30), || {
        let now = fixture.exec_ok(id, servers);
        (now.lines().count() == 1 && now != first).then_some(now)
    });
    assert_ne!(first, second);
    // PID 1 keeps the listening socket: a connection waits for the new server.
    assert_eq!(fixture.healthz(id).await, Ok(200));
    assert_eq!(
        fixture.runtime.state(id).await,
        langsmith::runtime::ContainerState::Running
    );
    let log = std::fs::read_to_string(fixture.sandbox_dir(id).join("log/agent.log")).unwrap();
    assert!(
        log.starts_with("langsmith agent: the log was full and was emptied\n")
            && log.contains("restarting it"),
        "{log}"
    );
    fixture.runtime.destroy(id).await.expect("destroy");
    fixture.assert_no_trace(id).await;
}
