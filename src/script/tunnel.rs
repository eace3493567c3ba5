//! `sb.tunnel(remote_port[, #{local_port}])` and the `Tunnel` object: a port of a sandbox
//! forwarded to `127.0.0.1` on this machine while the script runs.
//!
//! Without `local_port` the tunnel listens on a free port chosen by the system, unlike the
//! CLI and the official SDK (which mirror the remote port): scripts run in parallel, and two
//! of them tunnelling to the same remote port must not collide. `local_port` tells the
//! script which port it got. A tunnel is closed by `close()`, when its last `Tunnel` value
//! is dropped, and when the script ends (normally, on an error or on Ctrl-C).

use std::sync::Arc;

use rhai::{Engine, Map};

use super::bridge::{Bridge, ScriptResult, TunnelSlot, client_error, user_error};
use super::sandbox::SandboxObj;
use crate::client::TunnelEvents;

/// A script's tunnel.
#[derive(Clone)]
pub struct TunnelObj {
    local_port: u16,
    remote_port: u16,
    slot: TunnelSlot,
    bridge: Arc<Bridge>,
}

impl TunnelObj {
    fn close(&mut self) {
        let slot = self.slot.clone();
        self.bridge.block_on_uninterrupted(async move {
            if let Some(mut tunnel) = slot.lock().await.take() {
                tunnel.close().await;
            }
        });
    }

    fn describe(&mut self) -> String {
        format!(
            "Tunnel(127.0.0.1:{} -> {})",
            self.local_port, self.remote_port
        )
    }
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    engine
        .register_type_with_name::<TunnelObj>("Tunnel")
        .register_get("local_port", |t: &mut TunnelObj| t.local_port as i64)
        .register_get("remote_port", |t: &mut TunnelObj| t.remote_port as i64)
        .register_fn("close", TunnelObj::close)
        .register_fn("to_string", TunnelObj::describe)
        .register_fn("to_debug", TunnelObj::describe)
        .register_fn("tunnel", |s: &mut SandboxObj, remote_port: i64| {
            open(s, remote_port, &Map::new())
        })
        .register_fn(
            "tunnel",
            |s: &mut SandboxObj, remote_port: i64, opts: Map| open(s, remote_port, &opts),
        );
    super::tunnel_cli::register(engine, bridge);
}

/// A port number from a script: 1–65535 (`allow_zero`: 0 too).
pub(super) fn port(what: &str, value: i64, allow_zero: bool) -> ScriptResult<u16> {
    match u16::try_from(value) {
        Ok(port) if port > 0 || allow_zero => Ok(port),
        _ => Err(user_error(format!(
            "{what} must be between 1 and 65535 (got {value})"
        ))),
    }
}

fn open(sandbox: &SandboxObj, remote_port: i64, opts: &Map) -> ScriptResult<TunnelObj> {
    let remote_port = port("remote_port", remote_port, false)?;
    let local_port = match opts.get("local_port") {
        None => 0,
        Some(v) if v.is_unit() => 0,
        Some(v) => {
            let n = v
                .as_int()
                .map_err(|_| user_error("tunnel: local_port must be an integer"))?;
            port("local_port", n, false)?
        }
    };
    let dataplane = sandbox.dataplane()?;
    let bridge = &sandbox.bridge;
    let client = bridge.client()?;
    let quiet: TunnelEvents = Arc::new(|_| {});
    let tunnel = bridge
        .block_on(async move {
            client
                .tunnel(&dataplane, remote_port, local_port, quiet)
                .await
        })?
        .map_err(|e| client_error(e, Some("opening tunnel")))?;
    let obj = TunnelObj {
        local_port: tunnel.local_port(),
        remote_port,
        slot: Arc::new(tokio::sync::Mutex::new(Some(tunnel))),
        bridge: bridge.clone(),
    };
    bridge.track_tunnel(&obj.slot);
    Ok(obj)
}
