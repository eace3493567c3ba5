//! Detached copies of mounts (`open_tree` with `OPEN_TREE_CLONE`) and attaching them
//! somewhere (`move_mount`): the kernel's mount API, for what `mount(2)` cannot say, such
//! as an idmapped copy or a copy of one namespace's mounts put into another.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::RuntimeError;

/// A detached copy of the mount at `source` (with every mount below it when `recursive`).
/// It is dropped with the descriptor unless [`attach`]ed first.
pub fn copy(source: &Path, recursive: bool) -> Result<OwnedFd, RuntimeError> {
    let path = c_path(source)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid NUL-terminated path; the result is checked before use as an fd.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if tree < 0 {
        return Err(RuntimeError::io("copy the mount at", source)(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(tree as i32) })
}

/// Attaches the detached `tree` at `target`, in the calling thread's mount namespace.
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<(), RuntimeError> {
    let path = c_path(target)?;
    let empty = c"";
    // SAFETY: a valid fd and NUL-terminated paths.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved < 0 {
        return Err(RuntimeError::io("attach a copied mount at", target)(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// `path` for a syscall; a NUL byte in it is an invalid input.
fn c_path(path: &Path) -> Result<CString, RuntimeError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| {
        RuntimeError::io("use", path.to_path_buf())(io::Error::new(io::ErrorKind::InvalidInput, e))
    })
}
