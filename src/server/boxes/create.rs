//! `POST /boxes`: validate the request, pick a bootable snapshot (building the default one on
//! first use), record the sandbox as `provisioning`, boot it in a task of its own and, with
//! `wait_for_ready`, answer once the boot has settled.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::present;
use crate::api::error::kind;
use crate::api::{CreateSandboxRequest, Sandbox, snapshot_status, status};
use crate::phases::Phases;
use crate::server::default_snapshot;
use crate::server::error::ApiError;
use crate::server::json::ApiJson;
use crate::server::lifecycle;
use crate::server::proxy_config;
use crate::server::resources;
use crate::server::snapshots;
use crate::server::state::{AppState, now};
use crate::server::store::SnapshotRecord;
use crate::server::validate;
use crate::server::warm_pool::Taken;

/// Server-side wait when `wait_for_ready` is set without a `timeout`.
const DEFAULT_WAIT_SECONDS: i64 = 30;

pub async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateSandboxRequest>,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let settings = Settings::of(&req)?;
    let mut phases = Phases::start("create", req.name.as_deref().unwrap_or("(unnamed)"));
    crate::server::disk_space::ensure_room(state.dirs.root()).await?;
    phases.mark("disk space");
    let proxy_config = match &req.proxy_config {
        Some(config) => {
            let stored = proxy_config::prepare(&state, config, None)?;
            // Applied now too (and again at boot): a missing secret, or one its hosts keep
            // from a rule, is a 422 before anything is created.
            proxy_config::policy(&state, Some(&stored)).await?;
            Some(stored)
        }
        None => None,
    };
    let (snap, default_build) = bootable_snapshot(&state, &req).await?;
    phases.mark("snapshot");
    let res = resources::for_create(&state, &req, &snap.snapshot)?;
    let mut sb = settings.record(&req, &snap, &res);
    sb.proxy_config = proxy_config;
    let adopted = adopt_warm(&state, &mut sb, default_build.is_none()).await;
    phases.mark("warm pool");
    // Should this fail, or the client hang up meanwhile, the warm sandbox goes back.
    state.store.insert_sandbox(&sb).await?;
    phases.mark("insert");
    if let Some(taken) = adopted {
        taken.keep();
    }
    let building_default = default_build.is_some();
    let boot = match default_build {
        Some(build) => default_snapshot::boot_after(state.clone(), sb.id.clone(), build),
        None => lifecycle::spawn_boot(state.clone(), sb.id.clone()),
    };
    if !req.wait_for_ready.unwrap_or(true) {
        phases.finish();
        return Ok((StatusCode::CREATED, Json(present(&state, sb))));
    }
    let wait = req.timeout.unwrap_or(DEFAULT_WAIT_SECONDS).max(0) as u64;
    let finished = tokio::time::timeout(Duration::from_secs(wait), boot)
        .await
        .is_ok();
    phases.mark("boot");
    let now_sb = state.store.sandbox_by_id(&sb.id).await?.ok_or_else(|| {
        ApiError::NotFound(format!("sandbox '{}' was deleted while starting", sb.name))
    })?;
    phases.mark("read back");
    phases.finish();
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

/// Gives the new record the id of a warm sandbox of its kind, if the pool has one (its boot
/// then adopts that running sandbox). A snapshot still being built has none.
async fn adopt_warm(state: &AppState, sb: &mut Sandbox, snapshot_ready: bool) -> Option<Taken> {
    // Without a pool there is nothing to take: skip reading the snapshot for a spec.
    if !snapshot_ready || !state.warm.is_on() {
        return None;
    }
    let spec = lifecycle::spec_for(state, sb).await.ok()?;
    let taken = state.warm.take(&spec)?;
    sb.id = taken.id().to_string();
    Some(taken)
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
        validate::proxy_config(req.proxy_config.as_ref())?;
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
