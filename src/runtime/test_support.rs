//! Helpers the runtime's root-only unit tests share: a fresh network namespace to work in,
//! and a guard that leaves no test mount behind.

use std::path::PathBuf;

/// Runs `work` on a thread of its own in a new, empty network namespace, which ends with
/// the thread. `None` (the test is skipped) without root.
pub fn in_a_new_network_namespace<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: a network namespace needs root");
        return None;
    }
    let thread = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        work()
    });
    Some(thread.join().unwrap())
}

/// Unmounts (lazily) the points a test mounted, whatever the test's outcome.
pub struct DetachOnDrop(pub Vec<PathBuf>);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        for point in &self.0 {
            let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
