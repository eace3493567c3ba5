//! What `/glob` and `/grep` share: checking the search root, compiling the
//! patterns, walking the tree, and the bounds that keep one request from running away.
//!
//! Bounds: at most `limit` results (default [`DEFAULT_LIMIT`], never above [`MAX_LIMIT`]) and
//! at most [`DEADLINE`] of walking; hitting either answers what was found with
//! `truncated: true`. Confinement: every result lies under the requested root — symbolic
//! links are reported but never followed (no escape, no loops), patterns cannot name `..` or
//! an absolute path, and kernel pseudo-filesystems (`/proc`, `/sys`, cgroups…) met below
//! the root are not descended into, since their files can be endless or block on read.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use globset::{GlobBuilder, GlobMatcher};
use nix::sys::statfs;

use super::app::ApiError;
use crate::api::error::kind;

/// Results answered when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit` honoured; larger ones are clamped to it.
pub const MAX_LIMIT: usize = 10_000;
/// Longest a search may walk before answering what it has.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Why a search could not start.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} is not a directory; pass the directory to search under")]
    NotADirectory(String),
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> ApiError {
        let (status, error_kind) = match &error {
            SearchError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, kind::INVALID_REQUEST),
            SearchError::NotFound(_) => (StatusCode::NOT_FOUND, kind::FILE_NOT_FOUND),
            SearchError::NotADirectory(_) => (StatusCode::BAD_REQUEST, kind::READ_ERROR),
            SearchError::Unreadable { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                (StatusCode::FORBIDDEN, kind::READ_ERROR)
            }
            SearchError::Unreadable { .. } => (StatusCode::BAD_REQUEST, kind::READ_ERROR),
        };
        ApiError::new(status, error_kind, error.to_string())
    }
}

/// The number of results to answer at most.
pub fn limit(requested: Option<i64>) -> Result<usize, SearchError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
        Some(n) => Err(SearchError::InvalidRequest(format!(
            "limit must be at least 1, got {n}; leave it out for the default of {DEFAULT_LIMIT}"
        ))),
    }
}

/// The search root: an absolute path that exists, normalised (no `.`, doubled or trailing
/// slashes). Whether it must be a directory is the caller's decision.
pub fn root(path: &str) -> Result<(PathBuf, std::fs::Metadata), SearchError> {
    if !path.starts_with('/') {
        return Err(SearchError::InvalidRequest(format!(
            "path must be absolute (start with /), got {path:?}"
        )));
    }
    let root: PathBuf = Path::new(path).components().collect();
    let meta = std::fs::metadata(&root).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SearchError::NotFound(path.to_string()),
        _ => SearchError::Unreadable {
            path: path.to_string(),
            source,
        },
    })?;
    Ok((root, meta))
}

/// A compiled pattern matched against paths relative to the root.
pub struct Pattern {
    matcher: GlobMatcher,
    /// How deep the walk must go: `None` when `**` may span any number of segments.
    depth: Option<usize>,
}

impl Pattern {
    /// Compiles `pattern`; `what` names the field in error messages.
    pub fn new(pattern: &str, what: &str) -> Result<Pattern, SearchError> {
        let invalid =
            |why: String| SearchError::InvalidRequest(format!("{what} {pattern:?} {why}"));
        if pattern.is_empty() {
            return Err(invalid("is empty; pass e.g. \"*\" or \"**/*.py\"".into()));
        }
        if pattern.starts_with('/') {
            return Err(invalid(
                "must be relative to `path`, not absolute; move the directory part into `path`"
                    .into(),
            ));
        }
        if pattern.split('/').any(|segment| segment == "..") {
            return Err(invalid(
                "may not contain `..`: results stay under `path`; search from a higher `path`"
                    .into(),
            ));
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| invalid(format!("is not a valid glob: {}", e.kind())))?;
        let depth =
            (!pattern.contains("**")).then(|| pattern.split('/').filter(|s| !s.is_empty()).count());
        Ok(Pattern {
            matcher: glob.compile_matcher(),
            depth,
        })
    }

    pub fn depth(&self) -> Option<usize> {
        self.depth
    }

    pub fn is_match(&self, relative: &Path) -> bool {
        self.matcher.is_match(relative)
    }
}

/// Entries below `root` (not `root` itself), depth-first in name order, never following
/// symbolic links, skipping pseudo-filesystems below a root that is not one itself, and
/// skipping what cannot be read.
pub fn walk(root: &Path, max_depth: Option<usize>) -> impl Iterator<Item = walkdir::DirEntry> {
    let root_is_pseudo = is_pseudo_fs(root);
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .max_depth(max_depth.unwrap_or(usize::MAX))
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |entry| {
            root_is_pseudo || !entry.file_type().is_dir() || !is_pseudo_fs(entry.path())
        })
        .filter_map(Result::ok)
}

/// `entry`'s path relative to `root`.
pub fn relative<'a>(root: &Path, entry: &'a walkdir::DirEntry) -> &'a Path {
    entry.path().strip_prefix(root).unwrap_or(entry.path())
}

/// Whether `path` lies on a kernel filesystem whose files are generated (and may never end).
fn is_pseudo_fs(path: &Path) -> bool {
    let Ok(fs) = statfs::statfs(path) else {
        return false;
    };
    [
        statfs::PROC_SUPER_MAGIC,
        statfs::SYSFS_MAGIC,
        statfs::CGROUP_SUPER_MAGIC,
        statfs::CGROUP2_SUPER_MAGIC,
        statfs::DEBUGFS_MAGIC,
        statfs::SECURITYFS_MAGIC,
        statfs::TRACEFS_MAGIC,
    ]
    .contains(&fs.filesystem_type())
}

/// The search's time budget.
pub struct Budget {
    until: Instant,
}

impl Budget {
    pub fn start() -> Budget {
        Budget {
            until: Instant::now() + DEADLINE,
        }
    }

    pub fn spent(&self) -> bool {
        Instant::now() >= self.until
    }
}
