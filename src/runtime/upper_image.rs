//! The sandbox's own writable disk: a sparse ext4 image file, created on the first start at
//! the requested capacity and grown (never shrunk) when a later start asks for more.

use std::fs;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::layout::SandboxLayout;
use super::{RuntimeError, blank_images, host};

/// How the image is formatted. The file is new and sparse, so every block mke2fs leaves
/// unwritten is a hole that reads as zeros, which is all that zeroing the journal would
/// write: `lazy_journal_init` skips it. Without it, mke2fs reserves the whole journal
/// (32 MiB of a 1 GiB image) on the host's disk for every sandbox; with it, a new image
/// takes well under 1 MiB there. (The inode tables are skipped already: mke2fs punches the
/// file first and marks them zeroed.)
const MKE2FS_ARGS: [&str; 8] = [
    "-q",
    "-F",
    "-t",
    "ext4",
    "-m",
    "0",
    "-E",
    "lazy_journal_init=1",
];

/// Makes sure the sandbox's upper image exists and holds at least `capacity` bytes. The
/// image must not be mounted or attached to a loop device.
pub async fn prepare(layout: &SandboxLayout, capacity: u64) -> Result<(), RuntimeError> {
    let image = &layout.upper_image;
    let inspected = image.to_path_buf();
    let found = host::blocking("inspecting the upper image", move || {
        match fs::metadata(&inspected) {
            Ok(meta) => Ok(Some((meta.len(), growing_marker(&inspected).exists()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RuntimeError::io("inspect", &inspected)(e)),
        }
    })
    .await?;
    match found {
        None => create(layout, capacity).await,
        // A grow that failed half-way left the file longer than its filesystem: finish it
        // even when the requested capacity is no larger. Shrinking could cut off files, so
        // a smaller request keeps the image as it is.
        Some((length, growing)) if length < capacity || growing => {
            grow(image, capacity.max(length)).await
        }
        Some(_) => Ok(()),
    }
}

/// Present while a grow is in progress (or after one failed), so the next start retries it.
fn growing_marker(image: &Path) -> PathBuf {
    image.with_extension("ext4.growing")
}

/// Creates the sparse image under a temporary name and renames it into place only once
/// formatted, so a crash never leaves a half-made image that a later start would trust. The
/// image is a copy of the blank one kept for `capacity` when there is one; otherwise it is
/// formatted, and kept as that blank image for the next create.
async fn create(layout: &SandboxLayout, capacity: u64) -> Result<(), RuntimeError> {
    let temp = layout.upper_image.with_extension("ext4.new");
    let (blanks, copy_to) = (layout.blank_images.clone(), temp.clone());
    let copied = host::blocking("copying a blank upper image", move || {
        let _ = fs::remove_file(&copy_to);
        blank_images::copy_kept(&blanks, &blank_key(capacity), &copy_to)
    })
    .await;
    let formatted = match copied {
        Ok(true) => Ok(()),
        Ok(false) => match format(&temp, capacity).await {
            Ok(()) => {
                keep_as_blank(layout, capacity, &temp).await;
                Ok(())
            }
            failed => failed,
        },
        Err(e) => {
            tracing::warn!(sandbox = %layout.id, "{e}; formatting the upper image instead");
            format(&temp, capacity).await
        }
    };
    let image = layout.upper_image.clone();
    host::blocking("placing the upper image", move || match formatted {
        Ok(()) => fs::rename(&temp, &image).map_err(RuntimeError::io("rename", &temp)),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    })
    .await
}

/// What a blank image is kept under: its capacity and a digest of the `mke2fs` options, so a
/// change of options never reuses images made with the old ones.
fn blank_key(capacity: u64) -> String {
    use sha2::{Digest, Sha256};
    let options = Sha256::digest(MKE2FS_ARGS.join(" "));
    format!("{capacity}-{}", &hex::encode(options)[..12])
}

/// Formats a new sparse file at `path` of `capacity` bytes (any file there is replaced).
async fn format(path: &Path, capacity: u64) -> Result<(), RuntimeError> {
    let sized = path.to_path_buf();
    host::blocking("creating the upper image", move || {
        let file = fs::File::create(&sized).map_err(RuntimeError::io("create", &sized))?;
        file.set_len(capacity)
            .map_err(RuntimeError::io("size", &sized))
    })
    .await?;
    host::run(
        "mke2fs",
        MKE2FS_ARGS
            .map(std::ffi::OsString::from)
            .into_iter()
            .chain([path.as_os_str().to_os_string()]),
    )
    .await
    .map(drop)
}

/// Keeps the image just formatted at `formatted` (before anything mounts it) as the blank
/// one for `capacity`. Once per capacity, so the create waits for it; a failure only costs
/// later creates a format of their own.
async fn keep_as_blank(layout: &SandboxLayout, capacity: u64, formatted: &Path) {
    let (blanks, formatted) = (layout.blank_images.clone(), formatted.to_path_buf());
    let kept = host::blocking("keeping a blank upper image", move || {
        blank_images::keep(&blanks, &blank_key(capacity), &formatted)
    })
    .await;
    if let Err(e) = kept {
        tracing::warn!(sandbox = %layout.id, "{e}");
    }
}

/// Extends the file (sparsely), checks the filesystem (resize2fs insists on a fresh check)
/// and grows it to fill the file. If the check or the resize fails, the marker stays and
/// the next start tries again.
async fn grow(image: &Path, capacity: u64) -> Result<(), RuntimeError> {
    let extended = image.to_path_buf();
    host::blocking("extending the upper image", move || {
        let marker = growing_marker(&extended);
        fs::write(&marker, b"").map_err(RuntimeError::io("create", &marker))?;
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&extended)
            .map_err(RuntimeError::io("open", &extended))?;
        file.set_len(capacity)
            .map_err(RuntimeError::io("extend", &extended))
    })
    .await?;

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
    let marker = growing_marker(image);
    host::blocking("finishing the grow", move || {
        fs::remove_file(&marker).map_err(RuntimeError::io("remove", &marker))
    })
    .await
}

fn grow_failed(image: &Path, capacity: u64, cause: RuntimeError) -> RuntimeError {
    RuntimeError::GrowDisk {
        image: image.to_path_buf(),
        capacity,
        reason: cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// A new 1 GiB image takes under 2 MiB of the host's disk (mke2fs's defaults reserved
    /// 33 MiB), passes a full check, and grows to a larger capacity. The next sandbox of
    /// that capacity gets a copy of the same blank image, as small and as clean.
    /// Whether two files hold the same bytes, read a MiB at a time (the images are 1 GiB).
    fn same_bytes(a: &Path, b: &Path) -> bool {
        use std::io::Read;
        let (mut a, mut b) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
        let (mut x, mut y) = (vec![0; 1 << 20], vec![0; 1 << 20]);
        loop {
            let n = a.read(&mut x).unwrap();
            if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
                return false;
            }
            if n == 0 {
                return b.read(&mut y).unwrap() == 0;
            }
        }
    }

    #[tokio::test]
    async fn a_new_image_is_small_on_disk_checks_clean_grows_and_is_kept_blank() {
        // e2fsprogs lives in /usr/sbin, which a user's PATH may not have; the server runs as
        // root, whose PATH does.
        if std::process::Command::new("mke2fs")
            .arg("-V")
            .output()
            .is_err()
        {
            eprintln!("skipped: mke2fs cannot be started from this PATH");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let sandboxes = dir.path().join("sandboxes");
        let layout = |id| {
            let layout = SandboxLayout::new(&sandboxes, id);
            fs::create_dir_all(&layout.dir).unwrap();
            layout
        };
        let (first, second) = (layout("first"), layout("second"));
        let check = |image: &Path| {
            let check = std::process::Command::new("e2fsck")
                .arg("-fn")
                .arg(image)
                .output()
                .unwrap();
            assert!(check.status.success(), "{check:?}");
        };

        prepare(&first, 1 << 30).await.unwrap();
        let blank = first
            .blank_images
            .join(format!("{}.ext4", blank_key(1 << 30)));
        assert!(same_bytes(&blank, &first.upper_image));
        prepare(&second, 1 << 30).await.unwrap();
        for image in [&first.upper_image, &second.upper_image] {
            let meta = fs::metadata(image).unwrap();
            assert_eq!(meta.len(), 1 << 30);
            let on_disk = meta.blocks() * 512;
            assert!(on_disk < 2 << 20, "{on_disk} bytes on disk");
            check(image);
        }
        assert!(same_bytes(&first.upper_image, &second.upper_image));

        prepare(&first, 2 << 30).await.unwrap();
        assert_eq!(fs::metadata(&first.upper_image).unwrap().len(), 2 << 30);
        assert!(!growing_marker(&first.upper_image).exists());
        check(&first.upper_image);
    }
}
