//! Registry endpoints: named credentials for pulling private
//! images, referenced by snapshot builds through `registry_id`. Passwords are write-only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::images::RegistryCredentials;
use super::json::ApiJson;
use super::registry_store::{RegistryKey, RegistryRecord};
use super::state::{AppState, now};
use super::validate;
use crate::api::error::kind;

const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
const AWS_ROLE: &str = "AWS_ROLE";

/// Body of `POST /registries` and `PATCH /registries/{name}` (every field optional on PATCH).
#[derive(Debug, Default, Deserialize)]
pub struct RegistryRequest {
    name: Option<String>,
    url: Option<String>,
    auth_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    aws_role_arn: Option<String>,
}

/// The API view of a registry: everything but the credentials.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryView {
    id: String,
    name: String,
    url: String,
    auth_type: String,
    aws_role_arn: Option<String>,
    provider: &'static str,
    repository_search_mode: &'static str,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct RegistryList {
    items: Vec<RegistryView>,
    registries: Vec<RegistryView>,
    next_cursor: Option<String>,
    offset: i64,
}

fn view(rec: &RegistryRecord) -> RegistryView {
    RegistryView {
        id: rec.id.clone(),
        name: rec.name.clone(),
        url: rec.url.clone(),
        auth_type: rec.auth_type.clone(),
        aws_role_arn: rec.aws_role_arn.clone(),
        provider: provider(&rec.url),
        repository_search_mode: "SCOPED",
        created_at: rec.created_at.clone(),
        updated_at: rec.updated_at.clone(),
    }
}

/// The kind of registry, recognised from its host.
fn provider(url: &str) -> &'static str {
    let host = url
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    if host.contains(".dkr.ecr.") {
        "ECR"
    } else if host.starts_with("ghcr.io") {
        "GHCR"
    } else if host.contains("-docker.pkg.dev") || host.starts_with("gcr.io") {
        "GAR"
    } else if host.starts_with("docker.io") || host.starts_with("registry-1.docker.io") {
        "DOCKER_HUB"
    } else {
        "DOCKER_REGISTRY"
    }
}

async fn find(state: &AppState, name: &str) -> Result<RegistryRecord, ApiError> {
    state
        .store
        .registry_where(RegistryKey::Name, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("registry '{name}' not found")))
}

/// The URL and credentials a snapshot build with `registry_id` pulls with.
pub async fn for_build(
    state: &AppState,
    id: &str,
) -> Result<(String, Option<RegistryCredentials>), ApiError> {
    let rec = state
        .store
        .registry_where(RegistryKey::Id, id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "registry '{id}' not found; list registries with GET /registries and pass its id"
            ))
        })?;
    if rec.auth_type == AWS_ROLE {
        return Err(ApiError::BadRequest {
            error: kind::UNSUPPORTED,
            message: format!(
                "registry '{}' uses AWS_ROLE, which this local server cannot assume; \
                 create a DOCKER_CONFIG registry with a username and password",
                rec.name
            ),
        });
    }
    let username = rec.username.clone().unwrap_or_default();
    let password = rec.password.clone().unwrap_or_default();
    let credentials = (!username.is_empty() || !password.is_empty())
        .then_some(RegistryCredentials { username, password });
    Ok((rec.url, credentials))
}

/// Check a complete record (after a create or an update is applied).
fn check(rec: &RegistryRecord) -> Result<(), ApiError> {
    if rec.name.is_empty() || rec.name.len() > 255 || rec.name.contains('/') {
        return Err(ApiError::validation(
            "name",
            "name is required: 1-255 characters without '/'",
        ));
    }
    if rec.url.trim().is_empty() {
        return Err(ApiError::validation(
            "url",
            "url is required, e.g. \"registry.example.com\"",
        ));
    }
    match rec.auth_type.as_str() {
        DOCKER_CONFIG => Ok(()),
        AWS_ROLE if rec.aws_role_arn.as_deref().is_some_and(|a| !a.is_empty()) => Ok(()),
        AWS_ROLE => Err(ApiError::validation(
            "aws_role_arn",
            "auth_type AWS_ROLE needs aws_role_arn",
        )),
        other => Err(ApiError::validation(
            "auth_type",
            format!("auth_type must be DOCKER_CONFIG or AWS_ROLE, got {other:?}"),
        )),
    }
}

fn apply(req: RegistryRequest, rec: &mut RegistryRecord) {
    if let Some(v) = req.name {
        rec.name = v;
    }
    if let Some(v) = req.url {
        rec.url = v.trim().to_string();
    }
    if let Some(v) = req.auth_type {
        rec.auth_type = v;
    }
    if req.username.is_some() {
        rec.username = req.username;
    }
    if req.password.is_some() {
        rec.password = req.password;
    }
    if req.aws_role_arn.is_some() {
        rec.aws_role_arn = req.aws_role_arn;
    }
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegistryRequest>,
) -> Result<(StatusCode, Json<RegistryView>), ApiError> {
    let ts = now();
    let mut rec = RegistryRecord {
        id: uuid::Uuid::new_v4().to_string(),
        auth_type: DOCKER_CONFIG.into(),
        created_at: ts.clone(),
        updated_at: ts,
        ..Default::default()
    };
    apply(req, &mut rec);
    check(&rec)?;
    state.store.put_registry(&rec).await?;
    Ok((StatusCode::CREATED, Json(view(&rec))))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    name_contains: Option<String>,
    limit: Option<i64>,
    page_size: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<RegistryList>, ApiError> {
    let all: Vec<RegistryView> = state
        .store
        .registries()
        .await?
        .iter()
        .filter(|r| {
            q.name_contains
                .as_ref()
                .is_none_or(|n| r.name.contains(n.as_str()))
        })
        .map(view)
        .collect();
    let (page, next) = validate::page(all, q.page_size.or(q.limit), q.offset)?;
    Ok(Json(RegistryList {
        items: page.clone(),
        registries: page,
        next_cursor: None,
        offset: next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<RegistryView>, ApiError> {
    Ok(Json(view(&find(&state, &name).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RegistryRequest>,
) -> Result<Json<RegistryView>, ApiError> {
    let mut rec = find(&state, &name).await?;
    apply(req, &mut rec);
    check(&rec)?;
    rec.updated_at = now();
    state.store.put_registry(&rec).await?;
    Ok(Json(view(&rec)))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let rec = find(&state, &name).await?;
    state.store.delete_registry(&rec.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
