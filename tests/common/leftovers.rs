//! What a server's sandboxes may leave on the host once they are deleted: nothing. The
//! checks read the host itself (runc's root, the mount table, loop devices, id-range claims,
//! cgroups, processes), never the server's word.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::server::runc_containers;

/// After every sandbox of `state_dir` is deleted and its server stopped (a running server
/// keeps warm sandboxes for the next create, and destroys them when it stops): no container
/// in its runc root, no mount under it and no loop device backed by a file under it.
pub fn assert_no_leftovers(state_dir: &Path) {
    let containers = runc_containers(state_dir);
    assert!(containers.is_empty(), "containers left: {containers:?}");
    let prefix = state_dir.to_string_lossy().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&prefix)))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
    // No host id range is still claimed for one of this server's sandboxes.
    let claims: Vec<String> = std::fs::read_dir("/run/langsmith/ranges")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter(|owner| owner.starts_with(&prefix))
        .collect();
    assert!(claims.is_empty(), "id ranges still claimed: {claims:#?}");
    // The kernel clears an autoclear loop device from a work queue after its last user is
    // gone (the container's mount namespace dies with its last process), so a device may
    // outlive the delete by a moment; one that is still bound after the limit has leaked.
    let ours = || {
        let loops = Command::new("losetup")
            .args(["--list", "--noheadings", "--output", "NAME,BACK-FILE"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&loops.stdout)
            .lines()
            .filter(|l| l.contains(&prefix))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut left = ours();
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = ours();
    }
    assert!(left.is_empty(), "loop devices left: {left:#?}");
}

/// No cgroup of a sandbox in `sandbox_ids` (`langsmith/ls-<id>`, in any hierarchy the host
/// has mounted) and no process in one.
pub fn assert_cgroups_and_processes_gone(sandbox_ids: &[String]) {
    let names: HashSet<String> = sandbox_ids.iter().map(|id| format!("ls-{id}")).collect();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let cgroup_mounts: Vec<&str> = mountinfo
        .lines()
        .filter(|line| {
            // The filesystem type follows the ` - ` separator.
            line.split(" - ")
                .nth(1)
                .and_then(|after| after.split(' ').next())
                .is_some_and(|fs| fs == "cgroup" || fs == "cgroup2")
        })
        .filter_map(|line| line.split(' ').nth(4))
        .collect();
    assert!(!cgroup_mounts.is_empty(), "no cgroup hierarchy mounted");
    let cgroups: Vec<String> = cgroup_mounts
        .iter()
        .flat_map(|mount| std::fs::read_dir(Path::new(mount).join("langsmith")).into_iter())
        .flatten()
        .flatten()
        .filter(|entry| names.contains(entry.file_name().to_string_lossy().as_ref()))
        .map(|entry| entry.path().display().to_string())
        .collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:#?}");
    let processes: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| {
            let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).ok()?;
            // A line is `hierarchy:controllers:/path`; ours have `/langsmith/ls-<id>` in it.
            let named = cgroup.lines().any(|line| {
                let path = line.splitn(3, ':').nth(2).unwrap_or_default();
                let parts: Vec<&str> = path.split('/').collect();
                parts
                    .windows(2)
                    .any(|pair| pair[0] == "langsmith" && names.contains(pair[1]))
            });
            named.then(|| {
                format!(
                    "{}: {}",
                    entry.path().display(),
                    cgroup.lines().next().unwrap_or("")
                )
            })
        })
        .collect();
    assert!(processes.is_empty(), "processes left: {processes:#?}");
}
