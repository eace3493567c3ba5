//! This process's mount table (`/proc/self/mountinfo`), parsed into the two fields the
//! runtime needs: where each filesystem is mounted and what it was mounted from.

use std::fs;
use std::path::{Path, PathBuf};

use super::{RuntimeError, host};

/// One line of `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// What it was mounted from (`/dev/loop3`, `overlay`, `tmpfs`…).
    pub source: String,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The current mount table, in the order the mounts were made. A table that cannot be read
/// is an error, never an empty table: callers decide from it whether a directory is free of
/// mounts and may be deleted recursively.
pub fn read() -> Result<Vec<Mount>, RuntimeError> {
    fs::read_to_string(MOUNTINFO)
        .map(|text| parse(&text))
        .map_err(RuntimeError::io("read", Path::new(MOUNTINFO)))
}

/// The mount table of the calling thread's namespace, which differs from the process's
/// once the thread has entered another (`/proc/self` names the process's main thread).
pub fn read_this_threads() -> Result<Vec<Mount>, RuntimeError> {
    const THREADS: &str = "/proc/thread-self/mountinfo";
    fs::read_to_string(THREADS)
        .map(|text| parse(&text))
        .map_err(RuntimeError::io("read", Path::new(THREADS)))
}

/// [`read`], off the async workers.
pub async fn read_async() -> Result<Vec<Mount>, RuntimeError> {
    host::blocking("reading the mount table", read).await
}

/// The mount points at or below `dir` now, in the order they were made (read off the
/// async workers).
pub async fn points_under(dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    Ok(under(&read_async().await?, dir)
        .into_iter()
        .map(|mount| mount.point)
        .collect())
}

/// The mounts at or below `dir`, in the order they were made.
pub fn under(mounts: &[Mount], dir: &Path) -> Vec<Mount> {
    mounts
        .iter()
        .filter(|mount| mount.point.starts_with(dir))
        .cloned()
        .collect()
}

/// Parses `mountinfo` text: the mount point is the fifth field; the source comes after the
/// ` - ` separator, behind the filesystem type.
fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (mount, rest) = line.split_once(" - ")?;
            let point = mount.split(' ').nth(4)?;
            let source = rest.split(' ').nth(1)?;
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                source: unescape(source),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let code = u8::from_str_radix(&field[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_sources_are_unescaped_and_filtered_by_directory() {
        let mounts = parse(
            "36 35 98:0 / /srv/box/lower-raw ro,nosuid - ext4 /dev/loop7 ro\n\
             38 35 7:3 / /srv/box/upper\\040raw rw shared:1 - ext4 /dev/loop12 rw\n\
             39 35 8:1 / /srv/boxes rw - ext4 /dev/sda1 rw\n\
             garbage line\n",
        );
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[1].point, Path::new("/srv/box/upper raw"));
        assert_eq!(mounts[1].source, "/dev/loop12");
        let points: Vec<PathBuf> = under(&mounts, Path::new("/srv/box"))
            .into_iter()
            .map(|mount| mount.point)
            .collect();
        assert_eq!(
            points,
            [
                Path::new("/srv/box/lower-raw"),
                Path::new("/srv/box/upper raw")
            ]
        );
    }
}
