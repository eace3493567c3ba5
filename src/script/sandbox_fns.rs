//! The `sandbox_*` module functions: create, get (also as `sandbox(name)`), resolve, list,
//! update, delete, start, stop, wait.

use std::sync::Arc;

use rhai::{Array, Engine, Map};

use super::bridge::{Bridge, ScriptResult};
use super::sandbox::{SandboxObj, create_request, resolve_ready, update_request, wrap, wrap_all};

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    let b = bridge.clone();
    engine.register_fn(
        "sandbox_create",
        move |opts: Map| -> ScriptResult<SandboxObj> {
            let req = create_request(opts)?;
            let data = b.call("creating sandbox", |c| async move {
                c.create_sandbox(&req).await
            })?;
            Ok(wrap(&b, data))
        },
    );
    for name in ["sandbox_get", "sandbox"] {
        let b = bridge.clone();
        engine.register_fn(name, move |name: &str| -> ScriptResult<SandboxObj> {
            let name = name.to_string();
            let data = b.call(
                "getting sandbox",
                |c| async move { c.get_sandbox(&name).await },
            )?;
            Ok(wrap(&b, data))
        });
    }
    let b = bridge.clone();
    engine.register_fn("sandbox_resolve", move |name: &str| resolve_ready(&b, name));
    let b = bridge.clone();
    engine.register_fn("sandbox_list", move || -> ScriptResult<Array> {
        let list = b.call(
            "listing sandboxes",
            |c| async move { c.list_sandboxes().await },
        )?;
        Ok(wrap_all(&b, list))
    });
    let b = bridge.clone();
    engine.register_fn(
        "sandbox_update",
        move |name: &str, opts: Map| -> ScriptResult<SandboxObj> {
            let (name, req) = (name.to_string(), update_request(opts)?);
            let data = b.call("updating sandbox", |c| async move {
                c.update_sandbox(&name, &req).await
            })?;
            Ok(wrap(&b, data))
        },
    );
    let b = bridge.clone();
    engine.register_fn("sandbox_delete", move |name: &str| -> ScriptResult<()> {
        let name = name.to_string();
        b.call("deleting sandbox", |c| async move {
            c.delete_sandbox(&name).await
        })
    });
    let b = bridge.clone();
    engine.register_fn("sandbox_start", move |name: &str| -> ScriptResult<()> {
        let name = name.to_string();
        b.call("starting sandbox", |c| async move {
            c.start_sandbox(&name).await
        })
    });
    let b = bridge.clone();
    engine.register_fn("sandbox_stop", move |name: &str| -> ScriptResult<()> {
        let name = name.to_string();
        b.call("stopping sandbox", |c| async move {
            c.stop_sandbox(&name).await
        })
    });
    let b = bridge.clone();
    engine.register_fn(
        "sandbox_wait",
        move |name: &str, timeout: i64| -> ScriptResult<()> {
            let (name, secs) = (name.to_string(), timeout.max(0) as u64);
            b.call("", |c| async move { c.wait_sandbox(&name, secs).await })
                .map(drop)
        },
    );
}
