//! Test images, built from Debian's static binaries with `umoci` and pushed to the loopback
//! registry with `skopeo` — real OCI images, no Docker Hub.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::process::run_ok;
use super::registry;

/// `127.0.0.1:PORT/tiny:1`: busybox-static plus a static bash, no libc at all.
pub fn tiny() -> &'static str {
    static TINY: OnceLock<String> = OnceLock::new();
    TINY.get_or_init(|| {
        let work = tempfile::tempdir().unwrap();
        let layout = work.path().join("layout");
        build_tiny_layout(&layout, work.path());
        let reference = format!("{}/tiny:1", registry::shared().host);
        run_ok(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{}:tiny", layout.display()),
            &format!("docker://{reference}"),
        ]));
        reference
    })
}

/// Build an OCI image layout holding the tiny image under the tag `tiny`.
pub fn build_tiny_layout(layout: &Path, scratch: &Path) {
    let image = format!("{}:tiny", layout.display());
    let bundle = scratch.join("bundle");
    run_ok(Command::new("umoci").args(["init", "--layout"]).arg(layout));
    run_ok(Command::new("umoci").args(["new", "--image", &image]));
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    );
    let root = bundle.join("rootfs");
    for dir in ["bin", "etc", "tmp", "root", "proc", "sys", "dev", "usr/bin"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static installed");
    std::fs::copy("/bin/bash-static", root.join("bin/bash")).expect("bash-static installed");
    let applets = run_ok(Command::new("/bin/busybox").arg("--list"));
    for applet in applets.lines().filter(|a| *a != "busybox" && *a != "bash") {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(root.join("etc/hello"), "hello from the tiny image\n").unwrap();
    run_ok(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    run_ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.env",
        "PATH=/bin:/usr/bin",
        "--config.workingdir",
        "/root",
    ]));
}
