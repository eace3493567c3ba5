//! Sandbox lifecycle work that outlives a request: boot, stop, destroy.
//!
//! Each operation runs in its own task (so a client hanging up never interrupts it half-way)
//! under the sandbox's lock (so two operations on one sandbox never interleave), and
//! persists the resulting status before anyone is told about it.

use tokio::task::JoinHandle;

use super::error::ApiError;
use super::state::{AppState, now};
use crate::api::{Sandbox, status};
use crate::runtime::SandboxSpec;

/// A sandbox's process limit, scaled to its memory: one process per 512 KiB, between 128
/// and 4096. A fork bomb then runs into the pids limit while memory is still free, so its
/// processes can run to their end; were memory exhausted first, thousands of processes
/// would stall in reclaim and the OOM killer would take many minutes to clear them.
pub fn pids_limit(mem_bytes: i64) -> i64 {
    (mem_bytes / (512 << 10)).clamp(128, 4096)
}

/// Wake a sandbox for a data-plane request: its `dataplane_url` stays valid across stop and
/// start, and a request to a stopped sandbox resumes it (`spec/control-plane.md`, Sandbox
/// fields). A stopped sandbox is marked `provisioning` and booted; a boot already under way
/// (a concurrent wake or start) is waited for. Returns the record as it stands afterwards
/// (`ready`, or whatever stopped the boot) for the caller to judge.
pub async fn wake(state: &AppState, id: &str) -> Result<Sandbox, ApiError> {
    let missing = || ApiError::NotFound(format!("sandbox '{id}' not found"));
    {
        let lock = state.sandbox_lock(id);
        let _guard = lock.lock().await;
        let mut sb = state.store.sandbox_by_id(id)?.ok_or_else(missing)?;
        if sb.status == status::STOPPED {
            tracing::info!("starting sandbox {} for a data-plane request", sb.name);
            sb.status = status::PROVISIONING.into();
            sb.status_message = None;
            sb.updated_at = now();
            state.store.update_sandbox(&sb)?;
        }
    }
    // The boot takes the same lock, so it runs after any boot already under way and does
    // nothing when that one has settled the status: awaiting it awaits both.
    let _ = spawn_boot(state.clone(), id.to_string()).await;
    state.store.sandbox_by_id(id)?.ok_or_else(missing)
}

/// Boot the sandbox (which must be `provisioning`) and record `ready` or `failed`.
pub fn spawn_boot(state: AppState, id: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let lock = state.sandbox_lock(&id);
        let _guard = lock.lock().await;
        let Ok(Some(sb)) = state.store.sandbox_by_id(&id) else {
            return;
        };
        if sb.status != status::PROVISIONING {
            return;
        }
        let outcome = match spec_for(&state, &sb) {
            Ok(spec) => state.runtime.start(&spec).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            // Leave nothing half-mounted behind a failed boot.
            let _ = state.runtime.stop(&id).await;
        }
        // Re-read: a delete may have been requested while booting.
        let Ok(Some(mut sb)) = state.store.sandbox_by_id(&id) else {
            return;
        };
        if sb.status != status::PROVISIONING {
            return;
        }
        match outcome {
            Ok(()) => {
                sb.status = status::READY.into();
                sb.status_message = None;
                sb.stopped_at = None;
            }
            Err(message) => {
                tracing::warn!("sandbox {} failed to start: {message}", sb.name);
                sb.status = status::FAILED.into();
                sb.status_message = Some(message);
            }
        }
        sb.updated_at = now();
        if let Err(e) = state.store.update_sandbox(&sb) {
            tracing::error!("recording the boot of sandbox {}: {e}", sb.name);
        }
    })
}

/// Stop the sandbox's container, keeping its filesystem, and record `stopped`. Only a
/// `ready` sandbox stops; the status is checked under the lock, so a concurrent delete or
/// start is never overwritten.
pub fn spawn_stop(state: AppState, id: String) -> JoinHandle<Result<(), ApiError>> {
    tokio::spawn(async move {
        let lock = state.sandbox_lock(&id);
        let _guard = lock.lock().await;
        let mut sb = state
            .store
            .sandbox_by_id(&id)?
            .ok_or_else(|| ApiError::NotFound(format!("sandbox {id} not found")))?;
        if sb.status != status::READY {
            return Err(ApiError::Conflict(format!(
                "sandbox '{}' cannot be stopped: it is {} (only ready sandboxes stop)",
                sb.name, sb.status
            )));
        }
        state
            .runtime
            .stop(&id)
            .await
            .map_err(|e| ApiError::Internal(format!("stopping sandbox '{}': {e}", sb.name)))?;
        let ts = now();
        sb.status = status::STOPPED.into();
        sb.status_message = None;
        sb.stopped_at = Some(ts.clone());
        sb.updated_at = ts;
        state.store.update_sandbox(&sb)?;
        Ok(())
    })
}

/// Destroy the sandbox (container, mounts, files) and forget it.
pub fn spawn_destroy(state: AppState, id: String) -> JoinHandle<Result<(), String>> {
    tokio::spawn(async move {
        let lock = state.sandbox_lock(&id);
        let _guard = lock.lock().await;
        state
            .runtime
            .destroy(&id)
            .await
            .map_err(|e| e.to_string())?;
        state.store.delete_sandbox(&id).map_err(|e| e.to_string())?;
        state.forget_lock(&id);
        Ok(())
    })
}

/// What the runtime needs to run this sandbox: its snapshot, resources and environment.
fn spec_for(state: &AppState, sb: &Sandbox) -> Result<SandboxSpec, String> {
    let snapshot_id = sb.snapshot_id.clone().unwrap_or_default();
    let snap = state
        .store
        .snapshot(&snapshot_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("snapshot {snapshot_id} no longer exists"))?;
    let mut env = snap.image_env.clone();
    if let Some(vars) = sb.run_config.as_ref().and_then(|r| r.env_vars.as_ref()) {
        env.retain(|kv| {
            !vars
                .keys()
                .any(|k| kv.split_once('=').map(|(a, _)| a) == Some(k))
        });
        env.extend(vars.iter().map(|(k, v)| format!("{k}={v}")));
    }
    Ok(SandboxSpec {
        id: sb.id.clone(),
        hostname: sb.name.clone(),
        snapshot_image: state.dirs.snapshot_image(&snap.snapshot.id),
        cpu_millicores: sb.cpu_millicores.unwrap_or(1000),
        mem_bytes: sb.mem_bytes.unwrap_or(1 << 30),
        fs_capacity_bytes: sb
            .fs_capacity_bytes
            .unwrap_or(snap.snapshot.fs_capacity_bytes),
        pids_limit: pids_limit(sb.mem_bytes.unwrap_or(1 << 30)),
        env,
        cwd: sb
            .run_config
            .as_ref()
            .and_then(|r| r.work_dir.clone())
            .or(snap.image_workdir.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::pids_limit;

    #[test]
    fn the_pids_limit_scales_with_memory_within_bounds() {
        assert_eq!(pids_limit(256 << 20), 512);
        assert_eq!(pids_limit(1 << 30), 2048);
        assert_eq!(pids_limit(16 << 20), 128);
        assert_eq!(pids_limit(64 << 30), 4096);
    }
}
