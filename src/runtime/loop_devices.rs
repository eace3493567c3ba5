//! Loop devices bound to a sandbox's upper image, and waiting until the kernel has let go of
//! them after an unmount.
//!
//! `umount -d` (and `losetup -d`) on a loop device whose filesystem is still referenced
//! elsewhere only marks it autoclear: the kernel unbinds it once the last reference goes,
//! which for a container's mounts can be shortly after runc returned (its mount namespace
//! is freed asynchronously). A stop that returned then would leave the upper image bound, and
//! a quick restart, capacity change or capture would race the kernel. So a teardown waits
//! until the upper image's devices are unbound.
//!
//! The snapshot image is not waited for: util-linux shares one read-only loop device among
//! every sandbox mounted from the same image, so its device outlives any one sandbox.
//!
//! A binding is named by the device's disk sequence number (`/sys/block/loopN/diskseq`),
//! which the kernel increments on every bind and unbind: a device unbound and at once bound
//! again by another sandbox is still released. A device whose backing file is no longer
//! ours counts as released too: it may have been rebound between the listing and the noting
//! of its sequence number.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    /// The file it was listed as bound to, as the kernel names it.
    file: PathBuf,
}

impl Binding {
    /// Notes `device`, listed as bound to `file`. Reads sysfs: call it off the async workers.
    fn note(device: &str, file: &Path) -> Binding {
        Binding {
            device: device.to_string(),
            diskseq: read_diskseq(device),
            file: file.canonicalize().unwrap_or_else(|_| file.to_path_buf()),
        }
    }

    /// True once the device is unbound, bound again since it was noted, or bound to a file
    /// other than ours.
    fn released(&self) -> bool {
        let loop_dir = sys_block(&self.device).join("loop");
        let Ok(backing) = fs::read_to_string(loop_dir.join("backing_file")) else {
            return true; // unbound: sysfs has no loop/ directory for it
        };
        if Path::new(backing.trim_end()) != self.file {
            return true;
        }
        match self.diskseq {
            Some(noted) => read_diskseq(&self.device).is_some_and(|now| now != noted),
            None => false,
        }
    }
}

/// Waits (off the async workers) until every binding is released; after
/// [`RELEASE_DEADLINE`] the devices still bound are an error, since something on the host
/// still holds their filesystems.
async fn wait_released(bindings: Vec<Binding>) -> Result<(), RuntimeError> {
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

/// Detaches every loop device backed by `file` (left bound by a crash between mount and
/// autoclear) and waits until the kernel has unbound them. A device that autoclear releases
/// between the listing and the detach is not an error.
pub async fn detach_backing(file: &Path) -> Result<(), RuntimeError> {
    let devices = backed_by(file).await?;
    let names: Vec<String> = devices
        .iter()
        .filter_map(|device| device.strip_prefix("/dev/").map(str::to_string))
        .collect();
    let noted = file.to_path_buf();
    let bindings = host::blocking("noting loop devices", move || {
        Ok(names
            .iter()
            .map(|name| Binding::note(name, &noted))
            .collect())
    })
    .await?;
    for device in &devices {
        if let Err(error) = host::run("losetup", [Path::new("-d"), Path::new(device)]).await
            && backed_by(file).await?.contains(device)
        {
            return Err(error);
        }
    }
    wait_released(bindings).await
}

/// Loop devices (`/dev/loopN`) currently bound to `file`.
async fn backed_by(file: &Path) -> Result<Vec<String>, RuntimeError> {
    let output = host::run("losetup", [Path::new("-j"), file]).await?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(':').map(|(device, _)| device.to_string()))
        .collect())
}

fn sys_block(device: &str) -> PathBuf {
    Path::new("/sys/block").join(device)
}

fn read_diskseq(device: &str) -> Option<u64> {
    fs::read_to_string(sys_block(device).join("diskseq"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_that_does_not_exist_counts_as_released() {
        let binding = Binding::note("loop999999", Path::new("/nonexistent/upper.ext4"));
        assert_eq!(binding.diskseq, None);
        assert!(binding.released());
    }
}
