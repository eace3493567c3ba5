//! Binding image files to loop devices in this process, for the two ext4 layers of a start.
//!
//! `mount -o loop` did this before, and cost more the more sandboxes ran: util-linux looks
//! through every loop device in sysfs for one already bound to the file (and reads the whole
//! mount table) on every mount. With a hundred sandboxes starting at once that scan was most
//! of the machine's time. Here a binding is one `LOOP_CTL_GET_FREE` and one `LOOP_CONFIGURE`,
//! whatever the count.
//!
//! - **Autoclear** is part of the configuration, so the kernel unbinds a device once its
//!   filesystem is unmounted and its last descriptor closed. A server killed between binding
//!   and mounting leaves nothing bound: its descriptor goes with it.
//! - **The snapshot image is shared.** Every sandbox of a snapshot mounts the same read-only
//!   device, so the kernel keeps one superblock and one page cache for it (as util-linux did
//!   by finding the device already bound). This process remembers the device of each image;
//!   before reuse the device is opened (which keeps it from being unbound meanwhile) and
//!   asked what it is bound to, by device and inode, so a device that was cleared and bound
//!   to something else is never mounted.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use linux_raw_sys::loop_device::{
    LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY, LOOP_CONFIGURE, LOOP_CTL_GET_FREE, LOOP_GET_STATUS64,
    loop_config, loop_info64,
};

use super::RuntimeError;

/// Free devices tried when others take each one first (`EBUSY`).
const ATTEMPTS: usize = 16;

/// Held across each binding. `LOOP_CTL_GET_FREE` names the same device to every caller until
/// one of them binds it, so binders of one server would only take it from each other: in a
/// burst of 100 creates one lost [`ATTEMPTS`] times in a row. Binders of other processes
/// (another server, `losetup`) are what the retries are for.
static BINDING: Mutex<()> = Mutex::new(());

/// An open loop device bound to an image. Dropping it closes the descriptor: with autoclear
/// the kernel then unbinds the device, unless a mount holds it.
#[derive(Debug)]
pub struct LoopDevice {
    path: PathBuf,
    _open: File,
}

impl LoopDevice {
    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The read-only device each snapshot image was last bound to (see the module's docs).
static SHARED: Mutex<BTreeMap<PathBuf, PathBuf>> = Mutex::new(BTreeMap::new());

/// The read-only device for `image`: the one sandboxes of it already mount, if it is still
/// bound to it, or a new one. Blocking.
pub fn shared_read_only(image: &Path) -> Result<LoopDevice, RuntimeError> {
    // Held across the bind, so concurrent starts of one snapshot bind one device.
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(device) = shared.get(image)
        && let Some(open) = open_if_bound(device, image, true)
    {
        return Ok(open);
    }
    let device = attach(image, true)?;
    shared.insert(image.to_path_buf(), device.path.clone());
    Ok(device)
}

/// Binds `image` to a free loop device, with autoclear. Blocking.
pub fn attach(image: &Path, read_only: bool) -> Result<LoopDevice, RuntimeError> {
    const CONTROL: &str = "/dev/loop-control";
    let backing = open(image, !read_only).map_err(RuntimeError::io("open", image))?;
    let control = open(Path::new(CONTROL), true).map_err(RuntimeError::io("open", CONTROL))?;
    let mut flags = LO_FLAGS_AUTOCLEAR as u32;
    if read_only {
        flags |= LO_FLAGS_READ_ONLY as u32;
    }
    // SAFETY: an all-zero loop_config is valid (no offset, no size limit, default block size).
    let mut config: loop_config = unsafe { std::mem::zeroed() };
    config.fd = backing.as_raw_fd() as u32;
    config.info.lo_flags = flags;
    let mut last = io::Error::from_raw_os_error(libc::EBUSY);
    let _binding = BINDING.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..ATTEMPTS {
        // SAFETY: an argument-less ioctl on the control device we opened.
        let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if number < 0 {
            let e = io::Error::last_os_error();
            return Err(RuntimeError::io("find a free loop device through", CONTROL)(e));
        }
        let path = PathBuf::from(format!("/dev/loop{number}"));
        // The kernel makes a device read-write only if its descriptor is (besides the file's).
        let device = match open_device(&path, number, !read_only) {
            Ok(device) => device,
            // Removed by someone else between the two calls: take the next free one.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                last = e;
                continue;
            }
            Err(e) => return Err(RuntimeError::io("open", &path)(e)),
        };
        // SAFETY: LOOP_CONFIGURE reads one loop_config, which outlives the call; the kernel
        // takes its own reference to the backing file.
        let configured =
            unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE as _, &config) } == 0;
        if !configured {
            last = io::Error::last_os_error();
            if last.raw_os_error() == Some(libc::EBUSY) {
                continue; // another binder took it first
            }
            break;
        }
        // Kept open read-only from here: a writer open on the device would make ext4 refuse
        // the mount on kernels that forbid writing to mounted block devices.
        let held = open(&path, false).map_err(RuntimeError::io("open", &path))?;
        return Ok(LoopDevice { path, _open: held });
    }
    Err(RuntimeError::io("bind a loop device to", image)(last))
}

fn open(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// `device`, opened, if it is bound to `image` (same device and inode) with the wanted
/// read-only flag and no offset or size limit. Holding it open keeps the binding.
fn open_if_bound(device: &Path, image: &Path, read_only: bool) -> Option<LoopDevice> {
    let open = open(device, false).ok()?;
    // SAFETY: an all-zero loop_info64 is valid; LOOP_GET_STATUS64 fills it (ENXIO if the
    // device is unbound).
    let mut info: loop_info64 = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(open.as_raw_fd(), LOOP_GET_STATUS64 as _, &mut info) } != 0 {
        return None;
    }
    let file = std::fs::metadata(image).ok()?;
    let bound_read_only = info.lo_flags & LO_FLAGS_READ_ONLY as u32 != 0;
    let ours = info.lo_device == file.dev()
        && info.lo_inode == file.ino()
        && info.lo_offset == 0
        && info.lo_sizelimit == 0
        && bound_read_only == read_only;
    ours.then(|| LoopDevice {
        path: device.to_path_buf(),
        _open: open,
    })
}

/// Opens `/dev/loopN`, making its node first where `/dev` lacks it (no devtmpfs), with the
/// device number sysfs gives (the minor is not `N` when the driver reserves partitions).
fn open_device(path: &Path, number: libc::c_int, write: bool) -> io::Result<File> {
    match open(path, write) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Gone from sysfs too: removed meanwhile, so the caller takes the next free one.
            let numbers = std::fs::read_to_string(format!("/sys/block/loop{number}/dev"))
                .map_err(|_| io::Error::from_raw_os_error(libc::ENXIO))?;
            let (major, minor) = numbers
                .trim()
                .split_once(':')
                .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
                .ok_or_else(|| io::Error::other(format!("unreadable device number {numbers:?}")))?;
            let mode = nix::sys::stat::Mode::from_bits_truncate(0o660);
            let dev = nix::sys::stat::makedev(major, minor);
            match nix::sys::stat::mknod(path, nix::sys::stat::SFlag::S_IFBLK, mode, dev) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => open(path, write),
                Err(errno) => Err(errno.into()),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_device_is_reused_while_bound_and_replaced_once_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("snapshot.ext4");
        std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let first = match shared_read_only(&image) {
            Ok(device) => device,
            Err(e) => {
                eprintln!("skipped: cannot bind loop devices here (needs root): {e}");
                return;
            }
        };
        let again = shared_read_only(&image).unwrap();
        assert_eq!(first.path(), again.path(), "one device while it is bound");
        assert!(open_if_bound(first.path(), &image, false).is_none());
        let other = dir.path().join("other.ext4");
        std::fs::write(&other, vec![0u8; 1 << 20]).unwrap();
        assert!(open_if_bound(first.path(), &other, true).is_none());
        let path = first.path().to_path_buf();
        drop((first, again));
        // Autoclear: the last close unbinds it (the kernel may finish that a moment later),
        // and then it is never taken for the image's (it may be bound to another by now).
        super::super::loop_devices::wait_until(&format!("{path:?} to be unbound"), || {
            open_if_bound(&path, &image, true).is_none()
        });
        let fresh = shared_read_only(&image).unwrap();
        assert!(open_if_bound(fresh.path(), &image, true).is_some());
        let writable = attach(&other, false).unwrap();
        assert!(open_if_bound(writable.path(), &other, false).is_some());
    }
}
