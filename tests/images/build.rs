//! End-to-end builds with real tools: an OCI layout made by `umoci`, a `docker-registry` on
//! loopback fed by `skopeo`, and the resulting ext4 image read back with `debugfs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use langsmith::server::images::{
    BuildRequest, BuiltImage, ImageError, RegistryCredentials, build_snapshot_image,
};

use crate::common::process::run_ok;

pub(super) const MIB: u64 = 1024 * 1024;

/// A two-layer image at `layout:TAG`: busybox, a symlink, /etc/hello, and a second layer
/// that deletes /etc/removed (umoci writes a whiteout for it). `extra` adds files to the
/// first layer (name, size in MiB of zeros).
pub(super) fn build_layout(scratch: &Path, tag: &str, extra: Option<(&str, u64)>) -> PathBuf {
    let layout = scratch.join("layout");
    let image = format!("{}:{tag}", layout.display());
    run_ok(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    run_ok(Command::new("umoci").args(["new", "--image", &image]));
    run_ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.env",
        "GREETING=hello",
        "--config.workingdir",
        "/etc",
        "--config.cmd",
        "/bin/sh",
    ]));

    let bundle = scratch.join("bundle1");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    );
    let root = bundle.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/usr/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("/bin/busybox", root.join("bin/ls")).unwrap();
    std::fs::write(root.join("etc/hello"), "hello from the image\n").unwrap();
    std::fs::write(root.join("etc/removed"), "lower layer only\n").unwrap();
    if let Some((name, mib)) = extra {
        let file = std::fs::File::create(root.join(name)).unwrap();
        // Real zeros, not a hole: the tree measures at full size.
        let zeros = vec![0u8; MIB as usize];
        let mut writer = std::io::BufWriter::new(file);
        for _ in 0..mib {
            std::io::Write::write_all(&mut writer, &zeros).unwrap();
        }
    }
    run_ok(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );

    let bundle = scratch.join("bundle2");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    );
    std::fs::remove_file(bundle.join("rootfs/etc/removed")).unwrap();
    run_ok(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    layout
}

pub(super) fn debugfs(image: &Path, request: &str) -> String {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(image)
        .output()
        .unwrap();
    // debugfs reports lookup failures on stderr but exits 0; return both, minus its banner.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let diagnostics: String = stderr
        .lines()
        .filter(|line| !line.starts_with("debugfs "))
        .map(|line| format!("{line}\n"))
        .collect();
    format!("{}{diagnostics}", String::from_utf8_lossy(&out.stdout))
}

pub(super) async fn build(
    scratch: &Path,
    reference: &str,
    capacity_bytes: u64,
) -> (Result<BuiltImage, ImageError>, PathBuf) {
    build_with_credentials(scratch, reference, capacity_bytes, None, None).await
}

pub(super) async fn build_with_credentials(
    scratch: &Path,
    reference: &str,
    capacity_bytes: u64,
    registry_url: Option<&str>,
    credentials: Option<&RegistryCredentials>,
) -> (Result<BuiltImage, ImageError>, PathBuf) {
    let output = scratch.join("snapshot.ext4");
    let work = scratch.join(format!("work-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work).unwrap();
    let request = BuildRequest {
        reference,
        registry_url,
        credentials,
        blob_cache: &scratch.join("blobs"),
        work_dir: &work,
        capacity_bytes,
        output: &output,
    };
    (build_snapshot_image(&request).await, output)
}

/// The built image holds the files, symlinks and modes of the layout, minus the whiteout.
pub(super) fn assert_image_contents(image: &Path) {
    run_ok(Command::new("e2fsck").arg("-fn").arg(image));
    assert_eq!(debugfs(image, "cat /etc/hello"), "hello from the image\n");
    let sh = debugfs(image, "stat /bin/sh");
    assert!(sh.contains("Fast link dest: \"busybox\""), "{sh}");
    let busybox = debugfs(image, "stat /bin/busybox");
    assert!(busybox.contains("Mode:  0755"), "{busybox}");
    let root = debugfs(image, "stat /");
    assert!(
        root.contains("Mode:  0755") && root.contains("User:     0"),
        "{root}"
    );
    let removed = debugfs(image, "stat /etc/removed");
    assert!(
        removed.contains("File not found"),
        "whiteout ignored: {removed}"
    );
}

#[tokio::test]
async fn oci_layout_becomes_an_ext4_image() {
    let scratch = tempfile::tempdir().unwrap();
    let layout = build_layout(scratch.path(), "v1", None);
    let reference = format!("oci:{}:v1", layout.display());
    let (built, image) = build(scratch.path(), &reference, 64 * MIB).await;
    let built = built.unwrap();

    assert_image_contents(&image);
    assert!(built.digest.starts_with("sha256:"), "{}", built.digest);
    assert_eq!(
        built.config.env.last().map(String::as_str),
        Some("GREETING=hello")
    );
    assert_eq!(built.config.working_dir.as_deref(), Some("/etc"));
    assert_eq!(built.config.cmd, vec!["/bin/sh"]);
    assert!(
        built.used_bytes > MIB,
        "busybox alone is over a MiB: {}",
        built.used_bytes
    );
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 64 * MIB);
    let allocated = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    assert!(allocated < meta.len(), "the image file is sparse");

    let (missing, _) = build(
        scratch.path(),
        &format!("oci:{}:nope", layout.display()),
        64 * MIB,
    )
    .await;
    let message = missing.unwrap_err().to_string();
    assert!(
        message.contains("no image tagged \"nope\" (tags: v1)"),
        "{message}"
    );
}

#[tokio::test]
async fn image_larger_than_capacity_fails_with_sizes() {
    let scratch = tempfile::tempdir().unwrap();
    let layout = build_layout(scratch.path(), "big", Some(("payload", 48)));
    let reference = format!("oci:{}:big", layout.display());
    let (built, image) = build(scratch.path(), &reference, 32 * MIB).await;
    let message = built.unwrap_err().to_string();
    assert!(message.starts_with("image needs "), "{message}");
    assert!(
        message.ends_with("MiB but the capacity is 32 MiB; build with a larger --capacity"),
        "{message}"
    );
    assert!(!image.exists(), "no half-made image is left behind");
}
