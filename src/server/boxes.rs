//! Sandbox ("box") endpoints: create (in `create`), list, get, status, update, delete,
//! start and stop.

mod create;

pub use create::create;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::error::ApiError;
use super::json::ApiJson;
use super::lifecycle;
use super::proxy_config;
use super::reaper;
use super::resources;
use super::state::{AppState, now};
use super::validate;
use crate::api::{Sandbox, SandboxList, StatusResponse, UpdateSandboxRequest, status};

/// The API view of a stored sandbox: adds the data-plane URL of this server.
pub fn present(state: &AppState, mut sb: Sandbox) -> Sandbox {
    sb.dataplane_url = Some(state.dataplane_url(&sb.id));
    // Opaque values never leave the server, not even sealed.
    sb.proxy_config = sb.proxy_config.as_ref().map(proxy_config::redact);
    sb
}

/// The sandbox a request acts on, by name or id: one being deleted is gone (404).
pub(super) async fn find(state: &AppState, name_or_id: &str) -> Result<Sandbox, ApiError> {
    let sb = find_any(state, name_or_id).await?;
    if sb.status == status::DELETING {
        return Err(not_found(name_or_id));
    }
    Ok(sb)
}

/// The sandbox named `name_or_id`, or with that id. A name is never UUID-shaped
/// (`validate::sandbox_name`), so an id cannot be mistaken for another sandbox's name. By id
/// this also finds a sandbox being deleted (`deleting`) until its teardown is done: for
/// reads only, which show it; [`find`] is for requests that act on a sandbox.
async fn find_any(state: &AppState, name_or_id: &str) -> Result<Sandbox, ApiError> {
    match state.store.sandbox_by_name(name_or_id).await? {
        Some(sb) => Ok(sb),
        None => state
            .store
            .sandbox_by_id(name_or_id)
            .await?
            .ok_or_else(|| not_found(name_or_id)),
    }
}

fn not_found(name_or_id: &str) -> ApiError {
    ApiError::NotFound(format!("sandbox '{name_or_id}' not found"))
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
        // A sandbox being deleted is gone for its user (its teardown may still run): listed
        // only when asked for by `status=deleting`.
        .filter(|s| match &q.status {
            Some(st) => &s.status == st,
            None => s.status != status::DELETING,
        })
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
    Ok(Json(present(&state, find_any(&state, &name).await?)))
}

pub async fn status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<StatusResponse>, ApiError> {
    let sb = find_any(&state, &name).await?;
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
    let found = find(state, name_or_id).await?;
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
        .ok_or_else(|| not_found(name_or_id))
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
///
/// Answered once `deleting` is recorded: from then on the sandbox is gone by name and from
/// the list (`status=deleting` still lists it), its name is free (see
/// `store::sandboxes::name_column`) and its service URLs are closed; the teardown runs in
/// the background (`lifecycle::spawn_destroy`, which retries a failed one). It is durable:
/// a server that stops before it finishes resumes it at the next start (`recovery`).
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (sb, ()) = modify(&state, &name, When::Now, |sb| {
        sb.status = status::DELETING.into();
        Ok(())
    })
    .await?;
    // What reaches the sandbox from outside ends with the answer, not with the teardown:
    // its service URLs and download links stop answering now.
    state.services.release(&sb.id);
    drop(lifecycle::spawn_destroy(state.clone(), sb.id.clone()));
    Ok(StatusCode::NO_CONTENT)
}

pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    // Its proxy configuration is applied anew (secrets read now): one that can no longer be
    // (a secret deleted since) is a 422 before anything changes.
    let current = find(&state, &name).await?;
    proxy_config::policy(&state, current.proxy_config.as_ref()).await?;
    super::disk_space::ensure_room(state.dirs.root()).await?;
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
    // Checked, sealed and resolved before the record is touched: secrets are looked up, and
    // opaque values left out are carried over from the current configuration.
    let (prepared, policy) = match &req.proxy_config {
        Some(new) => {
            let current = find(&state, &name).await?;
            let stored = proxy_config::prepare(&state, new, current.proxy_config.as_ref())?;
            let policy = proxy_config::policy(&state, Some(&stored)).await?;
            (Some(stored), Some(policy))
        }
        None => (None, None),
    };
    let (sb, ()) = modify(&state, &name, When::Now, move |sb| {
        apply_update(&host, &req, prepared, sb)
    })
    .await?;
    // Proxy configuration takes effect at once: the next connection, request and DNS answer
    // of a running sandbox are judged by it (a stopped one gets it at its next start).
    if let Some(policy) = policy {
        state.egress.set_policy(&sb.id, policy);
    }
    Ok(Json(present(&state, sb)))
}

fn apply_update(
    state: &AppState,
    req: &UpdateSandboxRequest,
    proxy_config: Option<serde_json::Value>,
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
    if let Some(prepared) = proxy_config {
        sb.proxy_config = Some(prepared);
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
