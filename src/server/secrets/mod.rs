//! Workspace secrets of the local backend (spec: proxy-and-features §4), under
//! `/api/v1/workspaces/current/secrets` and `/workspaces/current/secrets`:
//!
//! * `GET [?include_configs=true]` → `[{key, configs?}]`, by key;
//! * `POST [{key, value}]` sets several at once (`value: null` deletes) and answers the list;
//! * `PUT /{key} {value?, configs?}` creates (a value is required) or updates one (an omitted
//!   value is kept; `configs` replaces the hosts, omitted or empty means the defaults) and
//!   answers `{key, configs}`;
//! * `DELETE /{key}` → 204, also for a key that does not exist.
//!
//! Values go in and never come out: no answer, log or error carries one, and at rest they are
//! sealed (`sealer`) under a key kept apart from the database. The local backend has one
//! workspace, `current`.
//!
//! * `check` — key names, values and configs (422 naming the field).
//! * `sealer` — ChaCha20-Poly1305 under `STATE/secrets-key`.
//! * `store` — the `secrets` table.

mod check;
pub mod sealer;
mod store;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

pub use self::store::SecretRow;
use super::error::ApiError;
use super::json::ApiJson;
use super::state::{AppState, now};
use crate::api::secrets::{PutSecret, SecretInfo, SecretUpsert};

pub use sealer::Sealer;

/// The sealer of `key_file`, checked against the stored secrets: a key file that went
/// missing while secrets exist is not silently replaced by a new key (every value would be
/// lost), and a key that does not open them is refused.
pub async fn open_sealer(
    store: &super::store::Store,
    key_file: &std::path::Path,
) -> anyhow::Result<Sealer> {
    let stored = store.secrets().await?;
    if !stored.is_empty() && !key_file.exists() {
        anyhow::bail!(
            "the secrets key {} is missing but {} secrets are stored: restore the file, or \
             delete the secrets (their values cannot be read without it)",
            key_file.display(),
            stored.len()
        );
    }
    let sealer = Sealer::load_or_create(key_file)?;
    if let Some(row) = stored.first() {
        sealer.open(&row.key, &row.sealed).map_err(|e| {
            anyhow::anyhow!(
                "{e}: was {} replaced? restore the original",
                key_file.display()
            )
        })?;
    }
    Ok(sealer)
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    include_configs: bool,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    listing(&state, query.include_configs).await.map(Json)
}

async fn listing(state: &AppState, include_configs: bool) -> Result<Vec<SecretInfo>, ApiError> {
    Ok(state
        .store
        .secrets()
        .await?
        .into_iter()
        .map(|row| SecretInfo {
            key: row.key,
            configs: include_configs.then_some(row.configs),
        })
        .collect())
}

/// `POST`: every item is checked before anything is written, so a bad item changes nothing.
pub async fn bulk(
    State(state): State<AppState>,
    ApiJson(items): ApiJson<Vec<SecretUpsert>>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    for (i, item) in items.iter().enumerate() {
        check::key(&format!("[{i}].key"), &item.key)?;
        if let Some(value) = &item.value {
            check::value(&format!("[{i}].value"), value)?;
        }
    }
    for item in items {
        match item.value {
            Some(value) => {
                let existing = state.store.secret(&item.key).await?;
                let configs = match &existing {
                    Some(row) => row.configs.clone(),
                    None => check::configs(&item.key, None)?,
                };
                store(&state, &item.key, &value, configs, existing).await?;
            }
            None => {
                state.store.delete_secret(&item.key).await?;
            }
        }
    }
    listing(&state, false).await.map(Json)
}

pub async fn put(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<PutSecret>,
) -> Result<Json<SecretInfo>, ApiError> {
    check::key("key", &key)?;
    if let Some(value) = &body.value {
        check::value("value", value)?;
    }
    let existing = state.store.secret(&key).await?;
    let configs = match (body.configs, &existing) {
        (Some(given), _) => check::configs(&key, Some(given))?,
        (None, Some(row)) => row.configs.clone(),
        (None, None) => check::configs(&key, None)?,
    };
    match (body.value, existing) {
        (Some(value), existing) => store(&state, &key, &value, configs.clone(), existing).await?,
        (None, Some(mut row)) => {
            row.configs = configs.clone();
            row.updated_at = now();
            state.store.put_secret(row).await?;
        }
        (None, None) => {
            return Err(ApiError::validation(
                "value",
                format!("secret {key} does not exist: give a value to create it"),
            ));
        }
    }
    Ok(Json(SecretInfo {
        key,
        configs: Some(configs),
    }))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    check::key("key", &key)?;
    state.store.delete_secret(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Seal `value` and write the secret, keeping the creation time of `existing`.
async fn store(
    state: &AppState,
    key: &str,
    value: &str,
    configs: Vec<crate::api::secrets::SecretConfig>,
    existing: Option<SecretRow>,
) -> Result<(), ApiError> {
    let sealed = state
        .secrets
        .seal(key, value)
        .map_err(|e| ApiError::Internal(format!("sealing secret {key}: {e}")))?;
    let time = now();
    state
        .store
        .put_secret(SecretRow {
            key: key.to_string(),
            sealed,
            configs,
            created_at: existing.map_or_else(|| time.clone(), |row| row.created_at),
            updated_at: time,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::Store;
    use crate::server::ttl::TtlClock;

    #[tokio::test]
    async fn a_lost_or_replaced_key_is_refused_while_secrets_exist() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db"), TtlClock::new(60)).unwrap();
        let key_file = dir.path().join("secrets-key");
        let sealer = open_sealer(&store, &key_file).await.unwrap();
        store
            .put_secret(SecretRow {
                key: "K".into(),
                sealed: sealer.seal("K", "v").unwrap(),
                configs: Vec::new(),
                created_at: now(),
                updated_at: now(),
            })
            .await
            .unwrap();
        assert!(open_sealer(&store, &key_file).await.is_ok());
        std::fs::remove_file(&key_file).unwrap();
        let lost = open_sealer(&store, &key_file).await.err().unwrap();
        assert!(lost.to_string().contains("is missing"), "{lost}");
        assert!(!key_file.exists(), "a new key replaced the lost one");
        std::fs::write(&key_file, [9u8; 32]).unwrap();
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let replaced = open_sealer(&store, &key_file).await.err().unwrap();
        assert!(replaced.to_string().contains("replaced"), "{replaced}");
    }
}
