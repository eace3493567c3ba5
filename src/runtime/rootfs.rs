//! A sandbox's root filesystem: the snapshot image loop-mounted read-only at `lower/`, the
//! sandbox's own sparse ext4 image loop-mounted at `upperfs/`, and an overlay of the two at
//! `rootfs/`. Writes land in the upper image (so they survive stop/start and hit ENOSPC at its
//! capacity); unmounting releases every loop device (util-linux sets autoclear, `-d` insists).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::layout::SandboxLayout;
use super::{RuntimeError, host, upper_image};

/// Mounts lower, upper and overlay for a start. On failure, whatever was mounted is unmounted.
pub async fn mount(
    layout: &SandboxLayout,
    snapshot: &Path,
    capacity: u64,
    hostname: &str,
) -> Result<(), RuntimeError> {
    let result = mount_layers(layout, snapshot, capacity).await;
    let result = match result {
        Ok(()) => write_identity_files(&layout.rootfs, hostname),
        Err(e) => Err(e),
    };
    if let Err(error) = result {
        // Keep the first error; the cleanup's own failure would only hide it.
        let _ = unmount_all(layout).await;
        return Err(error);
    }
    Ok(())
}

async fn mount_layers(
    layout: &SandboxLayout,
    snapshot: &Path,
    capacity: u64,
) -> Result<(), RuntimeError> {
    // `noload`: never replay a journal on the shared read-only snapshot.
    host::run(
        "mount",
        [
            arg("-o"),
            arg("loop,ro,noload"),
            snapshot.into(),
            (&layout.lower).into(),
        ],
    )
    .await?;
    upper_image::prepare(&layout.upper_image, capacity).await?;
    host::run(
        "mount",
        [
            arg("-o"),
            arg("loop"),
            (&layout.upper_image).into(),
            (&layout.upperfs).into(),
        ],
    )
    .await?;
    let upper = layout.upperfs.join("upper");
    let work = layout.upperfs.join("work");
    for dir in [&upper, &work] {
        fs::create_dir_all(dir).map_err(RuntimeError::io("create directory", dir))?;
    }
    // Relative to the sandbox directory, where the mount runs: the kernel shows the options
    // as given in the sandbox's own mount table, which so names no host path.
    let relative = |dir: &Path| {
        dir.strip_prefix(&layout.dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| dir.to_path_buf())
    };
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        relative(&layout.lower).display(),
        relative(&upper).display(),
        relative(&work).display()
    );
    let mut mount = tokio::process::Command::new("mount");
    mount
        .current_dir(&layout.dir)
        .args([arg("-t"), arg("overlay"), arg("overlay"), arg("-o")])
        .arg(options)
        .arg(&layout.rootfs);
    let output = host::output(&mut mount).await?;
    if !output.status.success() {
        return Err(host::failure(&mount, &output));
    }
    Ok(())
}

fn arg(text: &str) -> std::ffi::OsString {
    text.into()
}

/// Gives the image an `/etc/hosts` and `/etc/hostname` when it has none (written into the
/// upper layer). Never writes through a symlink: the image controls those and could point
/// them anywhere on the host.
fn write_identity_files(rootfs: &Path, hostname: &str) -> Result<(), RuntimeError> {
    let etc = rootfs.join("etc");
    match fs::symlink_metadata(&etc) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(()),
        Err(_) => fs::create_dir(&etc).map_err(RuntimeError::io("create directory", &etc))?,
    }
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    for (name, content) in [("hosts", hosts), ("hostname", format!("{hostname}\n"))] {
        let path = etc.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(RuntimeError::io("create", &path))?;
        file.write_all(content.as_bytes())
            .map_err(RuntimeError::io("write", &path))?;
    }
    Ok(())
}

/// Unmounts everything mounted under `dir` (deepest, most recent first), then detaches any
/// loop device still bound to the upper image (left by a crash between mount and autoclear).
pub async fn unmount_all(layout: &SandboxLayout) -> Result<(), RuntimeError> {
    let mut first_error = None;
    for mount_point in mounts_under(&layout.dir).into_iter().rev() {
        if let Err(e) = host::run("umount", [arg("-d"), mount_point.into()]).await {
            first_error.get_or_insert(e);
        }
    }
    if layout.upper_image.exists() {
        detach_loops(&layout.upper_image).await?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Detaches every loop device backed by `file`. A device that autoclear releases between the
/// listing and the detach (the kernel frees it lazily after the last unmount) is not an error.
async fn detach_loops(file: &Path) -> Result<(), RuntimeError> {
    for device in loops_backed_by(file).await? {
        if let Err(error) = host::run("losetup", [arg("-d"), arg(&device)]).await
            && loops_backed_by(file).await?.contains(&device)
        {
            return Err(error);
        }
    }
    Ok(())
}

/// Loop devices (`/dev/loopN`) currently bound to `file`.
async fn loops_backed_by(file: &Path) -> Result<Vec<String>, RuntimeError> {
    let output = host::run("losetup", [arg("-j"), file.into()]).await?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(':').map(|(device, _)| device.to_string()))
        .collect())
}

/// Mount points at or below `dir`, in the order they were mounted.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount_point| mount_point.starts_with(dir))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape_mountinfo(field: &str) -> String {
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
