//! Sandbox ("box") endpoints.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::default_snapshot;
use super::error::ApiError;
use super::json::ApiJson;
use super::lifecycle;
use super::reaper;
use super::resources;
use super::snapshots;
use super::state::{AppState, now};
use super::store::SnapshotRecord;
use super::validate;
use crate::api::error::kind;
use crate::api::{
    CreateSandboxRequest, Sandbox, SandboxList, StatusResponse, UpdateSandboxRequest,
    snapshot_status, status,
};

/// Server-side wait when `wait_for_ready` is set without a `timeout`.
const DEFAULT_WAIT_SECONDS: i64 = 30;
/// How long DELETE waits for the teardown before answering (the SDK times out at 10 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// The API view of a stored sandbox: adds the data-plane URL of this server.
pub fn present(state: &AppState, mut sb: Sandbox) -> Sandbox {
    sb.dataplane_url = Some(state.dataplane_url(&sb.id));
    sb
}

async fn find(state: &AppState, name: &str) -> Result<Sandbox, ApiError> {
    state
        .store
        .sandbox_by_name(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("sandbox '{name}' not found")))
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateSandboxRequest>,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let settings = Settings::of(&req)?;
    let (snap, default_build) = bootable_snapshot(&state, &req).await?;
    let res = resources::for_create(&state, &req, &snap.snapshot)?;
    let sb = settings.record(&req, &snap, &res);
    state.store.insert_sandbox(&sb).await?;
    let building_default = default_build.is_some();
    let boot = match default_build {
        Some(build) => default_snapshot::boot_after(state.clone(), sb.id.clone(), build),
        None => lifecycle::spawn_boot(state.clone(), sb.id.clone()),
    };
    if !req.wait_for_ready.unwrap_or(true) {
        return Ok((StatusCode::CREATED, Json(present(&state, sb))));
    }
    let wait = req.timeout.unwrap_or(DEFAULT_WAIT_SECONDS).max(0) as u64;
    let finished = tokio::time::timeout(Duration::from_secs(wait), boot)
        .await
        .is_ok();
    let now_sb = state.store.sandbox_by_id(&sb.id).await?.ok_or_else(|| {
        ApiError::NotFound(format!("sandbox '{}' was deleted while starting", sb.name))
    })?;
    let outcome = BootOutcome {
        finished,
        building_default,
        wait,
    };
    Ok((
        StatusCode::CREATED,
        Json(present(&state, outcome.judge(now_sb)?)),
    ))
}

/// What a create request asks for beyond the snapshot and resources, defaults applied.
struct Settings {
    name: String,
    idle_ttl: i64,
    delete_after_stop: i64,
}

impl Settings {
    fn of(req: &CreateSandboxRequest) -> Result<Settings, ApiError> {
        let name = req.name.clone().unwrap_or_else(|| {
            format!(
                "sandbox-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        });
        validate::sandbox_name(&name)?;
        let idle_ttl = req.idle_ttl_seconds.unwrap_or(600);
        validate::ttl("idle_ttl_seconds", idle_ttl)?;
        let delete_after_stop = req.delete_after_stop_seconds.unwrap_or(14 * 24 * 3600);
        validate::ttl("delete_after_stop_seconds", delete_after_stop)?;
        Ok(Settings {
            name,
            idle_ttl,
            delete_after_stop,
        })
    }

    /// The new sandbox's record, `provisioning`.
    fn record(
        self,
        req: &CreateSandboxRequest,
        snap: &SnapshotRecord,
        res: &resources::Resources,
    ) -> Sandbox {
        let ts = now();
        Sandbox {
            id: uuid::Uuid::new_v4().to_string(),
            name: self.name,
            status: status::PROVISIONING.into(),
            snapshot_id: Some(snap.snapshot.id.clone()),
            vcpus: Some(res.vcpus()),
            cpu_millicores: Some(res.cpu_millicores),
            mem_bytes: Some(res.mem_bytes),
            fs_capacity_bytes: Some(res.fs_capacity_bytes),
            idle_ttl_seconds: Some(self.idle_ttl),
            delete_after_stop_seconds: Some(self.delete_after_stop),
            persistent: Some(req.persistent.unwrap_or(true)),
            run_config: req.run_config.clone(),
            proxy_config: req.proxy_config.clone(),
            access_delegation: req.access_delegation.clone(),
            created_at: ts.clone(),
            updated_at: ts,
            ..Default::default()
        }
    }
}

/// The snapshot a create boots from, and the default snapshot's build to wait for when no
/// snapshot is named and the default one is still building (on first use).
async fn bootable_snapshot(
    state: &AppState,
    req: &CreateSandboxRequest,
) -> Result<(SnapshotRecord, Option<default_snapshot::PendingBuild>), ApiError> {
    let (snap, default_build) = match (
        &req.snapshot_id,
        req.snapshot.as_ref().or(req.snapshot_name.as_ref()),
    ) {
        (Some(id), _) => (snapshots::resolve(state, id).await?, None),
        (None, Some(reference)) => (snapshots::resolve(state, reference).await?, None),
        (None, None) => default_snapshot::ensure(state).await?,
    };
    match snap.snapshot.status.as_str() {
        snapshot_status::READY => {}
        snapshot_status::BUILDING if default_build.is_some() => {}
        snapshot_status::BUILDING => {
            return Err(ApiError::Conflict(format!(
                "snapshot {} is still building; wait for it (`langsmith sandbox snapshot wait {}`)",
                snap.snapshot.id, snap.snapshot.id
            )));
        }
        other => {
            return Err(ApiError::BadRequest {
                error: kind::SNAPSHOT_NOT_READY,
                message: format!(
                    "snapshot {} is {other}: {}",
                    snap.snapshot.id,
                    snap.snapshot
                        .status_message
                        .as_deref()
                        .unwrap_or("it cannot boot sandboxes")
                ),
            });
        }
    }
    Ok((snap, default_build))
}

/// How the wait of a `wait_for_ready` create ended.
struct BootOutcome {
    /// The boot finished within the wait.
    finished: bool,
    /// The boot first waited for the default snapshot's build.
    building_default: bool,
    wait: u64,
}

impl BootOutcome {
    /// The answer to the create, given the sandbox's record after the wait.
    fn judge(&self, sb: Sandbox) -> Result<Sandbox, ApiError> {
        let wait = self.wait;
        match sb.status.as_str() {
            status::READY => Ok(sb),
            status::FAILED => Err(ApiError::CreationFailed {
                error: kind::SANDBOX_CONFIG,
                message: sb
                    .status_message
                    .unwrap_or_else(|| "sandbox failed to start".into()),
            }),
            _ if !self.finished && self.building_default => Err(ApiError::Timeout(format!(
                "sandbox '{}' did not become ready within {wait}s: the default snapshot \
                 ({}) is being built on first use; the sandbox boots when it is done: poll its status",
                sb.name,
                default_snapshot::NAME
            ))),
            last if !self.finished => Err(ApiError::Timeout(format!(
                "sandbox '{}' did not become ready within {wait}s (last status: {last}); \
                 it keeps starting: poll its status",
                sb.name
            ))),
            // A delete that came in once the boot finished: the sandbox is going, not broken.
            status::DELETING => Err(ApiError::NotFound(format!(
                "sandbox '{}' was deleted while starting",
                sb.name
            ))),
            other => Err(ApiError::Internal(format!(
                "sandbox ended up {other} while starting"
            ))),
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<validate::ListQuery>,
) -> Result<Json<SandboxList>, ApiError> {
    let all: Vec<Sandbox> = state
        .store
        .sandboxes()
        .await?
        .into_iter()
        .filter(|s| {
            q.name_contains
                .as_ref()
                .is_none_or(|n| s.name.contains(n.as_str()))
        })
        .filter(|s| q.status.as_ref().is_none_or(|st| &s.status == st))
        .map(|s| present(&state, s))
        .collect();
    let (page, next) = validate::page(all, q.limit, q.offset)?;
    Ok(Json(SandboxList {
        items: page.clone(),
        sandboxes: page,
        next_cursor: None,
        offset: next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(present(&state, find(&state, &name).await?)))
}

pub async fn status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<StatusResponse>, ApiError> {
    let sb = find(&state, &name).await?;
    Ok(Json(StatusResponse {
        status: sb.status,
        status_message: sb.status_message,
    }))
}

/// Change a sandbox's record in one step of the store (so no lifecycle task writes a stale
/// copy over it) and persist it before answering; `when` says whether the change waits for
/// runtime work under way on the sandbox.
async fn modify<T: Send + 'static>(
    state: &AppState,
    name_or_id: &str,
    when: When,
    change: impl FnOnce(&mut Sandbox) -> Result<T, ApiError> + Send + 'static,
) -> Result<(Sandbox, T), ApiError> {
    let missing = || ApiError::NotFound(format!("sandbox '{name_or_id}' not found"));
    let found = match state.store.sandbox_by_name(name_or_id).await? {
        Some(sb) => sb,
        None => state
            .store
            .sandbox_by_id(name_or_id)
            .await?
            .ok_or_else(missing)?,
    };
    let _settled = match when {
        When::Now => None,
        When::Settled => Some(state.locks.lock(&found.id).await),
    };
    state
        .store
        .modify_sandbox(&found.id, move |sb| {
            let out = change(sb)?;
            sb.updated_at = now();
            Ok::<_, ApiError>(out)
        })
        .await?
        .ok_or_else(missing)
}

/// When a change of a sandbox's record is made.
enum When {
    /// At once, even while a boot or stop is under way (its outcome is recorded only if the
    /// status it started from still holds).
    Now,
    /// Once no runtime work is under way on the sandbox, for a change that depends on its
    /// outcome: a start during a stop starts the stopped sandbox.
    Settled,
}

/// `DELETE /boxes/{name}` (the id is accepted too).
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (sb, ()) = modify(&state, &name, When::Now, |sb| {
        sb.status = status::DELETING.into();
        Ok(())
    })
    .await?;
    // A boot (up to its readiness deadline), stop or capture under way holds the sandbox's
    // lock, and the teardown follows it: answer now rather than past the client's patience.
    let queued = state.locks.busy(&sb.id);
    let destroy = lifecycle::spawn_destroy(state.clone(), sb.id.clone());
    if queued {
        return Ok(StatusCode::NO_CONTENT);
    }
    // Answer quickly; a slow teardown finishes in the background (GET shows `deleting`).
    match tokio::time::timeout(ANSWER_WITHIN, destroy).await {
        Ok(Ok(Err(e))) => {
            return Err(ApiError::Internal(format!(
                "deleting sandbox '{name}': {e}"
            )));
        }
        Ok(Err(panicked)) => {
            return Err(ApiError::Internal(format!(
                "deleting sandbox '{name}': {panicked}"
            )));
        }
        _ => {}
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let (sb, ()) = modify(&state, &name, When::Settled, |sb| {
        if sb.status != status::STOPPED && sb.status != status::FAILED {
            return Err(ApiError::Conflict(format!(
                "sandbox '{}' cannot be started: it is {} (only stopped or failed sandboxes start)",
                sb.name, sb.status
            )));
        }
        sb.status = status::PROVISIONING.into();
        sb.status_message = None;
        Ok(())
    })
    .await?;
    lifecycle::spawn_boot(state.clone(), sb.id.clone());
    Ok((StatusCode::ACCEPTED, Json(present(&state, sb))))
}

/// `POST /boxes/{name}/stop`: answered once `stopped` is recorded.
pub async fn stop(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sb = find(&state, &name).await?;
    match lifecycle::spawn_stop(state.clone(), sb.id.clone()).await {
        Ok(Ok(())) => {
            reaper::discard_if_ephemeral(&state, &sb.id).await;
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(Err(e)) => Err(e),
        Err(e) => Err(ApiError::Internal(format!(
            "stopping sandbox '{name}': {e}"
        ))),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateSandboxRequest>,
) -> Result<Json<Sandbox>, ApiError> {
    let host = state.clone();
    let (sb, ()) = modify(&state, &name, When::Now, move |sb| {
        apply_update(&host, &req, sb)
    })
    .await?;
    Ok(Json(present(&state, sb)))
}

fn apply_update(
    state: &AppState,
    req: &UpdateSandboxRequest,
    sb: &mut Sandbox,
) -> Result<(), ApiError> {
    if let Some(new_name) = &req.name {
        validate::sandbox_name(new_name)?;
        sb.name = new_name.clone();
    }
    // Resource changes are stored now and take effect at the next start.
    resources::apply_update(state, req, sb)?;
    if let Some(v) = req.idle_ttl_seconds {
        validate::ttl("idle_ttl_seconds", v)?;
        sb.idle_ttl_seconds = Some(v);
    }
    if let Some(v) = req.delete_after_stop_seconds {
        validate::ttl("delete_after_stop_seconds", v)?;
        sb.delete_after_stop_seconds = Some(v);
    }
    if let Some(p) = &req.proxy_config {
        sb.proxy_config = Some(p.clone());
    }
    if let Some(rc) = &req.run_config {
        let mut merged = sb.run_config.take().unwrap_or_default();
        if rc.user.is_some() {
            merged.user = rc.user.clone();
        }
        if rc.work_dir.is_some() {
            merged.work_dir = rc.work_dir.clone();
        }
        if let Some(vars) = &rc.env_vars {
            merged
                .env_vars
                .get_or_insert_with(Default::default)
                .extend(vars.clone());
        }
        sb.run_config = Some(merged);
    }
    Ok(())
}
