//! Snapshot endpoints: build from an image, get, list, delete.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::builder;
use super::error::ApiError;
use super::json::ApiJson;
use super::registries;
use super::state::AppState;
use super::store::SnapshotRecord;
use super::validate;
use crate::api::{CreateSnapshotRequest, Snapshot, SnapshotList, snapshot_status, status};

/// Capacity when a build request leaves `fs_capacity_bytes` out (the CLI's default too).
pub const DEFAULT_CAPACITY: i64 = 4 << 30;

/// Tag given to a build or capture that names none. A build could instead default to the
/// image's own tag; we always use `latest`, the tag LangSmith's API models default to, which
/// makes `snapshot: "<name>"` find the newest build.
pub const DEFAULT_TAG: &str = "latest";

pub async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateSnapshotRequest>,
) -> Result<impl IntoResponse, ApiError> {
    validate::snapshot_name(&req.name)?;
    if req.docker_image.trim().is_empty() {
        return Err(ApiError::validation(
            "docker_image",
            "docker_image is required, e.g. \"python:3.12-slim\"",
        ));
    }
    let capacity = req.fs_capacity_bytes.unwrap_or(DEFAULT_CAPACITY);
    validate::capacity("fs_capacity_bytes", capacity)?;
    let tag = req.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string());
    validate::tag(&tag)?;
    super::disk_space::ensure_room(state.dirs.root()).await?;
    // A stored registry (`registry_id`) wins over inline `registry_*` fields.
    let (registry_url, credentials) = match req.registry_id.as_deref().filter(|i| !i.is_empty()) {
        Some(id) => {
            let (url, credentials) = registries::for_build(&state, id).await?;
            (Some(url), credentials)
        }
        None => (
            req.registry_url.clone().filter(|u| !u.is_empty()),
            builder::credentials(&req),
        ),
    };

    let mut record = SnapshotRecord::building(&req.name, capacity, req.run_config.clone(), tag);
    record.snapshot.docker_image = Some(req.docker_image.trim().to_string());
    record.snapshot.registry_id = req.registry_id.clone().filter(|i| !i.is_empty());
    let snapshot = record.snapshot.clone();
    state.store.put_snapshot(&record).await?;
    builder::spawn_build(
        state.clone(),
        snapshot.id.clone(),
        req.docker_image.trim().to_string(),
        registry_url,
        credentials,
    );
    Ok((StatusCode::CREATED, Json(snapshot)))
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<validate::ListQuery>,
) -> Result<Json<SnapshotList>, ApiError> {
    let needle = q.name_contains.as_deref().map(str::to_lowercase);
    let all: Vec<Snapshot> = state
        .store
        .snapshots()
        .await?
        .into_iter()
        .map(|r| r.snapshot)
        .filter(|s| {
            needle
                .as_ref()
                .is_none_or(|n| s.name.to_lowercase().contains(n))
        })
        .filter(|s| q.status.as_ref().is_none_or(|st| &s.status == st))
        .collect();
    let (page, next) = validate::page(all, q.limit, q.offset)?;
    Ok(Json(SnapshotList {
        items: page.clone(),
        snapshots: page,
        next_cursor: None,
        offset: next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<Snapshot>, ApiError> {
    Ok(Json(resolve(&state, &reference).await?.snapshot))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<StatusCode, ApiError> {
    let rec = resolve(&state, &reference).await?;
    let id = rec.snapshot.id;
    let users: Vec<String> = state
        .store
        .sandboxes()
        .await?
        .into_iter()
        // A sandbox being deleted is gone for its user; its teardown may still have the
        // image loop-mounted, which unlinking the file does not disturb (the kernel frees
        // it with the loop device).
        .filter(|s| s.snapshot_id.as_deref() == Some(id.as_str()) && s.status != status::DELETING)
        .map(|s| s.name)
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "snapshot {id} is used by sandbox(es) {}; delete them first",
            users.join(", ")
        )));
    }
    state.store.delete_snapshot(&id).await?;
    state
        .warm
        .drain_snapshot(&state.dirs.snapshot_image(&id))
        .await;
    // A build still running notices the record is gone and removes its own output.
    let _ = tokio::fs::remove_dir_all(state.dirs.snapshot_dir(&id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /snapshots-by-name/{name}`: the tags under a name; 404 if no snapshot has it.
pub async fn by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if split_reference(&name).0 != name {
        return Err(ApiError::validation(
            "name",
            format!("'{name}' includes a tag; pass the name alone"),
        ));
    }
    let named: Vec<SnapshotRecord> = state
        .store
        .snapshots()
        .await?
        .into_iter()
        .filter(|r| r.snapshot.name == name)
        .collect();
    if named.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no snapshot has ever been published as '{name}'"
        )));
    }
    let mut tags: Vec<serde_json::Value> = named
        .iter()
        .flat_map(|r| {
            r.snapshot
                .tags
                .iter()
                .map(|t| serde_json::json!({"tag": t, "snapshot_id": r.snapshot.id}))
        })
        .collect();
    tags.sort_by(|a, b| a["tag"].as_str().cmp(&b["tag"].as_str()));
    Ok(Json(serde_json::json!({"name": name, "tags": tags})))
}

/// Resolve a snapshot reference: a UUID, `name:tag`, or a bare `name` (= `name:latest`,
/// falling back to the newest ready untagged snapshot of that name).
pub async fn resolve(state: &AppState, reference: &str) -> Result<SnapshotRecord, ApiError> {
    if let Some(rec) = state.store.snapshot(reference).await? {
        return Ok(rec);
    }
    let (name, tag) = split_reference(reference);
    let all = state.store.snapshots().await?;
    let tagged = all
        .iter()
        .find(|r| r.snapshot.name == name && r.snapshot.tags.iter().any(|t| t == tag));
    let found = tagged.or_else(|| {
        (!reference.contains(':')).then(|| {
            all.iter().find(|r| {
                r.snapshot.name == name
                    && r.snapshot.tags.is_empty()
                    && r.snapshot.status == snapshot_status::READY
            })
        })?
    });
    found
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("snapshot '{reference}' not found")))
}

/// Split `name[:tag]` on the last `:` that comes after the last `/` (as Docker does).
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rfind(':') {
        Some(i) if reference[i..].find('/').is_none() => (&reference[..i], &reference[i + 1..]),
        _ => (reference, DEFAULT_TAG),
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_on_the_tag_colon_only() {
        assert_eq!(split_reference("env"), ("env", "latest"));
        assert_eq!(split_reference("env:v2"), ("env", "v2"));
        assert_eq!(split_reference("team/env:v2"), ("team/env", "v2"));
        assert_eq!(
            split_reference("host:5000/env"),
            ("host:5000/env", "latest")
        );
    }
}
