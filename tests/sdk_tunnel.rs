//! Port tunnels through the official Python SDK (unmodified, pinned in `common::sdk`):
//! `tests/sdk/tunnel.py` asserts its own expectations and prints one `flow …` line each; the
//! test restarts the server under the open tunnel to make the SDK reconnect.

use crate::common::api::Api;
use crate::common::{TestServer, image, sdk};

#[test]
fn sdk_tunnels_carry_bytes_refuse_closed_ports_and_reconnect() {
    let mut server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("sdk-tunnel", image::tiny(), 64 << 20);
    let mut script = sdk::spawn_script(&server, "tunnel.py", &[("SNAPSHOT_ID", &snapshot)]);
    script.wait_line("restart-me");
    // A graceful stop closes the tunnel's WebSocket (the server side drops the session); the
    // server comes back on the same address.
    server.stop_and_restart();
    script.send_line("go");
    let out = script.finish();
    println!("{out}");
    for flow in ["big", "concurrent", "refused", "reconnect", "close"] {
        assert!(out.contains(&format!("flow {flow}")), "{out}");
    }
    assert!(out.contains("sdk tunnel ok"), "{out}");
}
