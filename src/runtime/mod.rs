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

// ---- Temporary interface stubs (replaced by the runtime implementation) ----

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Running,
    Stopped,
    Absent,
}

#[derive(Clone)]
pub struct Runtime {
    config: RuntimeConfig,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        Ok(Runtime { config })
    }
    pub async fn start(&self, spec: &SandboxSpec) -> Result<(), RuntimeError> {
        Err(RuntimeError(format!(
            "runtime not implemented ({})",
            spec.id
        )))
    }
    pub async fn stop(&self, _id: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    pub async fn destroy(&self, _id: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    pub fn agent_socket(&self, id: &str) -> PathBuf {
        self.config
            .root
            .join("sandboxes")
            .join(id)
            .join("run/agent.sock")
    }
    pub async fn state(&self, _id: &str) -> ContainerState {
        ContainerState::Absent
    }
    pub async fn list(&self) -> Vec<String> {
        Vec::new()
    }
}
