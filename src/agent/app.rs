//! The agent's HTTP surface: shared state, the router, and the JSON error envelope
//! (`{"detail":{"error","message"}}`) every handler answers failures with.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::registry::Registry;
use super::shutdown::Shutdown;
use super::{connect, exec_http, exec_sse, exec_ws, files, glob, grep};
use crate::api::ErrorBody;
use crate::api::service::CONNECT_PATH;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub shutdown: Shutdown,
}

/// All data-plane routes the agent serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/execute/ws", get(exec_ws::execute_ws))
        .route("/execute", post(exec_http::execute))
        // Uploads are streamed to disk, so the default 2 MB body cap would only get in the way.
        .route(
            "/upload",
            post(files::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/download", get(files::download))
        .route("/glob", post(glob::glob))
        .route("/grep", post(grep::grep))
        .route("/execute/stream/start", post(exec_sse::start))
        .route("/execute/stream/resume", post(exec_sse::resume))
        .route(CONNECT_PATH, get(connect::connect))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// A failure answered as the standard error envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody::new(self.error, self.message))).into_response()
    }
}
