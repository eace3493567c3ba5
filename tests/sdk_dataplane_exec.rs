//! Data-plane exec conformance: the official Python SDK (unmodified, pinned in `common::sdk`)
//! drives every WebSocket exec flow against the local server.
//! The scripts (`tests/sdk/dataplane_{exec,sessions,interactive,reattach}.py`) assert their
//! own expectations; each prints one `flow …` line per flow saying what the SDK surfaced, and
//! a final `… ok` line.

use crate::common::api::Api;
use crate::common::{TestServer, image, sdk};

/// Run `script` against a fresh server and a ready snapshot; returns its output.
fn exec_flows(script: &str) -> String {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("dp-flows", image::tiny(), 64 << 20);
    // Pings every 0.2 s with a 5 s pong deadline (the SDK's defaults are 30 s and 60 s), so
    // every flow also proves the data plane answers pings while it streams or waits: an
    // unanswered ping would close the socket, which the scripts count as a reattachment.
    let env = [
        ("SNAPSHOT_ID", snapshot.as_str()),
        ("LANGSMITH_SANDBOX_WS_TIMEOUT_PING_INTERVAL", "0.2"),
        ("LANGSMITH_SANDBOX_WS_TIMEOUT_PING", "5"),
    ];
    let out = sdk::run_script(&server, script, &env);
    println!("{out}");
    out
}

#[test]
fn sdk_runs_stream_take_stdin_and_run_concurrently() {
    let out = exec_flows("dataplane_exec.py");
    assert!(out.contains("sdk dataplane exec ok"), "{out}");
}

#[test]
fn sdk_kills_replays_times_out_and_expires_sessions() {
    let out = exec_flows("dataplane_sessions.py");
    assert!(out.contains("sdk dataplane sessions ok"), "{out}");
}

#[test]
fn sdk_drives_a_pty_and_the_async_client() {
    let out = exec_flows("dataplane_interactive.py");
    assert!(out.contains("sdk dataplane interactive ok"), "{out}");
}

/// The server dies under a running command (SIGKILL twice, then a graceful SIGTERM) and comes
/// back on the same port and state directory; the SDK's handle reattaches by itself each time.
#[test]
fn sdk_resumes_a_command_across_server_restarts() {
    let mut server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("dp-reattach", image::tiny(), 64 << 20);
    let mut script = sdk::spawn_script(
        &server,
        "dataplane_reattach.py",
        &[("SNAPSHOT_ID", &snapshot)],
    );
    for round in 1..=3 {
        script.wait_line(&format!("drop-me {round}"));
        if round < 3 {
            server.crash_and_restart();
        } else {
            server.stop_and_restart();
        }
        script.send_line("restarted");
    }
    let out = script.finish();
    println!("{out}");
    assert!(out.contains("sdk dataplane reattach ok"), "{out}");
}
