//! `POST /grep`: lines containing a literal string in the regular files under
//! `path` (or in `path` itself when it is a file), optionally only files matching `glob`.
//!
//! Binary files (a NUL byte in their first block) are skipped. A line longer than
//! [`MAX_LINE`] is searched in its first `MAX_LINE` bytes only, and a matching line's `text`
//! is cut to [`MAX_TEXT`] bytes, so neither a huge file nor a huge line can swell memory or
//! the answer. Bounds and confinement are otherwise [`super::search`]'s.
//!
//! What the walk saw is not trusted at open time: each file is opened beneath the root without
//! following any link and searched only if the opened descriptor is a regular file
//! ([`super::regular_file`]), so a file swapped for a FIFO or a link meanwhile is skipped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use memchr::memmem::Finder;

use super::app::ApiError;
use super::regular_file::{self, OpenError};
use super::search::{self, Budget, Pattern, SearchError};
use crate::api::files::{GrepMatch, GrepRequest, GrepResponse};

/// Bytes of one line that are searched.
pub const MAX_LINE: u64 = 1 << 20;
/// Bytes of a matching line that are answered.
pub const MAX_TEXT: usize = 4096;
/// Bytes inspected for a NUL to tell a binary file.
const BINARY_PROBE: usize = 8192;

pub async fn grep(
    body: Result<Json<GrepRequest>, JsonRejection>,
) -> Result<Json<GrepResponse>, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        SearchError::InvalidRequest(format!(
            "expected {{\"pattern\": \"TODO\", \"path\": \"/abs/dir\", \"glob\": \"*.py\", \"limit\": 50}}: {rejection}"
        ))
    })?;
    let answer = tokio::task::spawn_blocking(move || find(&request))
        .await
        .map_err(|e| SearchError::InvalidRequest(format!("the search failed: {e}")))??;
    Ok(Json(answer))
}

/// Which files a `glob` filter admits: a bare pattern (no `/`, no `**`) is matched against
/// the basename at any depth, anything else against the path relative to the root.
enum FileFilter {
    All,
    Basename(Pattern),
    Relative(Pattern),
}

impl FileFilter {
    fn new(glob: Option<&str>) -> Result<FileFilter, SearchError> {
        Ok(match glob {
            None => FileFilter::All,
            Some(glob) if glob.contains('/') || glob.contains("**") => {
                FileFilter::Relative(Pattern::new(glob, "glob")?)
            }
            Some(glob) => FileFilter::Basename(Pattern::new(glob, "glob")?),
        })
    }

    fn admits(&self, relative: &Path) -> bool {
        match self {
            FileFilter::All => true,
            FileFilter::Basename(p) => relative.file_name().is_some_and(|n| p.is_match(n.as_ref())),
            FileFilter::Relative(p) => p.is_match(relative),
        }
    }
}

pub fn find(request: &GrepRequest) -> Result<GrepResponse, SearchError> {
    if request.pattern.is_empty() {
        return Err(SearchError::InvalidRequest(
            "pattern is empty; pass the literal text to search for".into(),
        ));
    }
    let filter = FileFilter::new(request.glob.as_deref())?;
    let limit = search::limit(request.limit)?;
    let (root, meta) = search::root(&request.path)?;
    let unreadable = |source| SearchError::Unreadable {
        path: request.path.clone(),
        source,
    };
    let files: Box<dyn Iterator<Item = Candidate>> = if meta.is_dir() {
        let dir = regular_file::open_dir(&root).map_err(unreadable)?;
        let walk = search::walk(&root, None).filter(|e| e.file_type().is_file());
        let root = root.clone();
        Box::new(walk.filter_map(move |entry| {
            let relative = search::relative(&root, &entry);
            filter.admits(relative).then(|| Candidate {
                file: regular_file::open_beneath(&dir, relative),
                shown: entry.path().to_string_lossy().into_owned(),
            })
        }))
    } else {
        // Opened before judging: a FIFO or device could block the search forever or never end.
        let file = regular_file::open(&root).map_err(|e| match e {
            OpenError::Io(source) => unreadable(source),
            OpenError::Directory | OpenError::Special(_) => SearchError::InvalidRequest(format!(
                "{}: {e}; pass a directory or a regular file",
                request.path
            )),
        })?;
        Box::new(std::iter::once(Candidate {
            file: Ok(file),
            shown: root.to_string_lossy().into_owned(),
        }))
    };
    let finder = Finder::new(request.pattern.as_bytes());
    let budget = Budget::start();
    let mut found = Found {
        matches: Vec::new(),
        limit,
        truncated: false,
    };
    for candidate in files {
        if budget.spent() {
            found.truncated = true;
        }
        if found.truncated {
            break;
        }
        // A file that vanished, cannot be read or is no longer a regular file beneath the
        // root is simply not searched.
        if let Ok(opened) = candidate.file {
            let _ = scan(opened, &candidate.shown, &finder, &budget, &mut found);
        }
    }
    Ok(GrepResponse {
        matches: found.matches,
        truncated: found.truncated,
    })
}

/// A file the walk found, opened as soon as it is reached, and the path it is reported as.
struct Candidate {
    file: Result<File, OpenError>,
    shown: String,
}

struct Found {
    matches: Vec<GrepMatch>,
    limit: usize,
    truncated: bool,
}

/// Searches one file line by line, adding its matches until the limit or deadline.
fn scan(
    file: File,
    shown: &str,
    finder: &Finder<'_>,
    budget: &Budget,
    found: &mut Found,
) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = reader.fill_buf()?;
    if memchr::memchr(0, &head[..head.len().min(BINARY_PROBE)]).is_some() {
        return Ok(());
    }
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if !line.ends_with(b"\n") && line.len() as u64 == MAX_LINE {
            // The rest of an overlong line is not searched, only skipped, a block at a time
            // so that a file without line breaks still respects the deadline.
            let mut rest = Vec::new();
            while !budget.spent() {
                rest.clear();
                let read = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut rest)?;
                if read == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
        }
        if finder.find(&line).is_some() {
            if found.matches.len() == found.limit {
                found.truncated = true;
                return Ok(());
            }
            found.matches.push(GrepMatch {
                path: shown.to_string(),
                line: number,
                text: text_of(&line),
            });
        }
        if budget.spent() {
            found.truncated = true;
            return Ok(());
        }
    }
}

/// A line without its ending, decoded lossily and cut at a character boundary.
fn text_of(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let shown = if line.len() > MAX_TEXT {
        &line[..super::output::utf8_safe_len(&line[..MAX_TEXT])]
    } else {
        line
    };
    String::from_utf8_lossy(shown).into_owned()
}
