//! Scale: what each idle sandbox takes of the host's counted resources, and at how many
//! sandboxes each of the machine's limits would be reached. Counts are read from the host
//! (`/proc`, `/sys`), with one sandbox up and then with all of them up (the warm pool full
//! both times).

use std::path::Path;

use crate::common::process::{open_file_limits, resident_kib};

/// The host's counted resources at one moment.
pub struct Census {
    /// Descriptors the server holds open, and its soft limit on them.
    server_files: f64,
    server_file_limit: Option<f64>,
    /// Tasks on the host (processes and threads, the kernel's own included), each of which
    /// takes a process id: the total of `/proc/loadavg`, which counts them all even from
    /// inside a PID namespace.
    tasks: f64,
    /// Mounts in the host's mount namespace.
    mounts: f64,
    /// Loop devices bound to a file.
    loop_devices: f64,
    /// Host memory in use (MemTotal − MemAvailable), bytes.
    memory: f64,
    /// The server's own resident memory (`VmRSS`), bytes.
    server_memory: f64,
}

impl Census {
    pub fn take(server_pid: u32) -> Census {
        Census {
            server_files: std::fs::read_dir(format!("/proc/{server_pid}/fd"))
                .unwrap()
                .count() as f64,
            server_file_limit: open_file_limits(server_pid).0.parse().ok(),
            tasks: all_tasks(),
            mounts: std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .count() as f64,
            loop_devices: std::fs::read_dir("/sys/block")
                .unwrap()
                .flatten()
                .filter(|e| e.path().join("loop/backing_file").exists())
                .count() as f64,
            memory: host_memory().0,
            server_memory: resident_kib(server_pid)
                .unwrap_or_else(|| panic!("no VmRSS in /proc/{server_pid}/status"))
                as f64
                * 1024.0,
        }
    }
}

/// Host memory in use (MemTotal − MemAvailable) and kernel slab, in bytes.
pub fn host_memory() -> (f64, f64) {
    (
        meminfo("MemTotal:") - meminfo("MemAvailable:"),
        meminfo("Slab:"),
    )
}

/// A field of `/proc/meminfo`, in bytes.
fn meminfo(name: &str) -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/meminfo"))
        * 1024.0
}

/// Every task on the host: the total after the `/` in the fourth field of `/proc/loadavg`.
fn all_tasks() -> f64 {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
    loadavg
        .split_whitespace()
        .nth(3)
        .and_then(|running_and_total| running_and_total.split_once('/'))
        .and_then(|(_, total)| total.parse().ok())
        .unwrap_or_else(|| panic!("no task count in /proc/loadavg: {loadavg}"))
}

/// Prints each resource's share per sandbox (`one`: one sandbox up, `all`: `sandboxes`
/// up, the warm pool full both times), the machine's limit on it and the number of
/// sandboxes at which that limit would be reached; then the first such limit.
pub fn print_limits(one: &Census, all: &Census, sandboxes: usize) {
    let limits = [
        (
            "the server's open files",
            one.server_files,
            all.server_files,
            all.server_file_limit.map(|n| (n, "its `RLIMIT_NOFILE`")),
        ),
        (
            "host tasks (processes and threads, the kernel's included)",
            one.tasks,
            all.tasks,
            sysctl("kernel/pid_max").map(|n| (n, "`kernel.pid_max`")),
        ),
        (
            "mounts in the host's namespace",
            one.mounts,
            all.mounts,
            sysctl("fs/mount-max").map(|n| (n, "`fs.mount-max`")),
        ),
        (
            "host memory, MB",
            one.memory / 1e6,
            all.memory / 1e6,
            Some((meminfo("MemTotal:") / 1e6, "MemTotal")),
        ),
        (
            "the server's own resident memory, MB (part of the host's)",
            one.server_memory / 1e6,
            all.server_memory / 1e6,
            None,
        ),
        (
            "loop devices bound",
            one.loop_devices,
            all.loop_devices,
            None,
        ),
    ];
    println!();
    println!(
        "| with {sandboxes} idle sandboxes up | per sandbox | in use | limit on this machine | sandboxes at that limit |"
    );
    println!("|---|---|---|---|---|");
    let mut first: Option<(f64, &str, &str)> = None;
    for (what, one, all, limit) in limits {
        // Shares need at least two counts to compare.
        let each = (sandboxes > 1).then(|| (all - one) / (sandboxes - 1) as f64);
        let (limit_text, at) = match (limit, each) {
            (Some((limit, name)), Some(each)) if each > 0.0 => {
                let at = sandboxes as f64 + ((limit - all) / each).floor();
                if first.is_none_or(|(lowest, _, _)| at < lowest) {
                    first = Some((at, name, what));
                }
                (format!("{limit:.0} ({name})"), format!("about {at:.0}"))
            }
            (Some((limit, name)), _) => (format!("{limit:.0} ({name})"), "—".into()),
            (None, _) => ("—".into(), "—".into()),
        };
        let each = each.map_or("—".into(), |each| format!("{each:.2}"));
        println!("| {what} | {each} | {all:.0} | {limit_text} | {at} |");
    }
    if let Some((at, name, what)) = first {
        println!();
        println!("The first limit on this machine: {name} ({what}), at about {at:.0} sandboxes.");
    }
}

/// A number from `/proc/sys/<key>`.
fn sysctl(key: &str) -> Option<f64> {
    std::fs::read_to_string(Path::new("/proc/sys").join(key))
        .ok()?
        .trim()
        .parse()
        .ok()
}
