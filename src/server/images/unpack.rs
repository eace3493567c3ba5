//! Layer application: unpack layer tars in order into one directory tree, honouring OCI
//! whiteouts. Each layer is read twice from its blob file (never held in memory): the first
//! pass collects whiteouts and applies them to what lower layers left, the second extracts
//! the entries — so a whiteout can never delete something its own layer adds.

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{ImageError, LayerBlob};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Why one layer could not be applied: the layer's own fault (unreadable, or reaching outside
/// the image root) or a failure writing the tree on this host.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The blob is not a readable tar (corrupt, truncated, a bad entry name).
    #[error("{context}: {source}")]
    Read {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An entry names an absolute path or `..`: the layer is refused.
    #[error("entry {} points outside the image root; refusing this layer", .0.display())]
    OutsideRoot(PathBuf),
    /// An entry would be written through a symlink leading out of the tree.
    #[error("entry {} escapes the image root", .0.display())]
    EscapesRoot(PathBuf),
    /// Changing the tree failed.
    #[error("{action} {}: {source}", path.display())]
    Write {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The unpacking thread panicked or was cancelled.
    #[error("unpack task failed: {0}")]
    Interrupted(String),
}

impl LayerError {
    fn read(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| LayerError::Read { context, source }
    }

    fn write(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| LayerError::Write {
            action,
            path,
            source,
        }
    }
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
}

impl LayerCompression {
    /// `None` for media types we cannot unpack (zstd, foreign layers, non-layers).
    pub fn for_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Self::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Self::Gzip),
            _ => None,
        }
    }
}

/// Apply `layers` bottom-up into `tree` (created if missing).
pub fn apply_layers(layers: &[LayerBlob], tree: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(tree).map_err(ImageError::io(format!("creating {}", tree.display())))?;
    // The image root is world-traversable whatever our umask is; layers rarely carry `./`.
    fs::set_permissions(tree, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(
        ImageError::io(format!("setting the mode of {}", tree.display())),
    )?;
    for layer in layers {
        let compression = LayerCompression::for_media_type(&layer.media_type).ok_or_else(|| {
            ImageError::Unsupported {
                reference: layer.digest.clone(),
                message: format!("layer media type {} is not supported", layer.media_type),
            }
        })?;
        apply_layer(&layer.path, compression, tree).map_err(|source| ImageError::Layer {
            digest: layer.digest.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Apply one layer tar file to `tree`.
pub fn apply_layer(
    blob: &Path,
    compression: LayerCompression,
    tree: &Path,
) -> Result<(), LayerError> {
    let (opaque_dirs, whiteouts) = collect_whiteouts(blob, compression)?;
    for dir in &opaque_dirs {
        if let Some(target) = resolve_in_tree(tree, dir)
            && fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir())
        {
            empty_directory(&target).map_err(LayerError::write("emptying", dir))?;
        }
    }
    for path in &whiteouts {
        if let Some(target) = resolve_in_tree(tree, path) {
            remove_any(&target).map_err(LayerError::write("whiting out", path))?;
        }
    }
    extract_entries(blob, compression, tree)
}

fn open_tar(
    blob: &Path,
    compression: LayerCompression,
) -> Result<tar::Archive<Box<dyn Read>>, LayerError> {
    let file =
        fs::File::open(blob).map_err(LayerError::read(format!("opening {}", blob.display())))?;
    let reader: Box<dyn Read> = match compression {
        LayerCompression::None => Box::new(BufReader::new(file)),
        LayerCompression::Gzip => Box::new(MultiGzDecoder::new(BufReader::new(file))),
    };
    Ok(tar::Archive::new(reader))
}

/// A relative path inside the layer, or an error for absolute paths and `..` components.
fn checked_relative(path: &Path) -> Result<PathBuf, LayerError> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => {
                return Err(LayerError::OutsideRoot(path.to_path_buf()));
            }
        }
    }
    Ok(relative)
}

/// Pass one: directories marked opaque and paths whited out by this layer.
fn collect_whiteouts(
    blob: &Path,
    compression: LayerCompression,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), LayerError> {
    let mut archive = open_tar(blob, compression)?;
    let (mut opaque, mut whiteouts) = (Vec::new(), Vec::new());
    for entry in archive.entries().map_err(LayerError::read("reading tar"))? {
        let entry = entry.map_err(LayerError::read("reading tar"))?;
        let path = checked_relative(&entry.path().map_err(LayerError::read("bad entry path"))?)?;
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
        if name == OPAQUE_MARKER {
            opaque.push(parent);
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            // `.wh..wh.*` other than the opaque marker is aufs bookkeeping, not a whiteout.
            if !hidden.starts_with(".wh.") && !hidden.is_empty() {
                whiteouts.push(parent.join(hidden));
            }
        }
    }
    Ok((opaque, whiteouts))
}

/// Pass two: extract every non-whiteout entry with its mode, owner, mtime and xattrs.
fn extract_entries(
    blob: &Path,
    compression: LayerCompression,
    tree: &Path,
) -> Result<(), LayerError> {
    let mut archive = open_tar(blob, compression)?;
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let mut directory_mtimes = Vec::new();
    for entry in archive.entries().map_err(LayerError::read("reading tar"))? {
        let mut entry = entry.map_err(LayerError::read("reading tar"))?;
        let path = checked_relative(&entry.path().map_err(LayerError::read("bad entry path"))?)?;
        let is_whiteout = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(WHITEOUT_PREFIX));
        if is_whiteout || path.as_os_str().is_empty() {
            continue;
        }
        let is_dir = entry.header().entry_type().is_dir();
        if let Some(target) = resolve_in_tree(tree, &path) {
            replace_conflicting(&target, is_dir).map_err(LayerError::write("replacing", &path))?;
            if is_dir && let Ok(mtime) = entry.header().mtime() {
                directory_mtimes.push((path.clone(), mtime));
            }
        }
        // `unpack_in` refuses to write through symlinks that lead out of the tree.
        let unpacked = entry
            .unpack_in(tree)
            .map_err(LayerError::write("unpacking", &path))?;
        if !unpacked {
            return Err(LayerError::EscapesRoot(path));
        }
    }
    // Writing children bumped directory mtimes; put the recorded ones back. A later entry of
    // this layer may have replaced a parent with a symlink, so each path is resolved afresh
    // (no symlinked component) and skipped unless it still names a real directory.
    for (relative, mtime) in directory_mtimes {
        let Some(dir) = resolve_in_tree(tree, &relative)
            .filter(|dir| fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()))
        else {
            continue;
        };
        let time = nix::sys::time::TimeSpec::new(mtime as libc::time_t, 0);
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &dir,
            &time,
            &time,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(())
}

/// `tree/relative`, but only if every parent on the way is a real directory (not a symlink):
/// whiteouts and replacements must never act outside the tree.
fn resolve_in_tree(tree: &Path, relative: &Path) -> Option<PathBuf> {
    let mut current = tree.to_path_buf();
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        current.push(component);
        if components.peek().is_some() {
            let meta = fs::symlink_metadata(&current).ok()?;
            if !meta.is_dir() {
                return None;
            }
        }
    }
    (current != tree).then_some(current)
}

/// A directory entry may merge into an existing directory; anything else replaces what is
/// there (a file replacing a directory takes the whole directory away, as overlay does).
fn replace_conflicting(target: &Path, entry_is_dir: bool) -> std::io::Result<()> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() && entry_is_dir => Ok(()),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(target),
        Ok(_) => fs::remove_file(target),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn remove_any(target: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(target),
        Ok(_) => fs::remove_file(target),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn empty_directory(dir: &Path) -> std::io::Result<()> {
    for child in fs::read_dir(dir)? {
        remove_any(&child?.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
