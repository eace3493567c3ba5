//! Data-plane file endpoint shapes (`/upload`, `/download`, `/glob`, `/grep`).

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

/// Body of `POST {dp}/glob`: entries under `path` whose path relative to it
/// matches `pattern` (`**` spans segments; `*`, `?`, `[...]` stay within one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GlobRequest {
    pub pattern: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One entry found by `/glob`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Absolute path of the entry.
    pub path: String,
    pub is_dir: bool,
    pub size_bytes: u64,
    /// RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
}

/// Answer of `/glob`; `truncated` says a result cap or the search deadline was hit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GlobResponse {
    pub matches: Vec<FileInfo>,
    pub truncated: bool,
}

/// Body of `POST {dp}/grep`: lines containing the literal `pattern` in files under
/// `path`, optionally only files matching `glob`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrepRequest {
    pub pattern: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One matching line found by `/grep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrepMatch {
    /// Absolute path of the file.
    pub path: String,
    /// 1-based line number.
    pub line: u64,
    /// The line without its line ending.
    pub text: String,
}

/// Answer of `/grep`; `truncated` says a result cap or the search deadline was hit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrepResponse {
    pub matches: Vec<GrepMatch>,
    pub truncated: bool,
}
