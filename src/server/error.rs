//! API errors and the one place where they become HTTP statuses and JSON bodies.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::store::StoreError;
use crate::api::ErrorBody;

/// Every failure a handler can answer with. The variant picks the status code; the message
/// says what went wrong and, where it helps, what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Invalid input. `field` names the offending body field (FastAPI-style list detail,
    /// which the official SDK maps to `ValidationError` with `field`).
    #[error("{message}")]
    Validation { field: String, message: String },
    /// A request that is well-formed but cannot be served in the resource's current state.
    #[error("{message}")]
    BadRequest {
        error: &'static str,
        message: String,
    },
    /// Sandbox creation failed while provisioning (`ImagePull`, `SandboxConfig`, …).
    #[error("{message}")]
    CreationFailed {
        error: &'static str,
        message: String,
    },
    /// A server-side wait ran out (`wait_for_ready`).
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn not_ready(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            error: "NotReady",
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Validation { .. } | ApiError::CreationFailed { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::NotFound(_) => "NotFound",
            ApiError::Conflict(_) => "Conflict",
            ApiError::Validation { .. } => "ValidationError",
            ApiError::BadRequest { error, .. } | ApiError::CreationFailed { error, .. } => error,
            ApiError::Timeout(_) => "Timeout",
            ApiError::TooLarge(_) => "PayloadTooLarge",
            ApiError::Internal(_) => "InternalError",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("{self}");
        }
        let body = match &self {
            // FastAPI-style list detail: the official SDK raises ValidationError(field=…).
            ApiError::Validation { field, message } => json!({
                "detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]
            }),
            other => serde_json::to_value(ErrorBody::new(other.error_type(), other.to_string()))
                .unwrap_or_default(),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::CONFLICT {
            // The generated registries client retries 409 unless told not to.
            resp.headers_mut()
                .insert("x-should-retry", http::HeaderValue::from_static("false"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameTaken { .. } => ApiError::Conflict(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
