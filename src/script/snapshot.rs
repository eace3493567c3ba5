//! The `Snapshot` object and the `snapshot_*` module functions.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map};

use super::bridge::{Bridge, ScriptResult, opt, user_error};
use crate::api::{CaptureSnapshotRequest, CreateSnapshotRequest, Snapshot};

/// Default `--timeout` of snapshot waits, in seconds.
pub const DEFAULT_WAIT_SECS: i64 = 300;

/// A snapshot as last read from the API, plus the bridge to act on it.
#[derive(Clone, Debug)]
pub struct SnapshotObj {
    pub data: Snapshot,
    pub bridge: Arc<Bridge>,
}

impl SnapshotObj {
    fn new(bridge: &Arc<Bridge>, data: Snapshot) -> Self {
        SnapshotObj {
            data,
            bridge: bridge.clone(),
        }
    }

    fn wait(&mut self, timeout: i64) -> ScriptResult<SnapshotObj> {
        let id = self.data.id.clone();
        let secs = timeout.max(0) as u64;
        self.data = self
            .bridge
            .call("", |c| async move { c.wait_snapshot(&id, secs).await })?;
        Ok(self.clone())
    }
}

/// Decode a Rhai map into a request body (unknown keys are ignored, `()` means unset).
pub fn from_map<T: serde::de::DeserializeOwned>(what: &str, map: Map) -> ScriptResult<T> {
    rhai::serde::from_dynamic(&map.into())
        .map_err(|e| user_error(format!("invalid {what} options: {e}")))
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    register_object(engine);
    register_functions(engine, bridge);
}

/// The `Snapshot` type: its properties and methods.
fn register_object(engine: &mut Engine) {
    engine
        .register_type_with_name::<SnapshotObj>("Snapshot")
        .register_get("id", |s: &mut SnapshotObj| s.data.id.clone())
        .register_get("name", |s: &mut SnapshotObj| s.data.name.clone())
        .register_get("status", |s: &mut SnapshotObj| s.data.status.clone())
        .register_get("status_message", |s: &mut SnapshotObj| {
            opt(s.data.status_message.clone())
        })
        .register_get("docker_image", |s: &mut SnapshotObj| {
            opt(s.data.docker_image.clone())
        })
        .register_get("image_digest", |s: &mut SnapshotObj| {
            opt(s.data.image_digest.clone())
        })
        .register_get("source_sandbox_id", |s: &mut SnapshotObj| {
            opt(s.data.source_sandbox_id.clone())
        })
        .register_get("fs_capacity_bytes", |s: &mut SnapshotObj| {
            s.data.fs_capacity_bytes
        })
        .register_get("fs_used_bytes", |s: &mut SnapshotObj| {
            opt(s.data.fs_used_bytes)
        })
        .register_get("created_at", |s: &mut SnapshotObj| {
            s.data.created_at.clone()
        })
        .register_get("updated_at", |s: &mut SnapshotObj| {
            s.data.updated_at.clone()
        })
        .register_fn("wait", |s: &mut SnapshotObj| s.wait(DEFAULT_WAIT_SECS))
        .register_fn("wait", |s: &mut SnapshotObj, timeout: i64| s.wait(timeout))
        .register_fn(
            "refresh",
            |s: &mut SnapshotObj| -> ScriptResult<SnapshotObj> {
                let id = s.data.id.clone();
                s.data =
                    s.bridge.call(
                        "getting snapshot",
                        |c| async move { c.get_snapshot(&id).await },
                    )?;
                Ok(s.clone())
            },
        )
        .register_fn("delete", |s: &mut SnapshotObj| -> ScriptResult<()> {
            let id = s.data.id.clone();
            s.bridge.call("deleting snapshot", |c| async move {
                c.delete_snapshot(&id).await
            })
        })
        .register_fn("to_map", |s: &mut SnapshotObj| -> ScriptResult<Dynamic> {
            rhai::serde::to_dynamic(&s.data)
        })
        .register_fn("to_string", |s: &mut SnapshotObj| {
            format!("Snapshot({})", s.data.id)
        })
        .register_fn("to_debug", |s: &mut SnapshotObj| {
            format!("Snapshot({})", s.data.id)
        });
}

/// The `snapshot_*` module functions.
fn register_functions(engine: &mut Engine, bridge: &Arc<Bridge>) {
    let b = bridge.clone();
    engine.register_fn(
        "snapshot_build",
        move |opts: Map| -> ScriptResult<SnapshotObj> {
            let req: CreateSnapshotRequest = from_map("snapshot_build", opts)?;
            let data = b.call("building snapshot", |c| async move {
                c.build_snapshot(&req).await
            })?;
            Ok(SnapshotObj::new(&b, data))
        },
    );
    let b = bridge.clone();
    engine.register_fn(
        "snapshot_capture",
        move |sandbox: &str, opts: Map| -> ScriptResult<SnapshotObj> {
            let req: CaptureSnapshotRequest = from_map("snapshot_capture", opts)?;
            let sandbox = sandbox.to_string();
            let data = b.call("capturing snapshot", |c| async move {
                c.capture_snapshot(&sandbox, &req).await
            })?;
            Ok(SnapshotObj::new(&b, data))
        },
    );
    for name in ["snapshot_get", "snapshot"] {
        let b = bridge.clone();
        engine.register_fn(name, move |id: &str| -> ScriptResult<SnapshotObj> {
            let id = id.to_string();
            let data = b.call(
                "getting snapshot",
                |c| async move { c.get_snapshot(&id).await },
            )?;
            Ok(SnapshotObj::new(&b, data))
        });
    }
    let b = bridge.clone();
    engine.register_fn("snapshot_list", move || -> ScriptResult<Array> {
        let list = b.call(
            "listing snapshots",
            |c| async move { c.list_snapshots().await },
        )?;
        Ok(list
            .into_iter()
            .map(|s| Dynamic::from(SnapshotObj::new(&b, s)))
            .collect())
    });
    let b = bridge.clone();
    engine.register_fn(
        "snapshot_wait",
        move |id: &str, timeout: i64| -> ScriptResult<SnapshotObj> {
            let (id, secs) = (id.to_string(), timeout.max(0) as u64);
            let data = b.call("", |c| async move { c.wait_snapshot(&id, secs).await })?;
            Ok(SnapshotObj::new(&b, data))
        },
    );
    let b = bridge.clone();
    engine.register_fn("snapshot_delete", move |id: &str| -> ScriptResult<()> {
        let id = id.to_string();
        b.call("deleting snapshot", |c| async move {
            c.delete_snapshot(&id).await
        })
    });
}
