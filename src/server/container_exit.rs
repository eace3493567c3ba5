//! A sandbox whose container ends without being asked to is recorded `failed`, with a
//! message that says so, within moments: data-plane requests then answer that it is not
//! ready (and why) instead of failing to reach its agent, and `start` brings it back with
//! its files.
//!
//! Each `ready` sandbox has a task waiting on its container's exit (a pidfd, see
//! [`crate::runtime::ExitWatch`]), started when a boot succeeds and again by recovery for
//! the containers that survived a server restart. A stop, delete or restart also ends the
//! process: the task then takes the sandbox's lifecycle lock, so whatever was under way
//! finishes first, and changes nothing unless the record still says `ready` while no
//! container runs.

use super::state::{AppState, now};
use crate::api::status;
use crate::runtime::ContainerState;

/// What a sandbox whose container ended on its own says.
pub const ENDED_ON_ITS_OWN: &str = "the sandbox's init process exited on its own (a process in \
     it ended PID 1, or the host killed it); its files are kept: start it again";

/// Watch the running sandbox `id` until its container ends; record `failed` if nobody
/// asked for that.
pub fn watch(state: AppState, id: String) {
    tokio::spawn(async move {
        let watch = match state.runtime.exit_watch(&id).await {
            Ok(watch) => watch,
            Err(e) => {
                tracing::warn!(sandbox = %id, "cannot watch the container for its end: {e}");
                return;
            }
        };
        watch.exited().await;
        let _guard = state.locks.lock(&id).await;
        if state.runtime.state(&id).await == ContainerState::Running {
            // Stopped and started again meanwhile: the new container has its own watch.
            return;
        }
        match state.store.sandbox_by_id(&id).await {
            Ok(Some(sb)) if sb.status == status::READY => {}
            _ => return,
        }
        state.egress.detach(&id);
        if let Err(e) = state.runtime.stop(&id).await {
            tracing::warn!(sandbox = %id, "cleaning up after the container ended: {e}");
        }
        let recorded = state
            .store
            .modify_sandbox(&id, |sb| {
                let changed = sb.status == status::READY;
                if changed {
                    let ts = now();
                    sb.status = status::FAILED.into();
                    sb.status_message = Some(ENDED_ON_ITS_OWN.into());
                    sb.stopped_at = Some(ts.clone());
                    sb.updated_at = ts;
                }
                Ok::<_, super::store::StoreError>(changed)
            })
            .await;
        match recorded {
            Ok(Some((sb, true))) => {
                tracing::warn!("sandbox {}: {ENDED_ON_ITS_OWN}", sb.name)
            }
            Ok(_) => {}
            Err(e) => tracing::error!("recording the end of sandbox {id}: {e}"),
        }
    });
}
