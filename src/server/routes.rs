//! The HTTP surface: the control plane under both `/api/v2/sandboxes` and `/v2/sandboxes`,
//! the data-plane router under `/dp/{sandbox_id}`, and `/healthz` — all behind the API key.

use axum::Router;
use axum::routing::{any, get, post};

use super::auth::{ApiKey, require_api_key};
use super::state::AppState;
use super::{boxes, dataplane, registries, snapshots};

pub fn router(state: AppState, key: ApiKey) -> Router {
    let control = Router::new()
        .route("/boxes", post(boxes::create).get(boxes::list))
        .route(
            "/boxes/{name}",
            get(boxes::get).patch(boxes::update).delete(boxes::delete),
        )
        .route("/boxes/{name}/status", get(boxes::status))
        .route("/boxes/{name}/start", post(boxes::start))
        .route("/boxes/{name}/stop", post(boxes::stop))
        .route("/snapshots", post(snapshots::create).get(snapshots::list))
        .route(
            "/snapshots/{reference}",
            get(snapshots::get).delete(snapshots::delete),
        )
        .route("/snapshots-by-name/{name}", get(snapshots::by_name))
        .route(
            "/registries",
            post(registries::create).get(registries::list),
        )
        .route(
            "/registries/{name}",
            get(registries::get)
                .patch(registries::update)
                .delete(registries::delete),
        );

    Router::new()
        .nest("/api/v2/sandboxes", control.clone())
        .nest("/v2/sandboxes", control)
        .route("/dp/{id}", any(dataplane::proxy))
        .route("/dp/{id}/{*rest}", any(dataplane::proxy))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(|| async { super::error::ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(key, require_api_key))
        .with_state(state)
}
