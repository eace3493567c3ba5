//! `POST /glob`: files and directories under `path` whose path relative to it
//! matches `pattern`; `ls` is `glob("*")`. Bounds and confinement are [`super::search`]'s.
//! Results come in walk order (depth-first, by name); the SDK treats them as unordered.

use std::time::SystemTime;

use axum::Json;
use axum::extract::rejection::JsonRejection;

use super::app::ApiError;
use super::search::{self, Budget, Pattern, SearchError};
use crate::api::files::{FileInfo, GlobRequest, GlobResponse};

pub async fn glob(
    body: Result<Json<GlobRequest>, JsonRejection>,
) -> Result<Json<GlobResponse>, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        SearchError::InvalidRequest(format!(
            "expected {{\"pattern\": \"**/*.py\", \"path\": \"/abs/dir\", \"limit\": 100}}: {rejection}"
        ))
    })?;
    let answer = tokio::task::spawn_blocking(move || find(&request))
        .await
        .map_err(|e| SearchError::InvalidRequest(format!("the search failed: {e}")))??;
    Ok(Json(answer))
}

/// Walks the tree (only as deep as the pattern can reach) and collects the matches.
pub fn find(request: &GlobRequest) -> Result<GlobResponse, SearchError> {
    let pattern = Pattern::new(&request.pattern, "pattern")?;
    let limit = search::limit(request.limit)?;
    let (root, meta) = search::root(&request.path)?;
    if !meta.is_dir() {
        return Err(SearchError::NotADirectory(request.path.clone()));
    }
    let budget = Budget::start();
    let mut matches = Vec::new();
    let mut truncated = false;
    for entry in search::walk(&root, pattern.depth()) {
        if budget.spent() {
            truncated = true;
            break;
        }
        if !pattern.is_match(search::relative(&root, &entry)) {
            continue;
        }
        if matches.len() == limit {
            truncated = true;
            break;
        }
        matches.push(describe(&entry));
    }
    Ok(GlobResponse { matches, truncated })
}

/// An entry as the SDK's `FileInfo`. A symbolic link is described itself (never its target);
/// directories report size 0, since their inode size says nothing useful.
fn describe(entry: &walkdir::DirEntry) -> FileInfo {
    let meta = entry.metadata().ok();
    let is_dir = entry.file_type().is_dir();
    FileInfo {
        path: entry.path().to_string_lossy().into_owned(),
        is_dir,
        size_bytes: match &meta {
            Some(meta) if !is_dir => meta.len(),
            _ => 0,
        },
        modified_at: meta.and_then(|m| m.modified().ok()).map(rfc3339),
    }
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
