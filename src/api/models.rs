//! Control-plane resource models and request bodies.
//!
//! Response structs are lenient on input (every field defaults) so the client tolerates any
//! conforming server, and complete on output so the local server answers what the official
//! SDK reads. Request structs omit unset fields, as the official clients do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Sandbox status values. Kept as strings on the wire so a
/// client never fails on a status a newer server invents.
pub mod status {
    pub const PROVISIONING: &str = "provisioning";
    pub const READY: &str = "ready";
    pub const FAILED: &str = "failed";
    pub const STOPPED: &str = "stopped";
    pub const DELETING: &str = "deleting";
}

/// Snapshot status values.
pub mod snapshot_status {
    pub const BUILDING: &str = "building";
    pub const READY: &str = "ready";
    pub const FAILED: &str = "failed";
    pub const DELETING: &str = "deleting";
}

/// User, working directory and environment a process runs with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<BTreeMap<String, String>>,
}

/// A sandbox ("box") as the API returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sandbox {
    pub id: String,
    pub name: String,
    pub status: String,
    pub status_message: Option<String>,
    pub dataplane_url: Option<String>,
    pub snapshot_id: Option<String>,
    pub vcpus: Option<i64>,
    pub cpu_millicores: Option<i64>,
    pub mem_bytes: Option<i64>,
    pub fs_capacity_bytes: Option<i64>,
    pub idle_ttl_seconds: Option<i64>,
    pub delete_after_stop_seconds: Option<i64>,
    pub stopped_at: Option<String>,
    pub persistent: Option<bool>,
    pub run_config: Option<RunConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_delegation: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /boxes/{name}/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusResponse {
    pub status: String,
    pub status_message: Option<String>,
}

/// A snapshot as the API returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub status: String,
    pub status_message: Option<String>,
    pub fs_capacity_bytes: i64,
    pub fs_used_bytes: Option<i64>,
    pub docker_image: Option<String>,
    pub image_digest: Option<String>,
    pub registry_id: Option<String>,
    pub source_sandbox_id: Option<String>,
    pub tags: Vec<String>,
    pub run_config: Option<RunConfig>,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /boxes`. `sandboxes` is what the official SDK reads; `items` what paging clients read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxList {
    pub items: Vec<Sandbox>,
    pub sandboxes: Vec<Sandbox>,
    pub next_cursor: Option<String>,
    pub offset: i64,
}

/// `GET /snapshots`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotList {
    pub items: Vec<Snapshot>,
    pub snapshots: Vec<Snapshot>,
    pub next_cursor: Option<String>,
    pub offset: i64,
}

/// Body of `POST /boxes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateSandboxRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for_ready: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_millicores: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_capacity_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ttl_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_after_stop_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_config: Option<RunConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_delegation: Option<Value>,
}

/// Body of `PATCH /boxes/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateSandboxRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_millicores: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_capacity_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ttl_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_after_stop_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_config: Option<RunConfig>,
}

/// Body of `POST /snapshots` (build from an image). The three inline `registry_*` fields are
/// what the LangSmith CLI sends for `--registry-url/--registry-username/--registry-password`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateSnapshotRequest {
    pub name: String,
    pub docker_image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_capacity_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_config: Option<RunConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_password: Option<String>,
}

/// Body of `POST /boxes/{name}/snapshot` (capture).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaptureSnapshotRequest {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_capacity_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_config: Option<RunConfig>,
}
