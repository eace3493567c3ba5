//! Blank upper images kept by capacity, so a new sandbox's disk is a sparse copy of one
//! instead of a run of `mke2fs`.
//!
//! A freshly formatted image holds well under 1 MiB of data in about ten extents; the rest is
//! holes. Copying only those extents (`SEEK_DATA`/`SEEK_HOLE` and `copy_file_range`) costs a
//! few system calls, where `mke2fs` costs a process, its libraries, about 150 writes and four
//! `fsync`s. The first create of a capacity formats its image as before and keeps a copy of
//! it, before anything mounts it, under `root/blank-images/<capacity>.ext4`; later creates of
//! that capacity copy it.
//!
//! Copies share the blank image's filesystem UUID and directory hash seed. Nothing on the
//! host looks disks up by UUID (every mount names its loop device), each copy is a
//! filesystem of its own, and a sandbox cannot read its block device to learn either value.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::Whence;

use super::RuntimeError;

/// How many capacities keep a blank image; the least recently made goes first.
const KEPT: usize = 8;

/// The blank image kept for `capacity` under `dir`.
fn kept_image(dir: &Path, capacity: u64) -> PathBuf {
    dir.join(format!("{capacity}.ext4"))
}

/// Fills `destination` (which must not exist) with a copy of the blank image kept for
/// `capacity`, flushed to disk. `Ok(false)` when none is kept.
pub fn copy_kept(dir: &Path, capacity: u64, destination: &Path) -> Result<bool, RuntimeError> {
    let kept = kept_image(dir, capacity);
    let source = match File::open(&kept) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(RuntimeError::io("open", &kept)(e)),
    };
    let target = File::create_new(destination).map_err(RuntimeError::io("create", destination))?;
    sparse_copy(&source, &target)
        .map_err(RuntimeError::io("copy a blank image to", destination))?;
    Ok(true)
}

/// Keeps `formatted` (a blank image just made for `capacity`, not yet mounted) for later
/// creates. It is copied to `scratch` first and renamed into place flushed, so a kept image
/// is always whole; creates racing to keep one each rename an equal copy.
pub fn keep(
    dir: &Path,
    capacity: u64,
    formatted: &Path,
    scratch: &Path,
) -> Result<(), RuntimeError> {
    super::layout::create_private_dir(dir)?;
    let source = File::open(formatted).map_err(RuntimeError::io("open", formatted))?;
    let _ = fs::remove_file(scratch);
    let copied = File::create_new(scratch)
        .and_then(|target| sparse_copy(&source, &target))
        .and_then(|()| fs::rename(scratch, kept_image(dir, capacity)));
    if let Err(e) = copied {
        let _ = fs::remove_file(scratch);
        return Err(RuntimeError::io("keep a blank image from", formatted)(e));
    }
    forget_the_oldest(dir, capacity);
    Ok(())
}

/// Removes kept images beyond [`KEPT`], oldest first (never the one just kept). Best effort:
/// an image left behind only takes its few hundred KiB of disk.
fn forget_the_oldest(dir: &Path, just_kept: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let just_kept = kept_image(dir, just_kept);
    let mut others: Vec<_> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let made = fs::metadata(&path).ok()?.modified().ok()?;
            (path != just_kept).then_some((made, path))
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
        assert!(!copy_kept(&kept, length, &destination).unwrap());
        assert!(!destination.exists());

        keep(&kept, length, &formatted, &dir.path().join("scratch")).unwrap();
        assert!(!dir.path().join("scratch").exists());
        assert!(copy_kept(&kept, length, &destination).unwrap());
        assert_eq!(
            fs::read(&destination).unwrap(),
            fs::read(&formatted).unwrap()
        );
        let on_disk = fs::metadata(&destination).unwrap().blocks() * 512;
        assert!(on_disk < 1 << 20, "{on_disk} bytes on disk");
        // Another capacity has no kept image, and an existing destination is never
        // overwritten.
        assert!(!copy_kept(&kept, length * 2, &dir.path().join("other")).unwrap());
        assert!(copy_kept(&kept, length, &destination).is_err());
    }

    #[test]
    fn only_the_most_recently_kept_capacities_stay() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        let formatted = dir.path().join("formatted");
        sparse_file(&formatted, 1 << 20, &[(0, b"blank")]);
        let capacities: Vec<u64> = (1..=KEPT as u64 + 3).map(|n| n << 20).collect();
        for capacity in &capacities {
            keep(&kept, *capacity, &formatted, &dir.path().join("scratch")).unwrap();
        }
        let count = fs::read_dir(&kept).unwrap().count();
        assert_eq!(count, KEPT);
        let last = *capacities.last().unwrap();
        assert!(kept_image(&kept, last).exists());
    }
}
