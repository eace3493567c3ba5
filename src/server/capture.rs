//! `POST /boxes/{name}/snapshot`: capture a running sandbox's filesystem as a new snapshot.
//!
//! The sandbox is frozen while its merged root is written into a fresh ext4 image, so the
//! snapshot is consistent even while commands run; they carry on once it is thawed. The
//! answer comes at once (`building`); the copy finishes in the background like a build.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::builder;
use super::error::ApiError;
use super::images::{self, BuiltImage, ImageConfig};
use super::json::ApiJson;
use super::snapshots::DEFAULT_TAG;
use super::state::AppState;
use super::store::SnapshotRecord;
use super::validate;
use crate::api::error::kind;
use crate::api::{CaptureSnapshotRequest, Sandbox, Snapshot, status};

pub async fn capture(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<CaptureSnapshotRequest>,
) -> Result<(StatusCode, Json<Snapshot>), ApiError> {
    let sb = state
        .store
        .sandbox_by_name(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("sandbox '{name}' not found")))?;
    validate::snapshot_name(&req.name)?;
    let tag = req.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string());
    validate::tag(&tag)?;
    if req.checkpoint.is_some() {
        return Err(ApiError::BadRequest {
            error: kind::UNSUPPORTED,
            message: "the local backend keeps no checkpoints; capture without one to snapshot \
                      the sandbox as it is now"
                .into(),
        });
    }
    if sb.status != status::READY {
        return Err(ApiError::not_ready(format!(
            "sandbox '{name}' is {}: only a running sandbox can be captured; start it first",
            sb.status
        )));
    }
    let capacity = req
        .fs_capacity_bytes
        .or(sb.fs_capacity_bytes)
        .unwrap_or(super::snapshots::DEFAULT_CAPACITY);
    validate::capacity("fs_capacity_bytes", capacity)?;
    super::disk_space::ensure_room(state.dirs.root()).await?;
    let source = match sb.snapshot_id.as_deref() {
        Some(id) => state.store.snapshot(id).await.ok().flatten(),
        None => None,
    };

    let mut record = SnapshotRecord::building(&req.name, capacity, req.run_config.clone(), tag);
    record.snapshot.source_sandbox_id = Some(sb.id.clone());
    state.store.put_snapshot(&record).await?;
    let snapshot = record.snapshot;
    let config = inherited_config(&sb, source.as_ref());
    tokio::spawn(copy_in_background(
        state,
        sb.id,
        snapshot.id.clone(),
        capacity as u64,
        config,
    ));
    Ok((StatusCode::CREATED, Json(snapshot)))
}

/// What sandboxes booted from the capture run with: the source snapshot's image settings
/// with the sandbox's own run config layered on top (the request's run_config comes last,
/// in `builder::finish`).
fn inherited_config(sb: &Sandbox, source: Option<&SnapshotRecord>) -> ImageConfig {
    let mut env = source.map(|s| s.image_env.clone()).unwrap_or_default();
    let own = sb.run_config.clone().unwrap_or_default();
    for (k, v) in own.env_vars.unwrap_or_default() {
        env.retain(|kv| kv.split_once('=').map(|(key, _)| key) != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    let source_rc = source
        .and_then(|s| s.snapshot.run_config.clone())
        .unwrap_or_default();
    ImageConfig {
        env,
        working_dir: own.work_dir.or(source_rc.work_dir),
        user: own.user.or(source_rc.user),
        ..Default::default()
    }
}

async fn copy_in_background(
    state: AppState,
    sandbox_id: String,
    id: String,
    capacity: u64,
    config: ImageConfig,
) {
    let output = state.dirs.snapshot_image(&id);
    let result = async {
        tokio::fs::create_dir_all(state.dirs.snapshot_dir(&id))
            .await
            .map_err(|e| format!("preparing the snapshot directory: {e}"))?;
        // Hold the sandbox's lifecycle lock: a stop or delete waits for the copy.
        let _guard = state.locks.lock(&sandbox_id).await;
        let used = state
            .runtime
            .with_frozen_root(&sandbox_id, |root| async move {
                images::make_ext4(&root, capacity, &output).await
            })
            .await
            .map_err(|e| format!("capturing the sandbox: {e}"))?
            .map_err(|e| format!("capturing the sandbox: {e}"))?;
        Ok(BuiltImage {
            digest: String::new(),
            config,
            used_bytes: used,
        })
    }
    .await;
    if let Err(e) = builder::finish(&state, &id, result).await {
        tracing::error!("recording the capture {id}: {e}");
    }
}
