//! The error body every endpoint returns: `{"detail": {"error", "message"}}`.

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
