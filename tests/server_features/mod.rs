//! Server features against the real server: registries used by snapshot builds,
//! snapshots by name, idle stop / delete after stop / `persistent: false`, and the default
//! snapshot built on first use; the open file limit raised at start-up.

mod default_snapshot;
mod dialled_ahead;
mod open_files;
mod private_registry;
mod proxy_rules;
mod reaper;
mod registries;
mod secrets;
mod service_domain;
mod warm_pool;

use std::time::Duration;

use serde_json::Value;

use crate::common::api::Api;
use crate::common::process::wait_for;

/// Poll the sandbox until its status is `want` (bounded), returning its JSON.
pub fn wait_for_status(api: &Api, name: &str, want: &str, limit: Duration) -> Value {
    wait_for(&format!("sandbox {name} to be {want}"), limit, || {
        let r = api.call("GET", &format!("/api/v2/sandboxes/boxes/{name}"), None);
        assert_eq!(r.status, 200, "{:?}", r.body);
        match r.body["status"].as_str() {
            Some(s) if s == want => Some(r.body),
            Some("failed") => panic!("sandbox {name} failed: {}", r.body),
            _ => None,
        }
    })
}
