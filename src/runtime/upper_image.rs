//! The sandbox's own writable disk: a sparse ext4 image file, created on the first start at
//! the requested capacity and grown (never shrunk) when a later start asks for more.

use std::fs;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{RuntimeError, host};

/// Makes sure `image` exists and holds at least `capacity` bytes. The image must not be
/// mounted or attached to a loop device.
pub async fn prepare(image: &Path, capacity: u64) -> Result<(), RuntimeError> {
    let length = match fs::metadata(image) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return create(image, capacity).await;
        }
        Err(e) => return Err(RuntimeError::io("inspect", image)(e)),
    };
    // A grow that failed half-way left the file longer than its filesystem: finish it even
    // when the requested capacity is no larger. Shrinking could cut off files, so a smaller
    // request keeps the image as it is.
    if length < capacity || growing_marker(image).exists() {
        grow(image, capacity.max(length)).await
    } else {
        Ok(())
    }
}

/// Present while a grow is in progress (or after one failed), so the next start retries it.
fn growing_marker(image: &Path) -> PathBuf {
    image.with_extension("ext4.growing")
}

/// Creates the sparse image under a temporary name and renames it into place only once
/// formatted, so a crash never leaves a half-made image that a later start would trust.
async fn create(image: &Path, capacity: u64) -> Result<(), RuntimeError> {
    let temp = image.with_extension("ext4.new");
    let file = fs::File::create(&temp).map_err(RuntimeError::io("create", &temp))?;
    file.set_len(capacity)
        .map_err(RuntimeError::io("size", &temp))?;
    drop(file);
    let formatted = host::run(
        "mke2fs",
        ["-q", "-F", "-t", "ext4", "-m", "0"]
            .map(std::ffi::OsString::from)
            .into_iter()
            .chain([temp.clone().into_os_string()]),
    )
    .await;
    if let Err(e) = formatted {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    fs::rename(&temp, image).map_err(RuntimeError::io("rename", &temp))
}

/// Extends the file (sparsely), checks the filesystem (resize2fs insists on a fresh check)
/// and grows it to fill the file. If the check or the resize fails, the marker stays and
/// the next start tries again.
async fn grow(image: &Path, capacity: u64) -> Result<(), RuntimeError> {
    let marker = growing_marker(image);
    fs::write(&marker, b"").map_err(RuntimeError::io("create", &marker))?;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(RuntimeError::io("open", image))?;
    file.set_len(capacity)
        .map_err(RuntimeError::io("extend", image))?;
    drop(file);

    let mut check = Command::new("e2fsck");
    check.arg("-f").arg("-p").arg(image);
    let output = host::output(&mut check).await?;
    // 0: clean, 1: errors fixed, 2: errors fixed (reboot advice, moot for an image file).
    if !matches!(output.status.code(), Some(0..=2)) {
        return Err(grow_failed(image, capacity, host::failure(&check, &output)));
    }
    host::run("resize2fs", [image.as_os_str()])
        .await
        .map_err(|e| grow_failed(image, capacity, e))?;
    fs::remove_file(&marker).map_err(RuntimeError::io("remove", &marker))
}

fn grow_failed(image: &Path, capacity: u64, cause: RuntimeError) -> RuntimeError {
    RuntimeError::GrowDisk {
        image: image.to_path_buf(),
        capacity,
        reason: cause.to_string(),
    }
}
