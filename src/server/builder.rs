//! Snapshot builds: pull the image and write the snapshot's ext4 image in the background,
//! then record `ready` (with digest, size and run config) or `failed` with the reason.

use super::images::{self, BuildRequest, ImageError, RegistryCredentials};
use super::state::{AppState, now};
use super::store::StoreError;
use crate::api::{CreateSnapshotRequest, RunConfig, snapshot_status};

/// Inline registry credentials of a build request (the LangSmith CLI's `--registry-*` flags).
pub fn credentials(req: &CreateSnapshotRequest) -> Option<RegistryCredentials> {
    let username = req.registry_username.clone().unwrap_or_default();
    let password = req.registry_password.clone().unwrap_or_default();
    (!username.is_empty() || !password.is_empty())
        .then_some(RegistryCredentials { username, password })
}

/// Why a snapshot build failed; `Display` is the status message recorded on the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("snapshot was deleted while building")]
    Deleted,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("preparing the build directories: {0}")]
    Prepare(#[source] std::io::Error),
    #[error(transparent)]
    Image(#[from] ImageError),
}

pub fn spawn_build(
    state: AppState,
    id: String,
    reference: String,
    registry_url: Option<String>,
    credentials: Option<RegistryCredentials>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let result = build(
            &state,
            &id,
            &reference,
            registry_url.as_deref(),
            credentials.as_ref(),
        )
        .await;
        // The reason is kept as the snapshot's status message.
        if let Err(e) = finish(&state, &id, result.map_err(|e| e.to_string())).await {
            tracing::error!("recording the result of snapshot build {id}: {e}");
        }
    })
}

async fn build(
    state: &AppState,
    id: &str,
    reference: &str,
    registry_url: Option<&str>,
    credentials: Option<&RegistryCredentials>,
) -> Result<images::BuiltImage, BuildError> {
    let record = state.store.snapshot(id).await?.ok_or(BuildError::Deleted)?;
    let capacity = record.snapshot.fs_capacity_bytes as u64;
    let work_dir = state.dirs.scratch().join(format!("build-{id}"));
    let output = state.dirs.snapshot_image(id);
    let prepare = async {
        tokio::fs::create_dir_all(&work_dir).await?;
        tokio::fs::create_dir_all(state.dirs.snapshot_dir(id)).await?;
        tokio::fs::create_dir_all(state.dirs.blobs()).await
    };
    prepare.await.map_err(BuildError::Prepare)?;
    let blobs = state.dirs.blobs();
    let req = BuildRequest {
        reference,
        registry_url,
        credentials,
        blob_cache: &blobs,
        work_dir: &work_dir,
        capacity_bytes: capacity,
        output: &output,
    };
    let result = images::build_snapshot_image(&req).await;
    let _ = tokio::fs::remove_dir_all(&work_dir).await;
    Ok(result?)
}

/// Record a build's outcome: `ready` (taking its pending tag) or `failed` with the reason.
pub(super) async fn finish(
    state: &AppState,
    id: &str,
    result: Result<images::BuiltImage, String>,
) -> Result<(), StoreError> {
    let Some(mut rec) = state.store.snapshot(id).await? else {
        // Deleted while building: nothing to record, but its files must not linger.
        let _ = tokio::fs::remove_dir_all(state.dirs.snapshot_dir(id)).await;
        return Ok(());
    };
    let mut published = None;
    match result {
        Ok(built) => {
            let snap = &mut rec.snapshot;
            snap.status = snapshot_status::READY.into();
            snap.status_message = None;
            // Trees built without an image (the Debian default) have no manifest digest.
            snap.image_digest = Some(built.digest).filter(|d| !d.is_empty());
            snap.fs_used_bytes = Some(built.used_bytes as i64);
            // The image's own USER/WORKDIR/ENV, overridden by the request's run_config.
            let requested = snap.run_config.take().unwrap_or_default();
            let env: std::collections::BTreeMap<String, String> = built
                .config
                .env
                .iter()
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .chain(requested.env_vars.clone().unwrap_or_default())
                .collect();
            snap.run_config = Some(RunConfig {
                user: requested
                    .user
                    .or(built.config.user)
                    .filter(|u| !u.is_empty()),
                work_dir: requested
                    .work_dir
                    .or(built.config.working_dir)
                    .filter(|w| !w.is_empty()),
                env_vars: Some(env.clone()),
            });
            rec.image_env = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            rec.image_workdir = snap.run_config.as_ref().and_then(|r| r.work_dir.clone());
            if let Some(tag) = rec.pending_tag.take() {
                rec.snapshot.tags.push(tag.clone());
                published = Some(tag);
            }
        }
        Err(reason) => {
            rec.snapshot.status = snapshot_status::FAILED.into();
            rec.snapshot.status_message = Some(super::host_facts::scrub(&reason));
            let _ = tokio::fs::remove_dir_all(state.dirs.snapshot_dir(id)).await;
        }
    }
    rec.snapshot.updated_at = now();
    // Publishing `name:tag` moves the tag: whichever snapshot held it loses it.
    state.store.publish_snapshot(&rec, published).await
}
