//! A sandbox's root filesystem: the snapshot image loop-mounted read-only at `lower-raw/`,
//! the sandbox's own sparse ext4 image loop-mounted at `upper-raw/`, idmapped copies of both
//! at `lower/` and `upperfs/` (see [`idmapped`](super::idmapped)), and an overlay of those
//! two, mounted as the sandbox's root where runc picks it up (`runc_view`). Writes land in
//! the upper image (so they survive stop/start and hit ENOSPC at its capacity) with their
//! owners as the sandbox sees them. Every host-side mount is `nosuid,nodev`, the raw and
//! idmapped layers `noexec` too. The images are bound to loop devices with autoclear (see
//! [`loop_attach`](super::loop_attach)), so unmounting releases them; a teardown waits until
//! the kernel has let go of the upper image's (see [`loop_devices`](super::loop_devices)).
//! Mounts are made with `mount(2)`, not `mount(8)`, whose cost grows with the mount table.

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::MsFlags;

use super::id_range::IdRange;
use super::layout::SandboxLayout;
use super::{
    RuntimeError, host, idmapped, loop_attach, loop_devices, mount_table, scratch, upper_image,
};
use crate::phases::Phases;

/// Flags of the raw and idmapped layers: nothing on them is run or opened as a device on
/// the host, and a set-user-ID file a sandbox wrote there is inert.
const LAYER_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);
/// What an EINVAL from mounting an image as ext4 means.
const NOT_EXT4: &str = "no ext4 filesystem, or a damaged one (the kernel log says which)";
/// [`LAYER_FLAGS`] as `mount(8)` options.
const LAYER_OPTIONS: &str = "nosuid,nodev,noexec";

/// Mounts the raw and idmapped layers of a start: everything but the overlay.
pub async fn mount_layers(
    layout: &SandboxLayout,
    range: IdRange,
    snapshot: &Path,
    capacity: u64,
    phases: &mut Phases,
) -> Result<(), RuntimeError> {
    let (snapshot, lower_raw) = (snapshot.to_path_buf(), layout.lower_raw.clone());
    host::blocking("mounting the snapshot image", move || {
        let device = loop_attach::shared_read_only(&snapshot)?;
        // `noload`: never replay a journal on the shared read-only snapshot.
        mount_ext4(
            &device,
            &snapshot,
            &lower_raw,
            MsFlags::MS_RDONLY,
            Some("noload"),
        )
    })
    .await?;
    phases.mark("image mount");
    upper_image::prepare(layout, capacity).await?;
    phases.mark("upper image");
    let upper = layout.clone();
    host::blocking("mounting the upper image", move || {
        let device = loop_attach::attach(&upper.upper_image, false)?;
        loop_devices::remember(&upper.upper_loop, device.path())?;
        mount_ext4(
            &device,
            &upper.upper_image,
            &upper.upper_raw,
            MsFlags::empty(),
            None,
        )
    })
    .await?;
    for dir in ["upper", "work"] {
        let dir = layout.upper_raw.join(dir);
        fs::create_dir_all(&dir).map_err(RuntimeError::io("create directory", &dir))?;
    }
    phases.mark("upper mount");
    let layout = layout.clone();
    host::blocking("mounting", move || {
        let userns = idmapped::user_namespace(range)?;
        idmapped::clone_idmapped(&layout.lower_raw, &layout.lower, userns.as_fd())?;
        idmapped::clone_idmapped(&layout.upper_raw, &layout.upperfs, userns.as_fd())
    })
    .await?;
    phases.mark("idmapped layers");
    Ok(())
}

/// Mounts the ext4 filesystem of `image`, bound to `device`, at `target`, as a layer (see
/// [`LAYER_FLAGS`]). The device's descriptor closes after the mount, which then holds the
/// device alone.
fn mount_ext4(
    device: &loop_attach::LoopDevice,
    image: &Path,
    target: &Path,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RuntimeError> {
    nix::mount::mount(
        Some(device.path()),
        target,
        Some("ext4"),
        flags | LAYER_FLAGS,
        data,
    )
    .map_err(|errno| {
        let error = std::io::Error::from(errno);
        // EINVAL is all the kernel says of a file that is no ext4 filesystem; its log has more.
        let error = if errno == nix::errno::Errno::EINVAL {
            std::io::Error::new(error.kind(), format!("{error}: {NOT_EXT4}"))
        } else {
            error
        };
        RuntimeError::io("mount as ext4", image)(error)
    })
}

/// Mounts the overlay of the idmapped layers at `target`. Blocking, and meant for a thread
/// that is the sandbox's root (`idmapped::become_sandbox_root`, whose working directory is
/// the sandbox directory): overlayfs works in the upper layer with its mounter's ids.
pub fn mount_overlay(layout: &SandboxLayout, target: &Path) -> Result<(), RuntimeError> {
    // Relative to the sandbox directory, the working directory: the kernel shows the options
    // as given in the sandbox's own mount table, which so names no host path.
    let relative = |dir: &Path| {
        dir.strip_prefix(&layout.dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| dir.to_path_buf())
    };
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        relative(&layout.lower).display(),
        relative(&layout.upperfs.join("upper")).display(),
        relative(&layout.upperfs.join("work")).display()
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| RuntimeError::io("mount the overlay at", target)(e.into()))
}

/// A read-only overlay of the raw layers at `capture/`: the sandbox's files with their
/// owners as the image names them (the idmapped ones show host ids), for a capture.
pub async fn mount_native_view(layout: &SandboxLayout) -> Result<PathBuf, RuntimeError> {
    fs::create_dir_all(&layout.capture)
        .map_err(RuntimeError::io("create directory", &layout.capture))?;
    // `index=off`: the upper directory is the live overlay's too; reading it while the
    // sandbox is frozen is what a capture does.
    let options = "ro,index=off,lowerdir=upper-raw/upper:lower-raw";
    let mut mount = tokio::process::Command::new("mount");
    mount
        .current_dir(&layout.dir)
        .args([arg("-t"), arg("overlay"), arg("overlay"), arg("-o")])
        .arg(format!("{options},{LAYER_OPTIONS}"))
        .arg(&layout.capture);
    let output = host::output(&mut mount).await?;
    if !output.status.success() {
        return Err(host::failure(&mount, &output));
    }
    Ok(layout.capture.clone())
}

/// Unmounts a view of [`mount_native_view`] at `mount_point`.
pub async fn unmount_native_view_at(mount_point: &Path) -> Result<(), RuntimeError> {
    host::run("umount", [mount_point]).await.map(drop)
}

fn arg(text: &str) -> std::ffi::OsString {
    text.into()
}

/// The `/etc/hostname` a start writes for `hostname`.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// The `/etc/hosts` a start writes for `hostname`.
pub fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

/// Gives the image an `/etc/hosts` and `/etc/hostname` when it has none (written into the
/// upper layer, as the sandbox's root). Never writes through a symlink: the image controls
/// those and could point them anywhere on the host.
pub fn write_identity_files(rootfs: &Path, hostname: &str) -> Result<(), RuntimeError> {
    let etc = rootfs.join("etc");
    match fs::symlink_metadata(&etc) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(()),
        Err(_) => fs::create_dir(&etc).map_err(RuntimeError::io("create directory", &etc))?,
    }
    for (name, content) in [
        ("hosts", hosts_file(hostname)),
        ("hostname", hostname_file(hostname)),
    ] {
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

/// How long a teardown keeps retrying a mount that is busy. A container's processes can
/// still be exiting when `runc delete` returns, and while its mount namespace lives, the
/// overlay in it holds the layers below: for a moment, unmounting them says EBUSY.
const BUSY_DEADLINE: Duration = Duration::from_secs(5);
/// How often a busy mount is tried again.
const BUSY_POLL: Duration = Duration::from_millis(2);

/// Unmounts `points` in order. Those that are busy are tried again, in the same order, until
/// `deadline`; any other failure is not retried. Returns the first error once every point
/// has been tried for the last time. Blocking.
fn unmount_each(mut points: Vec<PathBuf>, deadline: Instant) -> Result<(), RuntimeError> {
    let mut first_error = None;
    loop {
        let mut busy = Vec::new();
        for point in points {
            match nix::mount::umount(&point) {
                Ok(()) => {}
                Err(nix::errno::Errno::EBUSY) if Instant::now() < deadline => busy.push(point),
                Err(errno) => {
                    first_error.get_or_insert(RuntimeError::io("unmount", &point)(errno.into()));
                }
            }
        }
        if busy.is_empty() {
            return first_error.map_or(Ok(()), Err);
        }
        points = busy;
        std::thread::sleep(BUSY_POLL);
    }
}

/// Unmounts everything mounted under `dir` (deepest, most recent first; a busy one is
/// retried for up to [`BUSY_DEADLINE`], which holds a blocking thread that long), then waits until
/// the kernel has unbound the upper image's loop devices (autoclear; see
/// [`loop_devices`](super::loop_devices)): those the mounts came from and the one the start
/// recorded, so a retry after a wait that gave up waits again instead of passing.
pub async fn unmount_all(layout: &SandboxLayout) -> Result<(), RuntimeError> {
    let record = layout.upper_loop.clone();
    let layout = layout.clone();
    let bindings = host::blocking("unmounting", move || {
        let mounts = mount_table::under(&mount_table::read()?, &layout.dir);
        let bindings =
            loop_devices::note_bound_to(&mounts, &layout.upper_image, &layout.upper_loop);
        let points = mounts.into_iter().rev().map(|mount| mount.point).collect();
        unmount_each(points, Instant::now() + BUSY_DEADLINE).map(|()| bindings)
    })
    .await?;
    loop_devices::wait_released(bindings).await?;
    // Released: the record has served.
    host::blocking("forgetting the upper image's loop device", move || {
        scratch::remove_any(&record)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::DetachOnDrop;

    /// A mount something holds is retried until the deadline and then reported busy; once
    /// let go, the same call unmounts it; a point with nothing mounted fails at once.
    #[test]
    fn a_busy_mount_is_retried_until_its_deadline_then_reported() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("layer");
        fs::create_dir(&point).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &point,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        // Whatever the test's outcome, nothing stays mounted on the host.
        let _detach = DetachOnDrop(vec![point.clone()]);
        let held = fs::File::create(point.join("open")).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        let busy = unmount_each(vec![point.clone()], soon).unwrap_err();
        assert!(busy.to_string().contains("busy"), "{busy}");
        drop(held);
        unmount_each(vec![point.clone()], Instant::now() + BUSY_DEADLINE).unwrap();
        let later = Instant::now() + Duration::from_secs(600);
        let absent = unmount_each(vec![point.clone()], later).unwrap_err();
        assert!(absent.to_string().contains("unmount"), "{absent}");
    }
}
