//! Blank upper images kept by format, so a new sandbox's disk is a sparse copy of one
//! instead of a run of `mke2fs`.
//!
//! A freshly formatted image holds well under 1 MiB of data in about ten extents (at the
//! capacities sandboxes use); the rest is holes. Copying only those extents (`SEEK_DATA`/
//! `SEEK_HOLE` and `copy_file_range`) costs a few system calls, where `mke2fs` costs a
//! process, its libraries, about 150 writes and four `fsync`s. The first create of a format
//! (a capacity and the `mke2fs` options) formats its image as before and keeps a copy of it,
//! before anything mounts it, under `root/blank-images/<key>.ext4`; later creates of that
//! format copy it.
//!
//! Copies share the blank image's filesystem UUID and directory hash seed. Nothing on the
//! host looks disks up by UUID (every mount names its loop device) and each copy is a
//! filesystem of its own. A sandbox can see the UUID only as `statfs`'s `f_fsid`, which
//! tells it no more than `/proc/sys/kernel/random/boot_id` already does: that it shares a
//! host with other sandboxes of this server.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::unistd::Whence;

use super::RuntimeError;

/// How many formats keep a blank image; the least recently used goes first.
const KEPT: usize = 8;

/// The blank image kept for `key` under `dir`.
fn kept_image(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.ext4"))
}

/// Fills `destination` (which must not exist) with a copy of the blank image kept for `key`,
/// flushed to disk. `Ok(false)` when none is kept. A kept image that cannot be copied is
/// removed, so the next create formats and keeps a new one instead of failing the same way.
pub fn copy_kept(dir: &Path, key: &str, destination: &Path) -> Result<bool, RuntimeError> {
    let kept = kept_image(dir, key);
    let source = match File::open(&kept) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(RuntimeError::io("open", &kept)(e)),
    };
    let target = File::create_new(destination).map_err(RuntimeError::io("create", destination))?;
    if let Err(e) = sparse_copy(&source, &target) {
        let _ = fs::remove_file(&kept);
        return Err(RuntimeError::io("copy a blank image to", destination)(e));
    }
    // Its age is when it was last used: the eviction keeps the formats in use.
    let _ = source.set_modified(SystemTime::now());
    Ok(true)
}

/// Keeps `formatted` (a blank image just made for `key`, not yet mounted) for later creates.
/// The copy is an unnamed file in `dir` until it is whole and flushed, and only then linked
/// under its name, so a crash never leaves a partial image (nor a file to clean up). When
/// creates race to keep the same format, the first link wins and the others' copies vanish.
pub fn keep(dir: &Path, key: &str, formatted: &Path) -> Result<(), RuntimeError> {
    super::layout::create_private_dir(dir)?;
    let source = File::open(formatted).map_err(RuntimeError::io("open", formatted))?;
    let kept = kept_image(dir, key);
    let linked = OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .and_then(|copy| {
            sparse_copy(&source, &copy)?;
            let linked = nix::unistd::linkat(
                &copy,
                "",
                nix::fcntl::AT_FDCWD,
                &kept,
                AtFlags::AT_EMPTY_PATH,
            );
            match linked {
                Ok(()) | Err(Errno::EEXIST) => Ok(()),
                Err(e) => Err(e.into()),
            }
        });
    linked.map_err(RuntimeError::io("keep a blank image from", formatted))?;
    forget_the_least_used(dir, &kept);
    Ok(())
}

/// Removes kept images beyond [`KEPT`], least recently used first (never `just_kept`). Best
/// effort: an image left behind only takes its disk space, about 1 MiB.
fn forget_the_least_used(dir: &Path, just_kept: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut others: Vec<_> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let used = fs::metadata(&path).ok()?.modified().ok()?;
            (path != just_kept).then_some((used, path))
        })
        .collect();
    others.sort();
    let excess = (others.len() + 1).saturating_sub(KEPT);
    for (_, path) in others.into_iter().take(excess) {
        let _ = fs::remove_file(path);
    }
}

/// Copies `source` to the empty `target` extent by extent, leaving its holes as holes, and
/// flushes the copy: `mke2fs` syncs what it writes, and so does this.
fn sparse_copy(source: &File, target: &File) -> io::Result<()> {
    let length = source.metadata()?.len();
    target.set_len(length)?;
    let mut offset = 0;
    loop {
        let data = match nix::unistd::lseek(source, offset, Whence::SeekData) {
            Ok(data) => data,
            // No data past `offset`: the rest is a hole.
            Err(Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = nix::unistd::lseek(source, data, Whence::SeekHole)?;
        let (mut read_at, mut write_at) = (data, data);
        while read_at < hole {
            let wanted = usize::try_from(hole - read_at).unwrap_or(usize::MAX);
            let copied = nix::fcntl::copy_file_range(
                source,
                Some(&mut read_at),
                target,
                Some(&mut write_at),
                wanted,
            )?;
            if copied == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        offset = hole;
    }
    target.sync_data()
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// A file of `length` bytes with `chunks` written at their offsets, holes elsewhere.
    fn sparse_file(path: &Path, length: u64, chunks: &[(u64, &[u8])]) {
        let mut file = File::create(path).unwrap();
        file.set_len(length).unwrap();
        for (offset, bytes) in chunks {
            file.seek(SeekFrom::Start(*offset)).unwrap();
            file.write_all(bytes).unwrap();
        }
    }

    #[test]
    fn a_kept_image_is_copied_byte_for_byte_and_stays_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, formatted) = (dir.path().join("kept"), dir.path().join("formatted"));
        let length = 64 << 20;
        let block = vec![0xa5; 8192];
        sparse_file(
            &formatted,
            length,
            &[(0, &block), (20 << 20, b"middle"), (length - 5, b"tail!")],
        );
        let destination = dir.path().join("copy");
        assert!(!copy_kept(&kept, "64m", &destination).unwrap());
        assert!(!destination.exists());

        keep(&kept, "64m", &formatted).unwrap();
        // Only the image itself: the copy was unnamed until whole.
        let names: Vec<_> = fs::read_dir(&kept)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["64m.ext4"]);
        assert!(copy_kept(&kept, "64m", &destination).unwrap());
        assert_eq!(
            fs::read(&destination).unwrap(),
            fs::read(&formatted).unwrap()
        );
        let on_disk = fs::metadata(&destination).unwrap().blocks() * 512;
        assert!(on_disk < 1 << 20, "{on_disk} bytes on disk");
        // Another format has no kept image, an existing destination is never overwritten,
        // and keeping the same format again leaves the first copy in place.
        assert!(!copy_kept(&kept, "128m", &dir.path().join("other")).unwrap());
        assert!(copy_kept(&kept, "64m", &destination).is_err());
        keep(&kept, "64m", &formatted).unwrap();
        assert_eq!(fs::read_dir(&kept).unwrap().count(), 1);
    }

    #[test]
    fn the_least_recently_used_formats_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        let formatted = dir.path().join("formatted");
        sparse_file(&formatted, 1 << 20, &[(0, b"blank")]);
        let names = |keys: &[&str]| {
            let mut names: Vec<String> = keys.iter().map(|key| format!("{key}.ext4")).collect();
            names.sort();
            names
        };
        let first: Vec<String> = (0..KEPT).map(|n| format!("old{n}")).collect();
        for (n, key) in first.iter().enumerate() {
            keep(&kept, key, &formatted).unwrap();
            // Used in the order kept, a second apart (timestamps made at once may tie).
            let used = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 + n as u64);
            let image = File::open(kept_image(&kept, key)).unwrap();
            image.set_modified(used).unwrap();
        }
        // The oldest is used again, so the next three go instead of it.
        assert!(copy_kept(&kept, "old0", &dir.path().join("used")).unwrap());
        for key in ["new0", "new1", "new2"] {
            keep(&kept, key, &formatted).unwrap();
        }
        let mut left: Vec<String> = fs::read_dir(&kept)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec!["old0", "new0", "new1", "new2"];
        expected.extend(first[4..].iter().map(String::as_str));
        assert_eq!(left, names(&expected));
    }
}
