//! A sealed in-memory copy of the OCI runtime binary, which `runc run` is started from.
//!
//! A container must never reach the runtime binary on the host through `/proc/self/exe`
//! and overwrite it (CVE-2019-5736), so before `runc init` runs its Go code it makes sure it
//! runs from a copy the container cannot write. runc 1.1 makes that copy on every start: it
//! bind-mounts its own executable read-only, reopens it, detaches the mount (which waits for
//! an RCU grace period) and executes itself a second time. In a burst of creates that is one
//! more exec of an 8 MB program, two mounts and a grace period per sandbox.
//!
//! runc skips all of it when it already runs from a memfd sealed against every change
//! (`F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`), which is the protection it
//! would have made itself. So the runtime makes that copy once, when it starts, and starts
//! `runc run` from it through `/proc/self/fd/<n>`. A runtime without that check simply runs
//! from the copy. The other commands (`state`, `delete`, `pause`…) run the binary on the
//! host, which copies nothing for them: after an upgrade of it, `run` keeps the old version
//! until the server restarts, and both versions read the one state directory.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The seals runc looks for: no write, no resize, and no change of the seals themselves.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// The lowest descriptor number the copy may have: `/proc/self/fd/<n>` is resolved in the
/// new process after its descriptors 0–3 were set, so `n` must be none of them.
const LOWEST_FD: libc::c_int = 10;

/// The copy. Cheap to clone; all clones share the one descriptor.
#[derive(Debug, Clone)]
pub struct SealedBinary {
    memfd: Arc<OwnedFd>,
}

impl SealedBinary {
    /// Copies `binary` into a new memfd and seals it. Blocking. Only an ELF executable is
    /// copied (`InvalidInput` otherwise): a script's interpreter opens the script by the path
    /// it was started by, which names a close-on-exec descriptor gone by then.
    pub fn copy_of(binary: &Path) -> io::Result<SealedBinary> {
        let mut source = File::open(binary)?;
        let mut magic = [0u8; 4];
        io::Read::read_exact(&mut source, &mut magic)?;
        if magic != *b"\x7fELF" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an ELF executable",
            ));
        }
        io::Seek::rewind(&mut source)?;
        let mut copy = executable_memfd()?;
        io::copy(&mut source, &mut copy)?;
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above; F_DUPFD_CLOEXEC answers a new descriptor, checked before use.
        let high = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_DUPFD_CLOEXEC, LOWEST_FD) };
        if high < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let memfd = unsafe { OwnedFd::from_raw_fd(high) };
        Ok(SealedBinary {
            memfd: Arc::new(memfd),
        })
    }

    /// The path a new process of this server executes the copy by (its own descriptor
    /// table holds the copy until the exec, close-on-exec as it is). Valid while `self` is.
    pub fn exec_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.memfd.as_raw_fd()))
    }
}

/// A new, empty memfd that may be sealed and executed. Since Linux 6.3 a memfd is
/// executable only when asked for (`MFD_EXEC`; with `vm.memfd_noexec` at 1 it is not
/// otherwise); older kernels refuse that flag, and make every memfd executable.
fn executable_memfd() -> io::Result<File> {
    let name = c"langsmith-oci-runtime";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags| {
        // SAFETY: a valid NUL-terminated name; the result is checked before use.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    };
    match create(flags | libc::MFD_EXEC) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => create(flags),
        created => created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn the_copy_runs_and_cannot_be_written_or_resized() {
        let sealed = SealedBinary::copy_of(Path::new("/bin/sh")).unwrap();
        let output = std::process::Command::new(sealed.exec_path())
            .args(["-c", "echo from the copy"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "from the copy\n");
        // SAFETY: F_GET_SEALS on a descriptor the copy owns.
        let seals = unsafe { libc::fcntl(sealed.memfd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals, SEALS);
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(sealed.exec_path());
        let error = reopened
            .and_then(|mut file| io::Write::write_all(&mut file, b"x"))
            .expect_err("a sealed copy takes no write");
        assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{error}");
        assert!(sealed.memfd.as_raw_fd() >= LOWEST_FD);
    }

    #[test]
    fn a_script_is_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("runtime");
        std::fs::write(&script, "#!/bin/sh\nexec runc \"$@\"\n").unwrap();
        let error = SealedBinary::copy_of(&script).expect_err("a script stays where it is");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
