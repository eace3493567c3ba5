//! Start-up reconciliation: after a crash or restart, make every record tell the truth.
//!
//! Builds that were running are failed (their scratch space is gone); sandboxes are matched
//! with the containers that still run; interrupted creates and starts are finished;
//! half-finished deletes are finished; containers no record knows about are destroyed.

use super::lifecycle;
use super::state::{AppState, now};
use crate::api::{snapshot_status, status};
use crate::runtime::ContainerState;

pub async fn recover(state: &AppState) {
    if let Err(e) = recover_snapshots(state).await {
        tracing::error!("recovering snapshots: {e}");
    }
    if let Err(e) = recover_sandboxes(state).await {
        tracing::error!("recovering sandboxes: {e}");
    }
}

async fn recover_snapshots(state: &AppState) -> Result<(), super::store::StoreError> {
    for mut rec in state.store.snapshots().await? {
        if rec.snapshot.status == snapshot_status::BUILDING {
            rec.snapshot.status = snapshot_status::FAILED.into();
            rec.snapshot.status_message =
                Some("the server stopped while this snapshot was building; build it again".into());
            rec.snapshot.updated_at = now();
            let _ = tokio::fs::remove_dir_all(state.dirs.snapshot_dir(&rec.snapshot.id)).await;
            state.store.put_snapshot(&rec).await?;
        }
    }
    Ok(())
}

/// Runs before the server serves, and calls the runtime for each sandbox before it hands
/// that sandbox to a lifecycle task (which takes its lock), so it needs no lock of its own.
async fn recover_sandboxes(state: &AppState) -> Result<(), super::store::StoreError> {
    let known = state.store.sandboxes().await?;
    // Warm sandboxes (see `warm_pool`) have no record, and a crash may cut one's start short
    // before its container exists: every id the runtime holds anything of counts.
    for orphan in state.runtime.all_ids().await {
        if !known.iter().any(|s| s.id == orphan) {
            tracing::warn!("destroying what is left of unknown sandbox {orphan}");
            let _ = state.runtime.destroy(&orphan).await;
        }
    }
    for mut sb in known {
        // A capture interrupted by the crash leaves its sandbox frozen.
        if let Err(e) = state.runtime.thaw(&sb.id).await {
            tracing::warn!("thawing sandbox {}: {e}", sb.name);
        }
        let running = state.runtime.state(&sb.id).await == ContainerState::Running;
        match sb.status.as_str() {
            status::DELETING => {
                // Gone for its user already (name free, not listed): finished in the
                // background, so many pending teardowns do not hold up the server's start.
                drop(lifecycle::spawn_destroy(state.clone(), sb.id.clone()));
                continue;
            }
            status::PROVISIONING => {
                // A create or start the crash interrupted: finish it. The boot reuses a
                // container that runs, replaces a half-made one, and records `ready` or
                // `failed` with the reason.
                drop(lifecycle::spawn_boot(state.clone(), sb.id.clone()));
                continue;
            }
            status::READY if running => {
                // The sockets of its network died with the old process: open them again.
                if let Err(e) = lifecycle::attach_egress(state, &sb, None).await {
                    tracing::warn!("sandbox {} has no way out: {e}", sb.name);
                }
                sb.status = status::READY.into();
                sb.status_message = None;
                super::container_exit::watch(state.clone(), sb.id.clone());
            }
            status::READY => {
                // Its container is gone (e.g. the machine restarted): clean up what is
                // left and report it stopped; its files are kept and `start` brings it back.
                let _ = state.runtime.stop(&sb.id).await;
                sb.status = status::STOPPED.into();
                sb.status_message =
                    Some("the sandbox was not running when the server restarted".into());
                sb.stopped_at = Some(now());
            }
            _ => continue,
        }
        tracing::info!("sandbox {} recovered as {}", sb.name, sb.status);
        sb.updated_at = now();
        state.store.update_sandbox(&sb).await?;
    }
    Ok(())
}
