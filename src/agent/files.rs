//! `POST /upload` and `GET|HEAD /download`. Uploads stream the `file` part to
//! a temporary file beside the target and rename it into place, so a replayed request simply
//! rewrites the file. Downloads stream from disk with validators and single byte ranges, and
//! only ever read a regular file (a FIFO or device is refused at once, never waited on).

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Query, rejection::QueryRejection};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::app::ApiError;
use super::range::{RangeAnswer, if_none_match_hits, parse_range};
use super::regular_file::{self, OpenError};
use crate::api::error::kind;
use crate::api::files::{PathQuery, UploadResponse};

fn write_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, kind::WRITE_ERROR, message)
}

pub async fn upload(
    query: Result<Query<PathQuery>, QueryRejection>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<UploadResponse>, ApiError> {
    let Query(PathQuery { path }) =
        query.map_err(|_| write_error("pass the destination as ?path=<file path>"))?;
    if path.is_empty() {
        return Err(write_error("path is empty; pass ?path=<file path>"));
    }
    let mut multipart = multipart.map_err(|e| {
        write_error(format!(
            "expected a multipart/form-data body with a part named `file`: {e}"
        ))
    })?;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| write_error(format!("malformed multipart body: {e}")))?
    {
        if field.name() == Some("file") {
            let written = write_atomically(Path::new(&path), field).await?;
            return Ok(Json(UploadResponse { path, written }));
        }
    }
    Err(write_error("the multipart body has no part named `file`"))
}

async fn write_atomically(target: &Path, field: Field<'_>) -> Result<u64, ApiError> {
    let shown = target.display();
    if target.is_dir() {
        return Err(write_error(format!(
            "{shown} is a directory; pass a file path"
        )));
    }
    let name = target
        .file_name()
        .ok_or_else(|| write_error(format!("{shown} does not name a file")))?;
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| write_error(format!("cannot create directory {}: {e}", parent.display())))?;
    let temp = parent.join(format!(
        ".{}.upload-{}",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = stream_to(&temp, field).await;
    let result = match result {
        Ok(written) => tokio::fs::rename(&temp, target)
            .await
            .map(|()| written)
            .map_err(|e| write_error(format!("cannot write {shown}: {e}"))),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    result
}

async fn stream_to(temp: &Path, mut field: Field<'_>) -> Result<u64, ApiError> {
    let fail = |e: std::io::Error| write_error(format!("cannot write {}: {e}", temp.display()));
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .await
        .map_err(fail)?;
    let mut written = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| write_error(format!("upload interrupted: {e}")))?
    {
        file.write_all(&chunk).await.map_err(fail)?;
        written += chunk.len() as u64;
    }
    file.flush().await.map_err(fail)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .await
        .map_err(fail)?;
    Ok(written)
}

fn read_error(status: StatusCode, message: String) -> ApiError {
    ApiError::new(status, kind::READ_ERROR, message)
}

pub async fn download(
    query: Result<Query<PathQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(PathQuery { path }) = query.map_err(|_| {
        read_error(
            StatusCode::BAD_REQUEST,
            "pass the file as ?path=<file path>".into(),
        )
    })?;
    let mut file = open_regular(&path).await?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| read_error(StatusCode::BAD_REQUEST, format!("cannot stat {path}: {e}")))?;
    let size = meta.len();
    let etag = etag(&meta);
    let mut response_headers = HeaderMap::new();
    set(&mut response_headers, header::ETAG, etag.clone());
    set(
        &mut response_headers,
        header::LAST_MODIFIED,
        last_modified(&meta),
    );
    set(&mut response_headers, header::ACCEPT_RANGES, "bytes".into());
    if if_none_match_hits(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    let (status, first, length) = match parse_range(&headers, &etag, size) {
        RangeAnswer::Full => (StatusCode::OK, 0, size),
        RangeAnswer::Partial { first, last } => {
            let range = format!("bytes {first}-{last}/{size}");
            set(&mut response_headers, header::CONTENT_RANGE, range);
            (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
        }
        RangeAnswer::Unsatisfiable => {
            let range = format!("bytes */{size}");
            set(&mut response_headers, header::CONTENT_RANGE, range);
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
        }
    };
    let content_type = "application/octet-stream".into();
    set(&mut response_headers, header::CONTENT_TYPE, content_type);
    set(
        &mut response_headers,
        header::CONTENT_LENGTH,
        length.to_string(),
    );
    if first > 0 {
        file.seek(std::io::SeekFrom::Start(first))
            .await
            .map_err(|e| read_error(StatusCode::BAD_REQUEST, format!("cannot read {path}: {e}")))?;
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(length)));
    Ok((status, response_headers, body).into_response())
}

/// Opens `path` for reading if it is a regular file. Opened without waiting for a writer and
/// judged by what was opened: a FIFO put at `path` would otherwise hold this request (and a
/// blocking thread) forever.
async fn open_regular(path: &str) -> Result<tokio::fs::File, ApiError> {
    let opened = {
        let path = PathBuf::from(path);
        tokio::task::spawn_blocking(move || regular_file::open(&path)).await
    };
    let opened = opened.map_err(|e| {
        read_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {path}: {e}"),
        )
    })?;
    let file = opened.map_err(|e| refused_open(path, e))?;
    Ok(tokio::fs::File::from_std(file))
}

/// Why `path` cannot be downloaded, as the status and kind clients tell apart.
fn refused_open(path: &str, error: OpenError) -> ApiError {
    match error {
        OpenError::Io(e) if e.kind() == ErrorKind::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            kind::FILE_NOT_FOUND,
            format!("{path} does not exist"),
        ),
        OpenError::Io(e) if e.kind() == ErrorKind::PermissionDenied => {
            read_error(StatusCode::FORBIDDEN, format!("cannot read {path}: {e}"))
        }
        OpenError::Io(e) => read_error(StatusCode::BAD_REQUEST, format!("cannot read {path}: {e}")),
        OpenError::Directory => read_error(
            StatusCode::BAD_REQUEST,
            format!("{path} is a directory; pass a file path"),
        ),
        OpenError::Special(what) => read_error(
            StatusCode::BAD_REQUEST,
            format!("{path} is {what}; only regular files can be downloaded"),
        ),
    }
}

/// Size, modification time to the nanosecond and inode: any rewrite (even an atomic rename over
/// the same path) changes at least one of them.
fn etag(meta: &std::fs::Metadata) -> String {
    format!(
        "\"{:x}-{:x}.{:x}-{:x}\"",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    )
}

/// `Last-Modified`, in the HTTP date format.
fn last_modified(meta: &std::fs::Metadata) -> String {
    chrono::DateTime::from_timestamp(meta.mtime(), 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Sets a header; a value that cannot be one (never the case for ours) is left out.
fn set(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}
