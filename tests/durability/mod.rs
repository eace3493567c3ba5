//! Durable state: a server killed with SIGKILL at an awkward moment comes back with every
//! record truthful, running sandboxes still running, and nothing left behind once the
//! sandboxes are deleted (`crash`); many concurrent creates and deletes leave nothing
//! half-made (`concurrency`); a boot in progress holds up neither a rename nor a delete,
//! and creates hold up no reads (`slow_boot`); a container that ends on its own is reported
//! `failed` and starts again (`container_exit`); a registry that dies mid-pull fails the
//! build and leaves no partial blob (`registry_dies`); a full state disk refuses new work
//! clearly and loses nothing (`disk_full`).

mod concurrency;
mod container_exit;
mod crash;
mod disk_full;
mod registry_dies;
mod slow_boot;

use std::time::Duration;

use serde_json::Value;

use crate::common::api::Api;
use crate::common::process::wait_for;

const MIB: i64 = 1 << 20;

/// Poll the sandbox `name` until its status is no longer `provisioning`; returns its JSON.
fn settled(api: &Api, name: &str) -> Value {
    wait_for(
        "the sandbox to leave provisioning",
        Duration::from_secs(120),
        || {
            let r = api.call("GET", &format!("/api/v2/sandboxes/boxes/{name}"), None);
            assert_eq!(r.status, 200, "{}", r.body);
            (r.body["status"] != "provisioning").then_some(r.body)
        },
    )
}
