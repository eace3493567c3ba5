//! The LangSmith CLI's sandbox commands against the real server: exact JSON key order
//! plain confirmations, `--format pretty` tables, size-string errors and the
//! lifecycle commands' effects on a real sandbox. Shared helpers live here; the tests are in
//! the submodules.

mod errors;
mod exec;
mod exec_interrupt;
mod exec_tty;
mod sandboxes;
mod secrets;
mod service_urls;
mod snapshots;
mod table;

use serde_json::Value;

use crate::common::cli::{Cli, CliOutput};
use crate::common::{TestServer, image};

pub const SNAPSHOT_KEYS: [&str; 11] = [
    "id",
    "name",
    "docker_image",
    "image_digest",
    "source_sandbox_id",
    "status",
    "status_message",
    "fs_capacity_bytes",
    "fs_used_bytes",
    "created_at",
    "updated_at",
];
pub const SANDBOX_KEYS: [&str; 10] = [
    "id",
    "name",
    "snapshot_id",
    "vcpus",
    "mem_bytes",
    "fs_capacity_bytes",
    "status",
    "dataplane_url",
    "created_at",
    "updated_at",
];

pub fn ok(server: &TestServer, args: &[&str]) -> CliOutput {
    let out = Cli::new(server).args(args).run();
    assert_eq!(out.code, 0, "{args:?}: {} / {}", out.stdout, out.stderr);
    out
}

/// The message of the one-line `{"error": "…"}` a failed command prints (exit status 1).
pub fn failure(server: &TestServer, args: &[&str]) -> String {
    let out = Cli::new(server).args(args).run();
    assert_eq!(out.code, 1, "{args:?} should fail: {}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("{\"error\": \""), "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stderr).expect("the error line is JSON");
    v["error"].as_str().unwrap().to_string()
}

/// Top-level keys of a 2-space-indented JSON object, in printed order.
pub fn keys_in_order(object_text: &str) -> Vec<String> {
    object_text
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split_once('"').map(|(k, _)| k.to_string()))
        .collect()
}

/// `expected` in order, with absent optional keys skipped.
pub fn assert_key_order(object_text: &str, expected: &[&str]) {
    let keys = keys_in_order(object_text);
    let wanted: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|k| keys.iter().any(|got| got == k))
        .collect();
    assert_eq!(keys, wanted, "{object_text}");
    for must in ["id", "name", "status", "created_at", "updated_at"] {
        assert!(
            keys.iter().any(|k| k == must),
            "{must} missing: {object_text}"
        );
    }
}

pub fn build(server: &TestServer, name: &str) -> Value {
    let out = ok(
        server,
        &[
            "sandbox",
            "snapshot",
            "build",
            name,
            "--docker-image",
            image::tiny(),
            "--capacity",
            "64mb",
            "--wait",
        ],
    );
    assert_key_order(&out.stdout, &SNAPSHOT_KEYS);
    out.json()
}

pub fn create(server: &TestServer, name: &str, snapshot_id: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "sandbox",
        "create",
        name,
        "--snapshot-id",
        snapshot_id,
        "--wait",
    ];
    args.extend_from_slice(extra);
    let out = ok(server, &args);
    assert_key_order(&out.stdout, &SANDBOX_KEYS);
    out.json()
}
