//! Opening a file to read it without trusting what a check moments before saw: a process in
//! the sandbox can replace a regular file by a FIFO (whose `open` or `read` blocks forever) or
//! by a symbolic link between a walk's `lstat` and the `open`. Every open here is
//! non-blocking and followed by `fstat` on the descriptor itself, so only what was actually
//! opened is judged; `open_beneath` additionally refuses any symbolic link on the way, so a
//! search never reads outside its root (on kernels since 5.6, which have `openat2`; older ones
//! refuse a link only as the last component — either way the sandbox's root is the boundary).
//!
//! `O_NONBLOCK` stays set on the returned file: regular files ignore it.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

/// Why a file was not opened for reading.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("it is a directory, not a regular file")]
    Directory,
    /// It exists but is something else; the text says what ("a FIFO", "a socket", …).
    #[error("it is {0}, not a regular file")]
    Special(&'static str),
}

/// Flags of every open: read-only, never waiting for a FIFO's writer, never becoming the
/// agent's controlling terminal, not inherited by commands the agent spawns.
const READ_FLAGS: i32 = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

/// Opens `path` (following symbolic links: the caller named it, and the sandbox is the
/// boundary) if it is a regular file.
pub fn open(path: &Path) -> Result<File, OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(READ_FLAGS)
        .open(path)?;
    regular(file)
}

/// Opens the directory a search starts from (following symbolic links in its own path).
pub fn open_dir(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(READ_FLAGS | libc::O_DIRECTORY)
        .open(path)
}

/// Opens `relative` below the directory `root` if it is a regular file reached without
/// passing through any symbolic link (neither the last component nor one on the way).
pub fn open_beneath(root: &File, relative: &Path) -> Result<File, OpenError> {
    let how = OpenHow::new()
        .flags(OFlag::from_bits_retain(READ_FLAGS | libc::O_NOFOLLOW))
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = match nix::fcntl::openat2(root.as_fd(), relative, how) {
        // Kernels before 5.6 lack openat2: the last component still never follows a link.
        Err(Errno::ENOSYS) => nix::fcntl::openat(
            root.as_fd(),
            relative,
            OFlag::from_bits_retain(READ_FLAGS | libc::O_NOFOLLOW),
            nix::sys::stat::Mode::empty(),
        ),
        other => other,
    }
    .map_err(std::io::Error::from)?;
    regular(File::from(fd))
}

/// `file` if `fstat` says it is a regular file.
fn regular(file: File) -> Result<File, OpenError> {
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    if kind.is_dir() {
        return Err(OpenError::Directory);
    }
    Err(OpenError::Special(if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }))
}
