//! The sandbox's two small host tmpfs mounts and what outlives them.
//!
//! `run/` holds the agent's socket, bound by the runtime and handed to the agent as a
//! descriptor; `log/` holds the agent's stdout/stderr. Neither is mounted into the sandbox
//! (the log is reachable from inside only through PID 1's open descriptors). Both are tmpfs
//! with a small size, so nothing a sandbox writes through them can fill the host disk.
//! Unmounting drops them; the end of the log is first saved to `agent.log` in the sandbox
//! directory.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::MsFlags;

use super::layout::SandboxLayout;
use super::{RuntimeError, host};

/// Room for the agent's socket and nothing much else.
const RUN_OPTIONS: &str = "size=1m,mode=0700";
/// Enough for startup diagnostics and the agent's tracing; a flood hits ENOSPC.
const LOG_OPTIONS: &str = "size=2m,mode=0700";
/// How much of the log end is kept on the host disk after a run.
const SAVED_LOG_BYTES: u64 = 64 * 1024;

/// Mounts fresh tmpfs on `run/` and `log/` (the directories must exist and be unmounted).
/// With `mount(2)` directly: `mount(8)` reads the whole mount table first, which grows
/// with every sandbox.
pub async fn mount(layout: &SandboxLayout) -> Result<(), RuntimeError> {
    let layout = layout.clone();
    host::blocking("mounting the scratch tmpfs", move || {
        for (dir, options, name) in [
            (&layout.run, RUN_OPTIONS, "langsmith-run"),
            (&layout.log, LOG_OPTIONS, "langsmith-log"),
        ] {
            nix::mount::mount(
                Some(name),
                dir.as_path(),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(options),
            )
            .map_err(|e| RuntimeError::io("mount a tmpfs at", dir)(e.into()))?;
        }
        Ok(())
    })
    .await
}

/// Copies the end of the live log (if the log tmpfs holds one) to the sandbox directory, so
/// it can still be read after the tmpfs is gone. Best effort: a log is not worth a failed stop.
pub fn save_log_tail(layout: &SandboxLayout) {
    let tail = read_tail(&layout.agent_log, SAVED_LOG_BYTES);
    if tail.is_empty() {
        return;
    }
    if let Err(e) = remove_any(&layout.saved_log).and_then(|()| {
        fs::write(&layout.saved_log, &tail).map_err(RuntimeError::io("write", &layout.saved_log))
    }) {
        tracing::warn!("cannot keep the agent log: {e}");
    }
}

/// The last `limit` bytes of `path` (empty if it is missing or not a regular file).
pub fn read_tail(path: &Path, limit: u64) -> Vec<u8> {
    let Ok(mut file) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return Vec::new();
    };
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    if !meta.is_file() {
        return Vec::new();
    }
    let _ = file.seek(SeekFrom::Start(meta.len().saturating_sub(limit)));
    let mut bytes = Vec::new();
    let _ = file.take(limit).read_to_end(&mut bytes);
    bytes
}

/// Removes whatever is at `path` — file, socket, fifo, symlink (never its target) or
/// directory tree — and is content when there is nothing. Call it only where no mount can be
/// below `path`: the sandbox's mounts are gone by then.
pub fn remove_any(path: &Path) -> Result<(), RuntimeError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RuntimeError::io("remove", path)(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_any_takes_away_links_fifos_and_trees_but_never_a_target() {
        let scratch = tempfile::tempdir().unwrap();
        let victim = scratch.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("file"), "keep").unwrap();

        let link = scratch.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        remove_any(&link).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());

        let fifo = scratch.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(read_tail(&fifo, 10).is_empty(), "a fifo is no log");
        remove_any(&fifo).unwrap();
        assert!(fs::symlink_metadata(&fifo).is_err());

        let tree = scratch.path().join("tree");
        fs::create_dir_all(tree.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&victim, tree.join("a/b/out")).unwrap();
        remove_any(&tree).unwrap();
        assert!(fs::symlink_metadata(&tree).is_err());

        remove_any(&scratch.path().join("absent")).unwrap();
        assert_eq!(fs::read_to_string(victim.join("file")).unwrap(), "keep");
    }
}
