//! API errors and the one place where they become HTTP statuses and JSON bodies.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::images::{ImageError, LayerError};
use super::store::StoreError;
use crate::api::error::kind;
use crate::api::{ErrorBody, ValidationBody};
use crate::runtime::RuntimeError;

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
    /// The state disk has too little room for new work.
    #[error("{0}")]
    DiskFull(String),
    /// A failure of the sandbox runtime; its variant picks the status ([`runtime_answer`]).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A failure building a snapshot image; its variant picks the status ([`image_answer`]).
    #[error(transparent)]
    Image(#[from] ImageError),
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
            error: kind::NOT_READY,
            message: message.into(),
        }
    }

    /// The request body field to blame, for failures answered as a validation error.
    fn invalid_field(&self) -> Option<&str> {
        match self {
            ApiError::Validation { field, .. } => Some(field),
            ApiError::Image(ImageError::InvalidReference { .. }) => Some("docker_image"),
            ApiError::Image(ImageError::CapacityTooSmall { .. }) => Some("fs_capacity_bytes"),
            _ => None,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Runtime(e) => runtime_answer(e).0,
            ApiError::Image(e) => image_answer(e).0,
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
            ApiError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => kind::UNAUTHORIZED,
            ApiError::NotFound(_) => kind::NOT_FOUND,
            ApiError::Conflict(_) => kind::CONFLICT,
            ApiError::Validation { .. } => kind::VALIDATION_ERROR,
            ApiError::BadRequest { error, .. } | ApiError::CreationFailed { error, .. } => error,
            ApiError::Timeout(_) => kind::TIMEOUT,
            ApiError::TooLarge(_) => kind::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => kind::INTERNAL_ERROR,
            ApiError::DiskFull(_) => kind::INSUFFICIENT_STORAGE,
            ApiError::Runtime(e) => runtime_answer(e).1,
            ApiError::Image(e) => image_answer(e).1,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("{self}");
        }
        let message = super::host_facts::scrub(&self.to_string());
        let body = match self.invalid_field() {
            Some(field) => serde_json::to_value(ValidationBody::new(field, message)),
            None => serde_json::to_value(ErrorBody::new(self.error_type(), message)),
        };
        let body = body.unwrap_or_default();
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

/// How a runtime failure is answered. The sandbox's state decides where the request can tell:
/// not running or not answering is `400 NotReady` (as the capture and data-plane endpoints
/// answer today); a sandbox that cannot start as configured is `422 SandboxConfig` (as a failed
/// boot is answered on create); everything else is the host's problem, `500`.
fn runtime_answer(error: &RuntimeError) -> (StatusCode, &'static str) {
    match error {
        RuntimeError::NotRunning(_) | RuntimeError::AgentUnreachable { .. } => {
            (StatusCode::BAD_REQUEST, kind::NOT_READY)
        }
        RuntimeError::InvalidSpec { .. }
        | RuntimeError::SnapshotMissing(_)
        | RuntimeError::GrowDisk { .. }
        | RuntimeError::NotReady { .. } => (StatusCode::UNPROCESSABLE_ENTITY, kind::SANDBOX_CONFIG),
        RuntimeError::InvalidId { .. }
        | RuntimeError::InvalidConfig(_)
        | RuntimeError::RuntimeBinary { .. }
        | RuntimeError::AgentFiles { .. }
        | RuntimeError::Io { .. }
        | RuntimeError::Command { .. }
        | RuntimeError::Bundle(_)
        | RuntimeError::BlockingTask { .. }
        | RuntimeError::StillMounted { .. }
        | RuntimeError::LoopsStillBound(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, kind::INTERNAL_ERROR)
        }
    }
}

/// How an image failure is answered: a reference that cannot name an image, or an image this
/// server cannot unpack, is the request's fault (`422` / `400`); a capacity too small for the
/// image names the field to change. Pulls stay `500`: a registry's refusal and a network
/// failure are not told apart yet.
fn image_answer(error: &ImageError) -> (StatusCode, &'static str) {
    match error {
        ImageError::InvalidReference { .. } | ImageError::CapacityTooSmall { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, kind::VALIDATION_ERROR)
        }
        ImageError::Unsupported { .. }
        | ImageError::Layer {
            source: LayerError::OutsideRoot(_) | LayerError::EscapesRoot(_),
            ..
        } => (StatusCode::BAD_REQUEST, kind::UNSUPPORTED),
        ImageError::Pull { .. }
        | ImageError::Layout { .. }
        | ImageError::DigestMismatch { .. }
        | ImageError::Config(_)
        | ImageError::Layer { .. }
        | ImageError::Mkfs(_)
        | ImageError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, kind::INTERNAL_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn answer(error: impl Into<ApiError>) -> (u16, serde_json::Value) {
        let response = error.into().into_response();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn status_and_kind(error: impl Into<ApiError>) -> (u16, String) {
        let (status, body) = answer(error).await;
        (
            status,
            body["detail"]["error"].as_str().unwrap().to_string(),
        )
    }

    #[tokio::test]
    async fn runtime_failures_pick_their_status_by_variant() {
        let not_running = RuntimeError::NotRunning("sb".into());
        assert_eq!(status_and_kind(not_running).await, (400, "NotReady".into()));
        let bad_spec = RuntimeError::InvalidSpec {
            id: "sb".into(),
            reason: "cpu_millicores must be positive, got 0".into(),
        };
        assert_eq!(
            status_and_kind(bad_spec).await,
            (422, "SandboxConfig".into())
        );
        let mounted = RuntimeError::StillMounted {
            id: "sb".into(),
            mounts: "/x".into(),
        };
        assert_eq!(
            status_and_kind(mounted).await,
            (500, "InternalError".into())
        );
    }

    #[tokio::test]
    async fn image_failures_blame_the_request_only_where_it_is_at_fault() {
        let (status, body) = answer(ImageError::InvalidReference {
            reference: "UPPER".into(),
            reason: "repository names are lowercase".into(),
        })
        .await;
        assert_eq!(status, 422);
        assert_eq!(body["detail"][0]["loc"], json!(["body", "docker_image"]));
        let escaping = ImageError::Layer {
            digest: "sha256:0".into(),
            source: LayerError::OutsideRoot("../x".into()),
        };
        assert_eq!(status_and_kind(escaping).await, (400, "Unsupported".into()));
        let pull = ImageError::Pull {
            reference: "r".into(),
            message: "connection refused".into(),
        };
        assert_eq!(status_and_kind(pull).await, (500, "InternalError".into()));
    }
}
