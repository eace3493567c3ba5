//! Data-plane file endpoint shapes (`/upload`, `/download`).

use serde::{Deserialize, Serialize};

/// Query string of `/upload` and `/download`: `?path=<path>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathQuery {
    pub path: String,
}

/// Body answered by a successful `/upload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadResponse {
    pub path: String,
    pub written: u64,
}
