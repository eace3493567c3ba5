//! Layer application against real tar files built here: whiteouts, opaque directories,
//! metadata preservation, type replacement and path-escape refusal.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{LayerCompression, LayerError, apply_layer};

/// A layer tar under construction.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(1_600_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    fn dir(mut self, path: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    fn file(self, path: &str, content: &str) -> Self {
        self.file_with(path, content, 0o644, 0)
    }

    fn file_with(mut self, path: &str, content: &str, mode: u32, uid: u64) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, content.len() as u64);
        h.set_uid(uid);
        h.set_gid(uid);
        self.0
            .append_data(&mut h, path, content.as_bytes())
            .unwrap();
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    /// An entry whose name is written raw, bypassing the builder's own `..` check.
    fn raw_file(mut self, raw_name: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, 4);
        h.as_gnu_mut().unwrap().name[..raw_name.len()].copy_from_slice(raw_name.as_bytes());
        h.set_cksum();
        self.0.append(&h, &b"evil"[..]).unwrap();
        self
    }

    fn apply(self, scratch: &Path, tree: &Path) -> Result<(), LayerError> {
        let bytes = self.0.into_inner().unwrap();
        let path = scratch.join(format!("layer-{}.tar", uuid::Uuid::new_v4()));
        fs::write(&path, bytes).unwrap();
        apply_layer(&path, LayerCompression::None, tree)
    }
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("tree");
    fs::create_dir(&tree).unwrap();
    (scratch, tree)
}

#[test]
fn whiteouts_delete_lower_files_and_directories() {
    let (scratch, tree) = setup();
    Layer::new()
        .dir("etc")
        .file("etc/keep", "k")
        .file("etc/gone", "g")
        .dir("var/cache")
        .file("var/cache/big", "b")
        .apply(scratch.path(), &tree)
        .unwrap();
    Layer::new()
        .file("etc/.wh.gone", "")
        .file("var/.wh.cache", "")
        .file("etc/.wh.never-existed", "")
        .apply(scratch.path(), &tree)
        .unwrap();
    assert!(tree.join("etc/keep").exists());
    assert!(!tree.join("etc/gone").exists());
    assert!(!tree.join("var/cache").exists());
    assert!(
        !tree.join("etc/.wh.gone").exists(),
        "whiteout markers are not extracted"
    );
}

#[test]
fn opaque_directories_hide_only_lower_layers() {
    let (scratch, tree) = setup();
    Layer::new()
        .dir("app")
        .file("app/old", "o")
        .dir("app/sub")
        .file("app/sub/deep", "d")
        .apply(scratch.path(), &tree)
        .unwrap();
    // The new file comes before the marker in the tar: order must not matter.
    Layer::new()
        .dir("app")
        .file("app/new", "n")
        .file("app/.wh..wh..opq", "")
        .apply(scratch.path(), &tree)
        .unwrap();
    let mut names: Vec<String> = fs::read_dir(tree.join("app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["new"]);
}

#[test]
fn metadata_links_and_setuid_bits_survive() {
    let (scratch, tree) = setup();
    Layer::new()
        .dir("bin")
        .file_with("bin/su", "#!", 0o4755, 0)
        .file_with("home-file", "x", 0o600, 1234)
        .symlink("bin/sh", "busybox")
        .file("bin/busybox", "bb")
        .hardlink("bin/ls", "bin/busybox")
        .apply(scratch.path(), &tree)
        .unwrap();
    let su = fs::metadata(tree.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(su.mtime(), 1_600_000_000);
    let owned = fs::metadata(tree.join("home-file")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1234, 1234));
    assert_eq!(owned.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        fs::read_link(tree.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let (busybox, ls) = (
        fs::metadata(tree.join("bin/busybox")).unwrap(),
        fs::metadata(tree.join("bin/ls")).unwrap(),
    );
    assert_eq!(busybox.ino(), ls.ino(), "hard link shares the inode");
    assert_eq!(
        fs::metadata(tree.join("bin")).unwrap().mtime(),
        1_600_000_000
    );
}

#[test]
fn later_layers_replace_files_with_directories_and_back() {
    let (scratch, tree) = setup();
    Layer::new()
        .file("thing", "file")
        .dir("other")
        .file("other/inner", "i")
        .apply(scratch.path(), &tree)
        .unwrap();
    Layer::new()
        .dir("thing")
        .file("thing/child", "c")
        .file("other", "now a file")
        .apply(scratch.path(), &tree)
        .unwrap();
    assert_eq!(fs::read_to_string(tree.join("thing/child")).unwrap(), "c");
    assert_eq!(
        fs::read_to_string(tree.join("other")).unwrap(),
        "now a file"
    );
}

#[test]
fn traversal_and_absolute_paths_are_refused() {
    let (scratch, tree) = setup();
    let err = Layer::new()
        .raw_file("../escaped")
        .apply(scratch.path(), &tree)
        .unwrap_err();
    assert!(matches!(err, LayerError::OutsideRoot(_)), "{err}");
    assert!(err.to_string().contains("outside the image root"), "{err}");
    assert!(!scratch.path().join("escaped").exists());
    let err = Layer::new()
        .raw_file("/abs")
        .apply(scratch.path(), &tree)
        .unwrap_err();
    assert!(matches!(err, LayerError::OutsideRoot(_)), "{err}");
    assert!(err.to_string().contains("outside the image root"), "{err}");
}

#[test]
fn symlinks_cannot_carry_writes_or_whiteouts_out_of_the_tree() {
    let (scratch, tree) = setup();
    let outside = scratch.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "precious").unwrap();
    Layer::new()
        .symlink("escape", outside.to_str().unwrap())
        .apply(scratch.path(), &tree)
        .unwrap();
    Layer::new()
        .file("escape/.wh.victim", "")
        .apply(scratch.path(), &tree)
        .unwrap();
    assert_eq!(
        fs::read_to_string(outside.join("victim")).unwrap(),
        "precious"
    );
    let err = Layer::new()
        .file("escape/planted", "x")
        .apply(scratch.path(), &tree);
    assert!(
        err.is_err(),
        "writing through an escaping symlink must fail"
    );
    assert!(!outside.join("planted").exists());
}

#[test]
fn gzip_layers_unpack() {
    let (scratch, tree) = setup();
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = Layer::header(tar::EntryType::Regular, 0o644, 5);
    builder.append_data(&mut h, "hello", &b"world"[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&builder.into_inner().unwrap()).unwrap();
    let path = scratch.path().join("layer.tar.gz");
    fs::write(&path, gz.finish().unwrap()).unwrap();
    apply_layer(&path, LayerCompression::Gzip, &tree).unwrap();
    assert_eq!(fs::read_to_string(tree.join("hello")).unwrap(), "world");
}

#[test]
fn media_types_map_to_compression() {
    use LayerCompression::*;
    let of = LayerCompression::for_media_type;
    assert_eq!(
        of("application/vnd.oci.image.layer.v1.tar+gzip"),
        Some(Gzip)
    );
    assert_eq!(
        of("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        Some(Gzip)
    );
    assert_eq!(of("application/vnd.oci.image.layer.v1.tar"), Some(None));
    assert_eq!(
        of("application/vnd.oci.image.layer.v1.tar+zstd"),
        Option::None
    );
}

#[test]
fn directory_times_are_never_applied_through_a_later_symlink() {
    let (scratch, tree) = setup();
    let outside = scratch.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("shadow"), "host file").unwrap();
    let before = fs::metadata(outside.join("shadow")).unwrap().mtime();
    // `a/shadow` is recorded as a directory, then `a` becomes a symlink out of the tree.
    Layer::new()
        .dir("a")
        .dir("a/shadow")
        .symlink("a", outside.to_str().unwrap())
        .apply(scratch.path(), &tree)
        .unwrap();
    assert!(fs::symlink_metadata(tree.join("a")).unwrap().is_symlink());
    assert_eq!(
        fs::metadata(outside.join("shadow")).unwrap().mtime(),
        before
    );
}
