//! Isolation: turns a sandbox specification into a running runc container whose root is an
//! overlay of a read-only snapshot image and a per-sandbox ext4 upper layer, with cgroup
//! limits, its own namespaces, a seccomp filter and the agent as PID 1.

use std::path::PathBuf;

/// What the runtime needs to know to run one sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Sandbox UUID; names the container and its directory.
    pub id: String,
    /// Hostname inside the sandbox.
    pub hostname: String,
    /// The snapshot's ext4 image, mounted read-only as the overlay's lower layer.
    pub snapshot_image: PathBuf,
    /// CPU quota in millicores (1000 = one CPU).
    pub cpu_millicores: i64,
    /// Memory limit in bytes.
    pub mem_bytes: i64,
    /// Capacity of the writable upper layer in bytes.
    pub fs_capacity_bytes: i64,
    /// Maximum number of processes (fork-bomb guard).
    pub pids_limit: i64,
    /// `KEY=VALUE` environment of the agent, inherited by every command (image `Env`).
    pub env: Vec<String>,
}

/// Runtime settings chosen when the server starts.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory owned by the runtime (sandboxes, runc state, agent files).
    pub root: PathBuf,
    /// OCI runtime binary (`runc`, or a compatible one).
    pub runc: PathBuf,
}
