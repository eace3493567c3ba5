//! The error bodies endpoints answer with — `{"detail": {"error", "message"}}`, or the
//! FastAPI-style list of a validation error — and the error kinds they carry.

use serde::{Deserialize, Serialize};

/// Canonical error envelope (control plane and data plane alike).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub detail: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable type, e.g. `NotFound`, `Conflict`, `ValidationError`.
    pub error: String,
    /// Human-readable text that says what went wrong and what to do next.
    pub message: String,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            detail: ErrorDetail {
                error: error.into(),
                message: message.into(),
            },
        }
    }
}

/// The body of a validation error, FastAPI-style, from which the official SDK raises
/// `ValidationError(field=…)`: `{"detail": [{"loc": ["body", field], "msg", "type"}]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationBody {
    pub detail: Vec<ValidationDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationDetail {
    /// Where the bad value is: `["body", "<field>"]`.
    pub loc: Vec<String>,
    pub msg: String,
    /// Always `value_error` here.
    #[serde(rename = "type")]
    pub kind: String,
}

impl ValidationBody {
    /// A validation error on the request body's `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationBody {
            detail: vec![ValidationDetail {
                loc: vec!["body".into(), field.into()],
                msg: message.into(),
                kind: "value_error".into(),
            }],
        }
    }
}

/// The machine-readable error kinds on the wire: `detail.error` of an [`ErrorBody`], and the
/// `error_type` of a failed command on an exec stream. Clients tell failures apart by these.
pub mod kind {
    // Control plane and data plane alike.
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const NOT_FOUND: &str = "NotFound";
    pub const CONFLICT: &str = "Conflict";
    pub const VALIDATION_ERROR: &str = "ValidationError";
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    pub const UNSUPPORTED: &str = "Unsupported";
    pub const NOT_READY: &str = "NotReady";
    pub const TIMEOUT: &str = "Timeout";
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// The server's state disk has too little room for new work (`507`).
    pub const INSUFFICIENT_STORAGE: &str = "InsufficientStorage";

    // Sandboxes and snapshots.
    pub const SNAPSHOT_NOT_READY: &str = "SnapshotNotReady";
    pub const SANDBOX_CONFIG: &str = "SandboxConfig";

    // Commands (exec streams and the one-shot `POST /execute`).
    pub const COMMAND_TIMEOUT: &str = "CommandTimeout";
    pub const COMMAND_ERROR: &str = "CommandError";
    pub const COMMAND_NOT_FOUND: &str = "CommandNotFound";
    pub const SPAWN_FAILED: &str = "SpawnFailed";
    pub const SERVER_SHUTTING_DOWN: &str = "ServerShuttingDown";

    // Files.
    pub const FILE_NOT_FOUND: &str = "FileNotFound";
    pub const READ_ERROR: &str = "ReadError";
    pub const WRITE_ERROR: &str = "WriteError";

    // Service URLs and download links.
    pub const FORBIDDEN: &str = "Forbidden";
    pub const SERVICE_UNREACHABLE: &str = "ServiceUnreachable";
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
}
