//! The lifecycle of one sandbox: start (mount, bundle, `runc run -d`, wait for the agent),
//! stop (delete the container, unmount, keep the upper image) and destroy (stop and remove
//! every file). Each step tolerates the partial state a crash or a failed start leaves.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;

use super::id_range::{self, IdRange};
use super::layout::{self, SandboxLayout, container_id};
use super::runc_view::{RuncView, ViewContents};
use super::{
    ContainerState, Runtime, RuntimeError, SandboxSpec, bundle, host, live_settings, mount_table,
    readiness, rootfs, scratch,
};
use crate::phases::Phases;

/// What [`Runtime::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// The container was running already: it took on the spec's hostname and limits, and
    /// kept everything else (its network included).
    Resumed,
    /// A new container was launched.
    Launched,
}

/// How much of the end of `agent.log` goes into a start error.
const LOG_TAIL_BYTES: u64 = 4096;

impl Runtime {
    /// Starts the sandbox: mounts its root filesystem (creating the upper image on first
    /// start), runs the container and waits until the agent answers; on failure nothing
    /// stays mounted or running. Starting a running sandbox waits for its agent and gives it
    /// the spec's hostname and limits (the runtime's `live_settings` module); if that fails,
    /// the container keeps running as it was. Says which of the two it did.
    pub async fn start(&self, spec: &SandboxSpec) -> Result<Started, RuntimeError> {
        validate(spec)?;
        let mut phases = Phases::start("start", &spec.id);
        let layout = self.layout(&spec.id);
        layout.check_socket_path()?;
        let container = container_id(&spec.id);
        let state = self.inner.runc.state(&container).await;
        phases.mark("state");
        match state {
            ContainerState::Running | ContainerState::Frozen => {
                if state == ContainerState::Frozen {
                    self.inner.runc.set_frozen(&container, false).await?;
                }
                self.await_agent(&spec.id, &layout, &container).await?;
                phases.mark("agent ready");
                let spec = spec.clone();
                host::blocking("applying live settings", move || {
                    let pid = super::init_pid(&layout.pid_file)?;
                    live_settings::apply(&layout, &spec, &container, pid)
                })
                .await?;
                phases.mark("live settings");
                phases.finish();
                return Ok(Started::Resumed);
            }
            // A dead agent or a half-made container from a crash: clear it and start afresh.
            ContainerState::Stopped => self.teardown(&layout, &container).await?,
            ContainerState::Absent => {
                let view = self.view(&layout);
                if left_anything(&layout, &view).await? {
                    unmount(&layout, &view).await?;
                }
            }
        }
        phases.mark("clear");
        // The semaphore is never closed: an error would only mean there is no turn to wait for.
        let turn = self.inner.starts.acquire().await.ok();
        phases.mark("turn");
        layout.create_dirs()?;
        let range = self.claim_ids(&layout).await?;
        phases.mark("ids");
        let view = RuncView::of(&self.inner.root, &spec.id);
        let mounted = async {
            scratch::mount(&layout).await?;
            phases.mark("scratch");
            let capacity = spec.fs_capacity_bytes as u64;
            rootfs::mount_layers(&layout, range, &spec.snapshot_image, capacity, &mut phases).await
        };
        if let Err(error) = mounted.await {
            // Keep the first error; the cleanup's own failure would only hide it.
            let _ = unmount(&layout, &view).await;
            let _ = self.release_ids(&layout).await;
            return Err(error);
        }
        let launched = async {
            self.launch(spec, &layout, &view, range, &container, &mut phases)
                .await?;
            // The turn covers the launch, not the agent's boot: that runs the image's boot
            // hooks (untrusted, up to their time budget), which must not hold up other starts.
            drop(turn);
            self.await_agent(&spec.id, &layout, &container).await?;
            phases.mark("agent ready");
            Ok(())
        }
        .await;
        if let Err(mut error) = launched {
            // Bounded like every teardown: a burst of failed boots must not run all of
            // theirs at once.
            let _turn = self.inner.teardowns.acquire().await;
            if let Err(cleanup) = self.teardown(&layout, &container).await {
                tracing::warn!(sandbox = %spec.id, "cleanup after a failed start failed: {cleanup}");
            }
            // The live log went with its tmpfs; its end was saved next to the sandbox.
            if let RuntimeError::NotReady { log, .. } = &mut error {
                *log = layout.saved_log.clone();
            }
            return Err(error);
        }
        phases.finish();
        Ok(Started::Launched)
    }

    /// Stops the sandbox: kills every process, deletes the container and unmounts its
    /// filesystems. The upper image stays, so the next start sees the same files.
    pub async fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        layout::validate_id(id)?;
        let _turn = self.inner.teardowns.acquire().await;
        let phases = Phases::start("stop", id);
        self.teardown(&self.layout(id), &container_id(id)).await?;
        phases.finish();
        Ok(())
    }

    /// Stops the sandbox and removes everything it had: container, mounts, loop devices,
    /// directory and upper image. Safe to repeat, after a crash, or for an unknown id.
    pub async fn destroy(&self, id: &str) -> Result<(), RuntimeError> {
        layout::validate_id(id)?;
        let _turn = self.inner.teardowns.acquire().await;
        let mut phases = Phases::start("destroy", id);
        let layout = self.layout(id);
        self.teardown(&layout, &container_id(id)).await?;
        phases.mark("teardown");
        // Never delete recursively through a mount: that would reach into another filesystem.
        // (The view runc had is gone with the teardown.)
        let remaining = mount_table::points_under(&layout.dir).await?;
        if !remaining.is_empty() {
            return Err(RuntimeError::StillMounted {
                id: id.to_string(),
                mounts: remaining
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // Freeing a large upper image can take a while: off the async workers.
        let dir = layout.dir.clone();
        let removed = tokio::task::spawn_blocking(move || fs::remove_dir_all(&dir))
            .await
            .unwrap_or_else(|panicked| Err(std::io::Error::other(panicked)));
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RuntimeError::io("remove", &layout.dir)(e))
            }
            _ => {
                phases.mark("remove files");
                phases.finish();
                Ok(())
            }
        }
    }

    /// Claims a host id range for the sandbox's start (see `id_range`).
    async fn claim_ids(&self, layout: &SandboxLayout) -> Result<IdRange, RuntimeError> {
        let (root, layout) = (self.inner.root.clone(), layout.clone());
        host::blocking("claiming ids", move || {
            id_range::claim(&root, &layout.id, &layout.dir)
        })
        .await
    }

    fn view(&self, layout: &SandboxLayout) -> RuncView {
        RuncView::of(&self.inner.root, &layout.id)
    }

    /// Releases the sandbox's id range once nothing of it runs.
    async fn release_ids(&self, layout: &SandboxLayout) -> Result<(), RuntimeError> {
        let (root, id) = (self.inner.root.clone(), layout.id.clone());
        host::blocking("releasing ids", move || id_range::release(&root, &id)).await
    }

    /// Writes the bundle, builds what runc sees in a mount namespace of its own and runs the
    /// container in it (the container keeps its own copies of those mounts; the namespace
    /// goes with its descriptor). The agent may still be starting.
    async fn launch(
        &self,
        spec: &SandboxSpec,
        layout: &SandboxLayout,
        view: &RuncView,
        range: IdRange,
        container: &str,
        phases: &mut Phases,
    ) -> Result<(), RuntimeError> {
        bundle::write(&bundle::BundleInputs {
            spec,
            layout,
            view,
            range,
            agent_args: &self.inner.agent.args,
        })?;
        phases.mark("bundle");
        let contents = ViewContents {
            agent_dir: self.inner.agent_dir.clone(),
            hostname: spec.hostname.clone(),
            resolv_conf: super::network::resolv_conf(),
            egress_ca: spec.egress_ca_pem.clone(),
        };
        let (view_copy, layout_copy) = (view.clone(), layout.clone());
        let template = self.inner.view_template.clone();
        let namespace = host::blocking("runc's view", move || {
            view_copy.prepare(&template, &layout_copy, range, &contents)
        })
        .await?;
        phases.mark("view");
        // Bound here, on the host, and handed to the agent: the sandbox never sees its path.
        // Our copy closes once runc has passed it on, so a dead agent refuses connections.
        let agent_socket = bind_agent_socket(layout)?;
        let ran = self
            .inner
            .runc
            .run_detached(container, layout, &agent_socket, namespace.as_fd())
            .await;
        drop(agent_socket);
        drop(namespace);
        if let Err(e) = ran {
            return Err(not_ready(&spec.id, layout, e.to_string()));
        }
        phases.mark("runc run");
        Ok(())
    }

    async fn await_agent(
        &self,
        id: &str,
        layout: &SandboxLayout,
        container: &str,
    ) -> Result<(), RuntimeError> {
        readiness::wait_for_agent(&layout.socket, &self.inner.runc, container)
            .await
            .map_err(|reason| not_ready(id, layout, reason.to_string()))
    }

    /// Deletes the container (if any) and unmounts everything under the sandbox directory.
    async fn teardown(&self, layout: &SandboxLayout, container: &str) -> Result<(), RuntimeError> {
        self.inner.runc.delete(container).await?;
        unmount(layout, &self.view(layout)).await?;
        self.release_ids(layout).await?;
        // The run tmpfs is gone; a sandbox of an older layout had `run/` on the host disk,
        // where it may have left anything at the socket path.
        scratch::remove_any(&layout.socket)?;
        scratch::remove_any(&layout.pid_file)
    }
}

/// Whether an earlier start of this sandbox left its directory or runc's view of it behind.
/// Anything mounted for a sandbox is mounted under one of the two, so a sandbox starting for
/// the first time has nothing to clear, and does not read the host's mount table, which
/// grows with every running sandbox (a burst of creates read it at every start).
async fn left_anything(layout: &SandboxLayout, view: &RuncView) -> Result<bool, RuntimeError> {
    let dirs = [layout.dir.clone(), view.dir.clone()];
    host::blocking("looking for an earlier start", move || {
        for dir in &dirs {
            match dir.try_exists() {
                Ok(false) => {}
                Ok(true) => return Ok(true),
                Err(e) => return Err(RuntimeError::io("inspect", dir)(e)),
            }
        }
        Ok(false)
    })
    .await
}

/// Saves the end of the agent's log, then unmounts everything under the sandbox directory
/// and removes the (never mounted) directories of runc's view.
async fn unmount(layout: &SandboxLayout, view: &RuncView) -> Result<(), RuntimeError> {
    scratch::save_log_tail(layout);
    let removed = view.remove();
    rootfs::unmount_all(layout).await?;
    removed
}

/// Rejects specs that cannot produce a working container, before anything is touched.
fn validate(spec: &SandboxSpec) -> Result<(), RuntimeError> {
    layout::validate_id(&spec.id)?;
    let invalid = |reason: String| {
        Err(RuntimeError::InvalidSpec {
            id: spec.id.clone(),
            reason,
        })
    };
    let hostname_ok = !spec.hostname.is_empty()
        && spec.hostname.len() <= 63
        && spec
            .hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !hostname_ok {
        return invalid(format!(
            "hostname {:?} must be 1-63 characters from A-Z a-z 0-9 - .",
            spec.hostname
        ));
    }
    for (name, value) in [
        ("cpu_millicores", spec.cpu_millicores),
        ("mem_bytes", spec.mem_bytes),
        ("fs_capacity_bytes", spec.fs_capacity_bytes),
        ("pids_limit", spec.pids_limit),
    ] {
        if value <= 0 {
            return invalid(format!("{name} must be positive, got {value}"));
        }
    }
    if let Some(entry) = spec
        .env
        .iter()
        .find(|e| !e.contains('=') || e.contains('\0'))
    {
        return invalid(format!("environment entry {entry:?} is not KEY=VALUE"));
    }
    if let Some(cwd) = &spec.cwd
        && !cwd.starts_with('/')
    {
        return invalid(format!("working directory {cwd:?} must be absolute"));
    }
    if !spec.snapshot_image.is_file() {
        return Err(RuntimeError::SnapshotMissing(spec.snapshot_image.clone()));
    }
    Ok(())
}

fn not_ready(id: &str, layout: &SandboxLayout, reason: String) -> RuntimeError {
    RuntimeError::NotReady {
        id: id.to_string(),
        reason,
        log: layout.agent_log.clone(),
        log_tail: log_tail(&layout.agent_log),
    }
}

/// The last few KiB of a log file, or a note saying why there is none.
fn log_tail(path: &std::path::Path) -> String {
    let bytes = scratch::read_tail(path, LOG_TAIL_BYTES);
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if text.is_empty() {
        "(empty or no log)".to_string()
    } else {
        text
    }
}

/// The agent's listening socket at its host path (replacing one a previous run left), for
/// root alone.
fn bind_agent_socket(layout: &SandboxLayout) -> Result<UnixListener, RuntimeError> {
    scratch::remove_any(&layout.socket)?;
    let listener =
        UnixListener::bind(&layout.socket).map_err(RuntimeError::io("bind", &layout.socket))?;
    fs::set_permissions(&layout.socket, fs::Permissions::from_mode(0o600))
        .map_err(RuntimeError::io("restrict", &layout.socket))?;
    Ok(listener)
}
