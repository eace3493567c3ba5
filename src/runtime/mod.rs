//! Isolation: turns a sandbox specification into a running runc container whose root is an
//! overlay of a read-only snapshot image and a per-sandbox ext4 upper layer, with cgroup
//! limits, its own namespaces, a seccomp filter and the agent as PID 1.
//!
//! [`Runtime`] is the whole interface (with `network`'s addresses and egress sockets); the
//! submodules each own one piece: `layout`
//! (paths and names), `agent_files` (the agent executable every sandbox runs), `upper_image`
//! (the sandbox's own ext4 disk, grown on demand), `rootfs` (loop mounts and overlay),
//! `mount_table` (what is mounted where), `loop_attach` (binding an image to a loop device),
//! `loop_devices` (waiting until the kernel unbinds a disk's loop device), `live_settings`
//! (the hostname and limits a running sandbox takes on),
//! `id_range` + `idmapped` (the sandbox's user namespace: its host ids, and its disks
//! mounted so their files keep their image owners inside), `runc_view` (the paths runc is
//! given while it starts a sandbox), `view_template` (the small mount namespace each of
//! those views is copied from), `detached_mount` (copies of mounts, attached elsewhere),
//! `sealed_binary` (the copy of runc that `runc run` starts from), `namespace_thread`
//! (work done inside a sandbox's namespace by a thread made for it), `network` + `links`
//! (the sandbox's interfaces, its netfilter tables and the egress sockets),
//! `spawn_in_namespace` (starting `runc run` there without copying the server), `scratch`
//! (the small host tmpfs for the agent's socket and log), `bundle` + `hardening` (the OCI
//! config), `runc` (the runtime driver), `readiness` (reaching the agent and
//! waiting for it), `exit_watch` (noticing that a container ended), `sandbox`
//! (start/stop/destroy), `capture` (a consistent read of a running sandbox's files), `host`
//! (running host tools) and `error` (what failed, and where).
//!
//! The runtime keeps no per-sandbox lock: its caller (the server's `locks`) never runs two
//! operations on one sandbox at once.

mod agent_files;
mod blank_images;
mod bundle;
mod capture;
mod detached_mount;
mod error;
mod exit_watch;
mod hardening;
mod host;
mod id_range;
mod idmapped;
mod layout;
mod links;
mod live_settings;
mod loop_attach;
mod loop_devices;
mod mount_table;
mod namespace_thread;
pub mod network;
mod readiness;
mod rootfs;
mod runc;
mod runc_view;
mod sandbox;
mod scratch;
mod sealed_binary;
mod spawn_in_namespace;
#[cfg(test)]
mod test_support;
mod upper_image;
mod view_template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use agent_files::AgentFilesError;
pub use error::RuntimeError;
pub use exit_watch::ExitWatch;
pub use readiness::AgentError;
pub use readiness::healthz;
pub use sandbox::Started;

/// What the runtime needs to know to run one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Working directory of the agent (image `WorkingDir`); `/` when `None`.
    pub cwd: Option<String>,
    /// The server's egress CA (PEM), mounted read-only at `api::trust::EGRESS_CA` for the
    /// agent to add to the sandbox's trust store.
    pub egress_ca_pem: Option<String>,
}

/// Runtime settings chosen when the server starts.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory owned by the runtime (sandboxes, runc state, agent files).
    pub root: PathBuf,
    /// OCI runtime binary (`runc`, or a compatible one).
    pub runc: PathBuf,
}

/// What the OCI runtime says about a sandbox's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// The agent (PID 1) is alive.
    Running,
    /// The agent is alive but frozen (a capture was interrupted); `thaw` brings it back.
    Frozen,
    /// The container exists but its process has exited (or it never started).
    Stopped,
    /// No container by that id.
    Absent,
}

/// Runs sandboxes as hardened runc containers. Cheap to clone; all clones share state.
///
/// Operations on different sandboxes run concurrently. Operations that change one sandbox
/// (start, stop, destroy, a frozen read) must not overlap: the caller serialises them per
/// sandbox id (the server holds one lifecycle lock per sandbox).
#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    sandboxes: PathBuf,
    agent_dir: PathBuf,
    agent: agent_files::AgentEntry,
    runc: runc::Runc,
    /// What each start's view of the host is copied from.
    view_template: view_template::ViewTemplate,
    /// Bounds the teardowns (stop, destroy) running at once. An API that acknowledges a
    /// delete before its teardown lets a client ask for a thousand in a second; each spawns
    /// `runc` and `umount` processes, and all at once they would exhaust the host's memory
    /// instead of finishing a little later.
    teardowns: tokio::sync::Semaphore,
    /// Bounds the containers being launched at once (up to `runc run`'s return; the agent's
    /// boot is not counted), first come first served. A burst of
    /// creates all launching together share the CPUs evenly, so every one of them finishes
    /// near the end of the burst; in turns, the first finish early, and less contention
    /// (for the CPUs, the kernel's mount and cgroup locks) makes the whole burst shorter.
    /// 100 creates at once through the SDK on 2 CPUs, all at once against 8 at a time:
    /// p50 1.9–2.0 s against 1.1–1.3 s, p95 2.4–2.6 s against 2.0–2.1 s. (4 at a time
    /// did about as well, 2 worse, 1 twice as badly.)
    starts: tokio::sync::Semaphore,
}

/// Teardowns at once per CPU (each mostly waits on the kernel and on child processes).
const TEARDOWNS_PER_CPU: usize = 2;
/// Container launches at once per CPU (each also waits on runc's children and the agent).
const STARTS_PER_CPU: usize = 4;

impl Runtime {
    /// Prepares `config.root` and the agent files (from the running executable), and checks
    /// that the OCI runtime binary runs.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let exe = std::env::current_exe()
            .map_err(RuntimeError::io("locate", "the running executable"))?;
        Runtime::with_agent_executable(config, &exe)
    }

    /// Like [`Runtime::new`], with the agent taken from `agent_exe` instead of the running
    /// executable (for callers that are not the `langsmith` binary themselves, e.g. tests).
    pub fn with_agent_executable(
        config: RuntimeConfig,
        agent_exe: &Path,
    ) -> Result<Runtime, RuntimeError> {
        layout::create_private_dir(&config.root)?;
        let root = config
            .root
            .canonicalize()
            .map_err(RuntimeError::io("resolve", &config.root))?;
        layout::validate_root(&root)?;
        let sandboxes = root.join("sandboxes");
        let runc_state = root.join("runc");
        layout::create_private_dir(&sandboxes)?;
        layout::create_private_dir(&runc_state)?;

        let mut runc = runc::Runc::new(config.runc.clone(), runc_state);
        runc.check()?;
        runc.seal();
        let agent_dir = root.join("agent");
        let agent = agent_files::install(agent_exe, &agent_dir)?;
        // runc as `PATH` finds it (without the sealed copy it is started by that path) and
        // where its links lead.
        let mut needed = vec![root.clone(), PathBuf::from(runc_view::ROOT)];
        if let Some(located) = runc.located() {
            needed.extend(located.canonicalize().ok());
            needed.push(located.to_path_buf());
        }
        let view_template = view_template::ViewTemplate::build(&needed)?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                root,
                sandboxes,
                agent_dir,
                agent,
                runc,
                view_template,
                teardowns: tokio::sync::Semaphore::new(TEARDOWNS_PER_CPU * cpus()),
                starts: tokio::sync::Semaphore::new(STARTS_PER_CPU * cpus()),
            }),
        })
    }

    /// The (canonical) root directory the runtime owns.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Connects to the agent of sandbox `id`, through the socket the runtime bound for it on
    /// the host (out of the sandbox's reach).
    pub async fn connect_agent(&self, id: &str) -> Result<tokio::net::UnixStream, RuntimeError> {
        layout::validate_id(id)?;
        readiness::connect(&self.layout(id).socket)
            .await
            .map_err(|reason| RuntimeError::AgentUnreachable {
                id: id.to_string(),
                reason,
            })
    }

    /// Set up the running sandbox's network (again: it is idempotent) and open the egress
    /// proxy's and DNS stub's sockets inside it (see [`network`]).
    pub async fn open_egress(&self, id: &str) -> Result<network::EgressSockets, RuntimeError> {
        layout::validate_id(id)?;
        let pid_file = self.layout(id).pid_file;
        host::blocking("network set-up", move || {
            network::configure(init_pid(&pid_file)?)
        })
        .await
    }

    /// A watch on the running sandbox's container that resolves when it ends, whoever
    /// ended it (see [`ExitWatch`]).
    pub async fn exit_watch(&self, id: &str) -> Result<ExitWatch, RuntimeError> {
        layout::validate_id(id)?;
        let pid_file = self.layout(id).pid_file;
        let container = layout::container_id(id);
        host::blocking("watching", move || {
            ExitWatch::open(init_pid(&pid_file)? as i32, &container)
        })
        .await
    }

    /// Where runc is shown sandbox `id` while it starts it: a host directory that only ever
    /// holds an empty `rootfs/` (its mounts live in a namespace of runc's own), gone once
    /// the sandbox stops.
    pub fn view_dir(&self, id: &str) -> PathBuf {
        view_dir(&self.inner.root, id)
    }

    /// Host path of the sandbox's upper-layer image (its writable files).
    pub fn upper_image(&self, id: &str) -> PathBuf {
        self.layout(id).upper_image
    }

    /// The container's state as the OCI runtime reports it.
    pub async fn state(&self, id: &str) -> ContainerState {
        if layout::validate_id(id).is_err() {
            return ContainerState::Absent;
        }
        self.inner.runc.state(&layout::container_id(id)).await
    }

    /// Ids of the sandboxes that have a container (running or not), for re-adoption after a
    /// server restart. Empty if the OCI runtime cannot list.
    pub async fn list(&self) -> Vec<String> {
        match self.inner.runc.list().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("listing containers failed: {e}");
                Vec::new()
            }
        }
    }

    /// Ids of every sandbox the runtime holds anything of: a container, or a directory (a
    /// start cut short by a crash may leave mounts and files but no container yet). For
    /// recovery to destroy what no record claims.
    pub async fn all_ids(&self) -> Vec<String> {
        let mut ids = self.list().await;
        let sandboxes = self.inner.sandboxes.clone();
        let dirs = tokio::task::spawn_blocking(move || {
            std::fs::read_dir(sandboxes)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| layout::validate_id(name).is_ok())
                .collect::<Vec<String>>()
        })
        .await
        .unwrap_or_default();
        for id in dirs {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    fn layout(&self, id: &str) -> layout::SandboxLayout {
        layout::SandboxLayout::new(&self.inner.sandboxes, id)
    }
}

/// [`Runtime::view_dir`] for the runtime whose (canonical) root is `root`, for whoever
/// cleans up after a runtime that is gone.
pub fn view_dir(root: &Path, id: &str) -> PathBuf {
    runc_view::RuncView::of(root, id).dir
}

/// The host process id of a container's init, from the pid file runc wrote.
fn init_pid(pid_file: &Path) -> Result<u32, RuntimeError> {
    let text = std::fs::read_to_string(pid_file).map_err(RuntimeError::io("read", pid_file))?;
    text.trim()
        .parse::<u32>()
        .map_err(|_| RuntimeError::io("parse", pid_file)(std::io::Error::other("not a process id")))
}

/// The CPUs this process may use (1 when that cannot be told).
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
