//! The HTTP surface: the control plane under both `/api/v2/sandboxes` and `/v2/sandboxes`,
//! the data-plane router under `/dp/{sandbox_id}`, and `/healthz` — all behind the API key —
//! and, with `--service-domain`, service and download origins routed by `Host`.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};

use super::auth::{ApiKey, require_api_key};
use super::error::ApiError;
use super::state::AppState;
use super::{boxes, capture, dataplane, egress_log, registries, secrets, service, snapshots};

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
        .route("/boxes/{name}/snapshot", post(capture::capture))
        .route("/boxes/{name}/service-url", post(service::service_url))
        .route(
            "/boxes/{name}/service-urls",
            get(service::service_urls).delete(service::unshare),
        )
        .route("/boxes/{name}/download-url", post(service::download_url))
        .route("/boxes/{name}/egress-log", get(egress_log::egress_log))
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

    // Workspace secrets, where the LangSmith API has them (the SDK's `Client` asks
    // `{endpoint}/workspaces/current/secrets`; REST documents `/api/v1/…`).
    let workspace = Router::new()
        .route("/secrets", get(secrets::list).post(secrets::bulk))
        .route("/secrets/{key}", put(secrets::put).delete(secrets::delete));

    Router::new()
        .nest("/api/v2/sandboxes", control.clone())
        .nest("/v2/sandboxes", control)
        .nest("/api/v1/workspaces/current", workspace.clone())
        .nest("/workspaces/current", workspace)
        .route("/dp/{id}", any(dataplane::proxy))
        .route("/dp/{id}/{*rest}", any(dataplane::proxy))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(key, require_api_key))
        .layer(axum::middleware::from_fn(read_body_first))
        // Outermost: with a service domain, a service origin's request never meets the API
        // key check nor the control plane's body buffering.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            service::by_host,
        ))
        .with_state(state)
}

/// Control-plane bodies are small JSON documents; anything larger is refused.
const CONTROL_BODY_LIMIT: usize = 4 << 20;

/// Read a control-plane request's whole body before anything answers it (the key check,
/// a 404, a handler that needs no body). A reply sent while the body is still unread makes
/// the connection unusable, and keep-alive clients such as the official SDK only find out
/// on their next request. Data-plane requests stream through untouched (uploads are large).
async fn read_body_first(req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/dp/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, CONTROL_BODY_LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => ApiError::TooLarge(format!(
            "request body larger than {} MiB",
            CONTROL_BODY_LIMIT >> 20
        ))
        .into_response(),
    }
}
