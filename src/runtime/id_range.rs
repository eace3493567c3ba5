//! The host user and group ids a sandbox's user namespace maps onto.
//!
//! A running sandbox has a range of [`RANGE_SIZE`] ids of its own: uid 0 inside is `first`
//! on the host, uid 1000 is `first + 1000`, and so on. Ranges start at [`FIRST_HOST_ID`]
//! (2^30), above the ids of ordinary host accounts and of the usual `/etc/subuid` allotments;
//! the host must not give accounts ids between 2^30 and 2^31 (some directory services map
//! users there: see the README's known gaps).
//!
//! A range is claimed for as long as its sandbox runs, host-wide: each claim is a file
//! `/run/langsmith/ranges/<slot>` naming its owner (runtime root and sandbox id), created
//! under a lock, so sandboxes of every server on the machine get distinct ranges. A stop
//! releases it; a claim whose owner's directory is gone (its server's state was removed
//! without stopping it) is taken over. The sandbox's directory remembers its last slot
//! (`id-range`) so a restart usually gets the same ids back, but nothing depends on that:
//! files on its disks keep their image owners (see `idmapped`).

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::RuntimeError;

/// Ids per sandbox: every uid and gid an image can name (0–65535).
pub const RANGE_SIZE: u32 = 65536;
/// The first host id handed to a sandbox.
pub const FIRST_HOST_ID: u32 = 1 << 30;
/// How many ranges fit between [`FIRST_HOST_ID`] and 2^31.
const SLOTS: u32 = (1 << 30) / RANGE_SIZE;
/// Where claims live: on the host's `/run` tmpfs, which a reboot empties with the sandboxes.
const CLAIMS: &str = "/run/langsmith/ranges";
/// The file in a sandbox's directory that remembers its last slot.
const LAST_SLOT: &str = "id-range";

/// A sandbox's host ids: `first .. first + RANGE_SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub first: u32,
}

impl IdRange {
    /// The mapping in `/proc/PID/uid_map` form: inside id, host id, count.
    pub fn map_line(&self) -> String {
        format!("0 {} {RANGE_SIZE}\n", self.first)
    }

    fn of_slot(slot: u32) -> IdRange {
        IdRange {
            first: FIRST_HOST_ID + slot * RANGE_SIZE,
        }
    }
}

/// Claims a range for sandbox `id` of the runtime at `root`, whose directory is `dir`.
/// Blocking: file operations under a host-wide lock.
pub fn claim(root: &Path, id: &str, dir: &Path) -> Result<IdRange, RuntimeError> {
    claim_in(Path::new(CLAIMS), root, id, dir)
}

/// Releases the range sandbox `id` holds, if it holds one. Blocking.
pub fn release(root: &Path, id: &str) -> Result<(), RuntimeError> {
    release_in(Path::new(CLAIMS), root, id)
}

fn claim_in(claims: &Path, root: &Path, id: &str, dir: &Path) -> Result<IdRange, RuntimeError> {
    let _lock = Lock::take(claims)?;
    let owner = owner_text(root, id);
    let held = read_claims(claims)?;
    let own = held
        .iter()
        .find(|(_, text)| **text == owner)
        .map(|(slot, _)| *slot);
    let free = |slot: &u32| held.get(slot).is_none_or(|text| owner_is_gone(text));
    let preferred = last_slot(dir).filter(free);
    let slot = match own.or(preferred).or_else(|| (0..SLOTS).find(free)) {
        Some(slot) => slot,
        None => {
            return Err(RuntimeError::InvalidConfig(format!(
                "all {SLOTS} user id ranges of this machine are claimed by running sandboxes; \
                 stop some"
            )));
        }
    };
    // Remembered before it is claimed, so a release after a crash in between finds it.
    let remembered = dir.join(LAST_SLOT);
    fs::write(&remembered, slot.to_string()).map_err(RuntimeError::io("write", &remembered))?;
    if own != Some(slot) {
        write_claim(&claims.join(slot.to_string()), &owner)?;
    }
    Ok(IdRange::of_slot(slot))
}

fn release_in(claims: &Path, root: &Path, id: &str) -> Result<(), RuntimeError> {
    let _lock = Lock::take(claims)?;
    let owner = owner_text(root, id);
    for (slot, text) in read_claims(claims)? {
        if text == owner {
            let path = claims.join(slot.to_string());
            fs::remove_file(&path).map_err(RuntimeError::io("remove", &path))?;
        }
    }
    Ok(())
}

/// Every claim: slot and owner text.
fn read_claims(claims: &Path) -> Result<std::collections::BTreeMap<u32, String>, RuntimeError> {
    let mut held = std::collections::BTreeMap::new();
    let entries = fs::read_dir(claims).map_err(RuntimeError::io("list", claims))?;
    for entry in entries.flatten() {
        let Some(slot) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue; // the lock file
        };
        if let Ok(text) = fs::read_to_string(entry.path()) {
            held.insert(slot, text);
        }
    }
    Ok(held)
}

/// The slot the sandbox at `dir` claimed last (its claim may be released since).
pub fn last_slot(dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(dir.join(LAST_SLOT)).ok()?;
    text.trim().parse().ok().filter(|slot| *slot < SLOTS)
}

fn owner_text(root: &Path, id: &str) -> String {
    format!("{}\n{id}\n", root.display())
}

/// Whether the sandbox a claim names has no directory any more.
fn owner_is_gone(claim: &str) -> bool {
    let mut lines = claim.lines();
    match (lines.next(), lines.next()) {
        (Some(root), Some(id)) if !id.is_empty() && !id.contains('/') => {
            !PathBuf::from(root).join("sandboxes").join(id).is_dir()
        }
        _ => true, // unreadable: nobody can be holding it
    }
}

fn write_claim(path: &Path, owner: &str) -> Result<(), RuntimeError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(RuntimeError::io("claim", path))?;
    file.write_all(owner.as_bytes())
        .map_err(RuntimeError::io("claim", path))
}

/// An exclusive `flock` on the claims directory's lock file, held until dropped.
struct Lock {
    _file: fs::File,
}

impl Lock {
    fn take(claims: &Path) -> Result<Lock, RuntimeError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(claims)
            .map_err(RuntimeError::io("create directory", claims))?;
        let path = claims.join(".lock");
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(RuntimeError::io("open", &path))?;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(RuntimeError::io("lock", path)(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_sandboxes_get_distinct_ranges_across_runtimes() {
        let work = tempfile::tempdir().unwrap();
        let claims = work.path().join("claims");
        let sandbox = |root: &str, id: &str| {
            let root = work.path().join(root);
            let dir = root.join("sandboxes").join(id);
            fs::create_dir_all(&dir).unwrap();
            (root, dir)
        };
        let (root_a, a) = sandbox("one", "a");
        let (root_b, b) = sandbox("two", "a"); // another server, the same sandbox id
        let first = claim_in(&claims, &root_a, "a", &a).unwrap();
        let second = claim_in(&claims, &root_b, "a", &b).unwrap();
        assert_eq!(first.first, FIRST_HOST_ID);
        assert_eq!(second.first, FIRST_HOST_ID + RANGE_SIZE);
        assert_eq!(first.map_line(), format!("0 {FIRST_HOST_ID} 65536\n"));
        // Claiming again (a start after a crash) keeps the range.
        assert_eq!(claim_in(&claims, &root_a, "a", &a).unwrap(), first);

        // Released on stop; the next start prefers its last slot.
        release_in(&claims, &root_a, "a").unwrap();
        let (root_c, c) = sandbox("one", "c");
        assert_eq!(
            claim_in(&claims, &root_c, "c", &c).unwrap(),
            first,
            "reused"
        );
        assert_eq!(
            claim_in(&claims, &root_a, "a", &a).unwrap().first,
            FIRST_HOST_ID + 2 * RANGE_SIZE
        );

        // A claim whose sandbox directory is gone is taken over.
        fs::remove_dir_all(&b).unwrap();
        let (root_d, d) = sandbox("three", "d");
        assert_eq!(claim_in(&claims, &root_d, "d", &d).unwrap(), second);
        // Releasing what is no longer ours changes nothing.
        release_in(&claims, &root_b, "a").unwrap();
        assert!(claims.join("1").exists());
    }

    #[test]
    fn a_damaged_memory_of_the_last_slot_is_ignored() {
        let work = tempfile::tempdir().unwrap();
        let claims = work.path().join("claims");
        let root = work.path().join("root");
        let dir = root.join("sandboxes").join("x");
        fs::create_dir_all(&dir).unwrap();
        for text in ["", "hello", "99999999"] {
            fs::write(dir.join(LAST_SLOT), text).unwrap();
            assert_eq!(
                claim_in(&claims, &root, "x", &dir).unwrap().first,
                FIRST_HOST_ID
            );
            release_in(&claims, &root, "x").unwrap();
        }
    }
}
