//! A sandbox cannot spend the host's disk outside its own upper image, and nothing it leaves
//! in its shared run directory can block stop or destroy.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::fixture::{Fixture, MIB};

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
async fn the_run_directory_and_the_agent_log_are_small_and_bounded() {
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

    let fill = fixture.exec(id, "dd if=/dev/zero of=/.langsmith/run/x bs=1M count=50");
    assert!(!fill.status.success(), "50 MiB fitted in the run directory");
    let stderr = String::from_utf8_lossy(&fill.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");

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
async fn anything_at_the_socket_path_cannot_block_stop_or_destroy() {
    let fixture = Fixture::new();
    let id = &fixture.id("sockdir");
    let spec = fixture.spec(id);
    fixture.runtime.start(&spec).await.expect("start");
    fixture.exec_ok(
        id,
        "cd /.langsmith/run && rm agent.sock && mkdir agent.sock && echo x > agent.sock/f",
    );
    fixture.runtime.stop(id).await.expect("stop");
    fixture.runtime.start(&spec).await.expect("start again");
    fixture.exec_ok(
        id,
        "cd /.langsmith/run && rm agent.sock && ln -s /etc/passwd agent.sock",
    );
    fixture.runtime.stop(id).await.expect("stop again");
    fixture.runtime.destroy(id).await.expect("destroy");
    fixture.assert_no_trace(id).await;
}
