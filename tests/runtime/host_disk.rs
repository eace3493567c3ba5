//! A sandbox cannot spend the host's disk outside its own upper image, and a full agent log
//! stops neither PID 1 nor the restart of its data-plane server.
//!
//! PID 1's stdout and stderr are the agent log, a host file: the sandbox's root (a host id
//! of its range, not host root) cannot open it through `/proc/1/fd`. A log that fills up
//! by itself is made here by writing to it from the host.

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

/// Appends zeros to `log` until its filesystem is full (50 MiB at most).
fn fill_from_the_host(log: &Path) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    let block = vec![0u8; 64 * 1024];
    for _ in 0..800 {
        if let Err(e) = file.write_all(&block) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            return;
        }
    }
    panic!("50 MiB fitted in the agent log");
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

    // PID 1's stdout is the agent log, which the sandbox cannot reopen.
    let flood = fixture.exec(id, "head -c 52428800 /dev/zero >> /proc/1/fd/1");
    assert!(
        !flood.status.success(),
        "the sandbox wrote to the agent log"
    );
    assert!(
        String::from_utf8_lossy(&flood.stderr).contains("Permission denied"),
        "{flood:?}"
    );
    // The agent's log is on a small tmpfs while it runs; its end is kept beside it on stop.
    let (agent_log, saved_log) = (dir.join("log/agent.log"), dir.join("agent.log"));
    assert!(std::fs::metadata(&agent_log).unwrap().len() < MIB as u64);
    fill_from_the_host(&agent_log);
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
    // Fill PID 1's log, then kill the data-plane server: PID 1's message about it meets a
    // full log, which must neither stop it nor the restart.
    fill_from_the_host(&fixture.sandbox_dir(id).join("log/agent.log"));
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
