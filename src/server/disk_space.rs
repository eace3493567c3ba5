//! New work is refused while the state disk is nearly full. Everything a sandbox or a build
//! writes lands under the state directory (images, upper layers, the database), and a disk
//! that runs out under a running boot or build fails it half-way, or fills the upper layers
//! of running sandboxes from below. So creates, starts, builds and captures first check that
//! the disk keeps [`MIN_FREE_BYTES`] for unprivileged use (root's reserve is not counted, so
//! it stays a margin) and answer `507` with what is free when it does not. Work already
//! running is left alone, and nothing stored is touched.

use std::path::Path;

use super::error::ApiError;

/// Room a new sandbox, build or capture needs to get under way.
pub const MIN_FREE_BYTES: u64 = 128 << 20;

/// `Ok` when the filesystem of `state_dir` has room for new work, else a 507 saying so.
pub async fn ensure_room(state_dir: &Path) -> Result<(), ApiError> {
    let dir = state_dir.to_path_buf();
    let free = tokio::task::spawn_blocking(move || {
        nix::sys::statvfs::statvfs(&dir)
            .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("checking free disk space: {e}")))?
    .map_err(|e| ApiError::Internal(format!("checking free disk space: {e}")))?;
    if free >= MIN_FREE_BYTES {
        return Ok(());
    }
    Err(ApiError::DiskFull(format!(
        "the server's state disk is full ({} MiB free, {} MiB needed for new work): free \
         some space (delete sandboxes or snapshots) and try again; running sandboxes are \
         not affected",
        free >> 20,
        MIN_FREE_BYTES >> 20
    )))
}
