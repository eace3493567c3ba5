//! Loop devices bound to a sandbox's upper image, and waiting until the kernel has let go of
//! them after an unmount.
//!
//! The layers' devices are bound with autoclear (see [`loop_attach`](super::loop_attach)):
//! the kernel unbinds one once the last reference to its filesystem goes, which for a
//! container's mounts can be shortly after runc returned (its mount namespace is freed
//! asynchronously). A stop that returned then would leave the upper image bound, and a
//! quick restart, capacity change or capture would race the kernel. So a teardown notes the
//! upper image's devices before unmounting and waits until they are unbound.
//!
//! The snapshot image is not waited for: one read-only loop device is shared among every
//! sandbox mounted from the same image, so its device outlives any one sandbox.
//!
//! A binding is named by the device's disk sequence number (`/sys/block/loopN/diskseq`),
//! which the kernel increments on every bind and unbind: a device unbound and at once bound
//! again by another sandbox is still released. A device whose backing file is no longer
//! the one noted, or was not ours by the time it was noted, counts as released too: it may
//! have been rebound between the listing and the noting.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::mount_table::Mount;
use super::{RuntimeError, host};

/// How long a teardown waits for the kernel to unbind a loop device it let go of.
const RELEASE_DEADLINE: Duration = Duration::from_secs(10);
/// How often it looks meanwhile: reading one sysfs file costs microseconds.
const RELEASE_POLL: Duration = Duration::from_millis(1);

/// One loop device's binding at the time it was noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `loopN`, as named under `/sys/block`.
    device: String,
    /// The device's disk sequence number then; `None` on kernels without it (before 5.15).
    diskseq: Option<u64>,
    /// Its backing file then, byte for byte as sysfs names it; `None` if it was not bound to
    /// our file by then (released already, or bound again to another).
    backing: Option<String>,
}

impl Binding {
    /// Notes `device`, listed as bound to `file`. Reads sysfs: call it off the async workers.
    fn note(device: &str, file: &Path) -> Binding {
        let diskseq = read_diskseq(device);
        // Ours is decided by the file itself (device and inode), not by comparing paths: the
        // kernel's name for it need not be the one we would spell.
        let backing = read_backing(device).filter(|named| same_file(Path::new(named), file));
        Binding {
            device: device.to_string(),
            diskseq,
            backing,
        }
    }

    /// True once the device is unbound, bound again since it was noted, or bound to a file
    /// other than ours.
    fn released(&self) -> bool {
        let Some(noted) = &self.backing else {
            return true;
        };
        match read_backing(&self.device) {
            None => true, // unbound: sysfs has no loop/ directory for it
            Some(now) if now != *noted => true,
            Some(_) => match self.diskseq {
                Some(noted) => read_diskseq(&self.device).is_some_and(|now| now != noted),
                None => false,
            },
        }
    }
}

/// Waits (off the async workers) until every binding is released; after
/// [`RELEASE_DEADLINE`] the devices still bound are an error, since something on the host
/// still holds their filesystems.
pub async fn wait_released(bindings: Vec<Binding>) -> Result<(), RuntimeError> {
    if bindings.is_empty() {
        return Ok(());
    }
    host::blocking("waiting for loop devices", move || {
        let deadline = Instant::now() + RELEASE_DEADLINE;
        let mut pending = bindings;
        loop {
            pending.retain(|binding| !binding.released());
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let devices: Vec<String> = pending
                    .iter()
                    .map(|binding| format!("/dev/{}", binding.device))
                    .collect();
                return Err(RuntimeError::LoopsStillBound(devices.join(", ")));
            }
            std::thread::sleep(RELEASE_POLL);
        }
    })
    .await
}

/// Notes where the upper image was bound, in `record`, before it is mounted: a teardown
/// then finds the device even after every mount of it is gone from the host's table (a
/// retry after [`wait_released`] gave up, a restart after a crash in between).
pub fn remember(record: &Path, device: &Path) -> Result<(), RuntimeError> {
    let name = device.file_name().unwrap_or_default().to_string_lossy();
    fs::write(record, format!("{name}\n")).map_err(RuntimeError::io("write", record))
}

/// The loop devices bound to `file` now among `mounts`' sources and the one `record` names,
/// noted for [`wait_released`] (before they are unmounted). Reads sysfs: call it off the
/// async workers.
pub fn note_bound_to(mounts: &[Mount], file: &Path, record: &Path) -> Vec<Binding> {
    let recorded = fs::read_to_string(record).unwrap_or_default();
    let mut devices: Vec<&str> = mounts
        .iter()
        .filter_map(|mount| mount.source.strip_prefix("/dev/"))
        .chain(std::iter::once(recorded.trim()))
        .filter(|device| device.starts_with("loop") && !device.contains('/'))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    devices
        .into_iter()
        .map(|device| Binding::note(device, file))
        .filter(|binding| binding.backing.is_some())
        .collect()
}

fn sys_block(device: &str) -> PathBuf {
    Path::new("/sys/block").join(device)
}

/// The device's backing file as sysfs names it, or `None` when it is unbound.
fn read_backing(device: &str) -> Option<String> {
    let named = fs::read_to_string(sys_block(device).join("loop/backing_file")).ok()?;
    Some(named.trim_end_matches('\n').to_string())
}

/// True when both paths name the same file (device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

fn read_diskseq(device: &str) -> Option<u64> {
    fs::read_to_string(sys_block(device).join("diskseq"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Polls `done` (a kernel state that follows a release) until it holds; fails the test past
/// [`RELEASE_DEADLINE`].
#[cfg(test)]
pub(super) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + RELEASE_DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        std::thread::sleep(RELEASE_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_that_does_not_exist_counts_as_released() {
        let binding = Binding::note("loop999999", Path::new("/nonexistent/upper.ext4"));
        assert_eq!(binding.diskseq, None);
        assert_eq!(binding.backing, None);
        assert!(binding.released());
    }

    #[test]
    fn a_binding_is_ours_by_inode_whatever_path_named_it_and_released_when_detached() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("upper.ext4");
        fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        // Another name for the same file: the kernel names the device's backing file by the
        // path it was bound through, which is not this one.
        let other_name = dir.path().join("same-inode.ext4");
        fs::hard_link(&image, &other_name).unwrap();
        let Ok(bound) = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&image)
            .output()
        else {
            eprintln!("skipped: losetup is not installed");
            return;
        };
        if !bound.status.success() {
            eprintln!("skipped: cannot bind a loop device here (needs root)");
            return;
        }
        let device = String::from_utf8(bound.stdout).unwrap().trim().to_string();
        let detach = || {
            std::process::Command::new("losetup")
                .args(["-d", &device])
                .status()
                .unwrap()
        };
        let name = device.strip_prefix("/dev/").unwrap();
        let binding = Binding::note(name, &other_name);
        let held = binding.backing.is_some() && !binding.released();
        assert!(detach().success());
        assert!(held, "{binding:?} was taken for released while still bound");
        wait_until(&format!("{device} to count as released"), || {
            binding.released()
        });
        // Noted once another file is behind it, a device is not ours to wait for.
        let elsewhere = Binding::note(name, &dir.path().join("missing.ext4"));
        assert_eq!(elsewhere.backing, None);
    }

    #[test]
    fn a_recorded_binding_is_waited_for_when_no_mount_names_it_any_more() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("upper.ext4");
        fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let record = dir.path().join("upper.loop");
        let device = match super::super::loop_attach::attach(&image, false) {
            Ok(device) => device,
            Err(e) => {
                eprintln!("skipped: cannot bind loop devices here (needs root): {e}");
                return;
            }
        };
        remember(&record, device.path()).unwrap();
        // Not mounted anywhere (as after an unmount whose release wait gave up).
        let noted = note_bound_to(&[], &image, &record);
        assert_eq!(noted.len(), 1, "{noted:?}");
        assert!(!noted[0].released());
        // A record naming a device bound to another file is not ours to wait for.
        let other = dir.path().join("other.ext4");
        fs::write(&other, vec![0u8; 1 << 20]).unwrap();
        assert!(note_bound_to(&[], &other, &record).is_empty());
        drop(device);
        wait_until("the recorded device to be released", || noted[0].released());
        fs::remove_file(&record).unwrap();
        assert!(note_bound_to(&[], &image, &record).is_empty());
    }
}
