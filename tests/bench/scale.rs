//! Scale: what each idle sandbox takes of the host's counted resources, and at how many
//! sandboxes each of the machine's limits would be reached. Counts are read from the host
//! (`/proc`, `/sys`), before and after the idle sandboxes are created.

use std::path::Path;

/// The host's counted resources at one moment.
pub struct Census {
    /// Descriptors the server holds open, and its soft limit on them.
    server_files: f64,
    server_file_limit: Option<f64>,
    /// Tasks (processes and threads, the kernel's own included): each takes a process id.
    tasks: f64,
    /// Mounts in the host's mount namespace.
    mounts: f64,
    /// Loop devices bound to a file.
    loop_devices: f64,
    /// Host memory in use (MemTotal − MemAvailable), bytes.
    memory: f64,
}

impl Census {
    pub fn take(server_pid: u32, memory_in_use: f64) -> Census {
        Census {
            server_files: entries(&format!("/proc/{server_pid}/fd")),
            server_file_limit: soft_open_files(server_pid),
            tasks: std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .map(|e| entries(&e.path().join("task").to_string_lossy()))
                .sum(),
            mounts: std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .count() as f64,
            loop_devices: std::fs::read_dir("/sys/block")
                .unwrap()
                .flatten()
                .filter(|e| e.path().join("loop/backing_file").exists())
                .count() as f64,
            memory: memory_in_use,
        }
    }
}

/// Entries of the directory at `path` (0 if it vanished meanwhile).
fn entries(path: &str) -> f64 {
    std::fs::read_dir(path).map_or(0, |dir| dir.count()) as f64
}

/// Prints each resource's share per sandbox (the difference between `after` and `before`,
/// which has `added` sandboxes fewer, one of them still up), the machine's limit on it and
/// the number of sandboxes at which that limit would be reached; then the first such limit.
pub fn print_limits(before: &Census, after: &Census, added: usize) {
    let limits = [
        (
            "the server's open files",
            before.server_files,
            after.server_files,
            after.server_file_limit.map(|n| (n, "its `RLIMIT_NOFILE`")),
        ),
        (
            "host tasks (processes and threads, the kernel's included)",
            before.tasks,
            after.tasks,
            sysctl("kernel/pid_max").map(|n| (n, "`kernel.pid_max`")),
        ),
        (
            "mounts in the host's namespace",
            before.mounts,
            after.mounts,
            sysctl("fs/mount-max").map(|n| (n, "`fs.mount-max`")),
        ),
        (
            "host memory, MB",
            before.memory / 1e6,
            after.memory / 1e6,
            memory_total_mb().map(|n| (n, "MemTotal")),
        ),
        (
            "loop devices bound",
            before.loop_devices,
            after.loop_devices,
            None,
        ),
    ];
    let sandboxes = added + 1;
    println!();
    println!(
        "| with {sandboxes} sandboxes up | per sandbox | in use | limit on this machine | sandboxes at that limit |"
    );
    println!("|---|---|---|---|---|");
    let mut first: Option<(f64, &str, &str)> = None;
    for (what, before, after, limit) in limits {
        let each = (after - before) / added.max(1) as f64;
        let (limit_text, at) = match limit {
            Some((limit, name)) if each > 0.0 => {
                let at = sandboxes as f64 + ((limit - after) / each).floor();
                if first.is_none_or(|(lowest, _, _)| at < lowest) {
                    first = Some((at, name, what));
                }
                (format!("{limit:.0} ({name})"), format!("about {at:.0}"))
            }
            Some((limit, name)) => (format!("{limit:.0} ({name})"), "—".into()),
            None => ("—".into(), "—".into()),
        };
        println!("| {what} | {each:.2} | {after:.0} | {limit_text} | {at} |");
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

/// The soft limit on open files of process `pid`.
fn soft_open_files(pid: u32) -> Option<f64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// MemTotal in MB.
fn memory_total_mb() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024.0 / 1e6)
}
