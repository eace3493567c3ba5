//! Child processes that cannot outlive the tests, and bounded waiting.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// Make `cmd`'s process receive SIGKILL when the thread that spawned it ends, so a
/// panicking test never leaves servers or registries behind.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and the closure touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Poll `check` until it returns `Some`, failing the test after `limit`. Used to wait for
/// readiness conditions, never as a timing assertion.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Run a command to completion and return its stdout, failing the test with its stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails when any file under `dir` holds `needle` (a secret that must only be stored sealed).
pub fn assert_not_on_disk(dir: &std::path::Path, needle: &str) {
    for entry in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        assert!(
            !file_holds(entry.path(), needle.as_bytes()),
            "{} holds {needle:?} in clear",
            entry.path().display()
        );
    }
}

/// Whether the file at `path` holds `needle`, read in chunks (images may be large and sparse).
fn file_holds(path: &std::path::Path, needle: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let finder = memchr::memmem::Finder::new(needle);
    let mut buf = vec![0u8; 4 << 20];
    // The last bytes of a chunk stay in front of the next, so a needle across two is found.
    let mut kept = 0;
    loop {
        let n = match file.read(&mut buf[kept..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let filled = kept + n;
        if finder.find(&buf[..filled]).is_some() {
            return true;
        }
        kept = (needle.len() - 1).min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

/// The soft and hard limits on open files of process `pid`, from `/proc/<pid>/limits` (as
/// written there: a number or `unlimited`).
pub fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open file limit in {limits}"));
    // `Max open files  <soft>  <hard>  files`
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

/// The resident memory of process `pid` (`VmRSS` in `/proc/<pid>/status`), in KiB; `None`
/// when the process is gone or the field is missing.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
