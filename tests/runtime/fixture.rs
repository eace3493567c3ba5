//! Test fixture: a runtime under a temporary root, a tiny busybox snapshot image, `runc exec`
//! into sandboxes, and checks that a sandbox left nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use langsmith::runtime::{Runtime, RuntimeConfig, SandboxSpec};

use crate::common::cli::BIN;
use crate::common::process::{run_ok, wait_for};

pub const MIB: i64 = 1024 * 1024;
/// How long the kernel may take to unbind a loop device nothing uses any more.
const RELEASE_LIMIT: Duration = Duration::from_secs(30);

/// Busybox applets linked into the snapshot's `/bin`.
const APPLETS: &[&str] = &[
    "sh", "ls", "ps", "cat", "echo", "dd", "head", "tr", "nc", "wget", "ip", "mkdir", "rm",
    "sleep", "grep", "wc", "df", "sync", "true", "false", "id", "hostname", "stat", "unshare",
    "ln", "env",
];

pub struct Fixture {
    pub runtime: Runtime,
    pub snapshot: PathBuf,
    /// Makes this fixture's sandbox ids its own (see [`Fixture::id`]).
    suffix: String,
    // Dropped last: the runtime root lives inside it.
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        static FIXTURES: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::tempdir().expect("temporary directory");
        let snapshot = dir.path().join("snapshot.ext4");
        make_snapshot(dir.path(), &snapshot);
        let runtime = open_runtime(&dir.path().join("runtime"));
        let suffix = format!(
            "{}-{}",
            std::process::id(),
            FIXTURES.fetch_add(1, Ordering::Relaxed)
        );
        Fixture {
            runtime,
            snapshot,
            suffix,
            _dir: dir,
        }
    }

    /// A sandbox id made from `name` that no other fixture uses, in this test run or in
    /// another one on the machine: the runtime root is private, but a container's cgroups
    /// (`langsmith/ls-<id>`) are shared by the whole host.
    pub fn id(&self, name: &str) -> String {
        format!("{name}-{}", self.suffix)
    }

    pub fn spec(&self, id: &str) -> SandboxSpec {
        SandboxSpec {
            id: id.to_string(),
            hostname: format!("sb-{id}"),
            snapshot_image: self.snapshot.clone(),
            cpu_millicores: 1000,
            mem_bytes: 128 * MIB,
            fs_capacity_bytes: 64 * MIB,
            pids_limit: 128,
            env: vec!["GREETING=hello".to_string()],
            cwd: None,
            egress_ca_pem: None,
        }
    }

    /// `runc exec` of a busybox shell script in the sandbox's container.
    pub fn exec(&self, id: &str, script: &str) -> Output {
        Command::new("runc")
            .arg("--root")
            .arg(self.runtime.root().join("runc"))
            .args([
                "exec",
                &format!("ls-{id}"),
                "/bin/busybox",
                "sh",
                "-c",
                script,
            ])
            .output()
            .expect("runc exec runs")
    }

    /// Like [`Fixture::exec`], asserting success and returning stdout.
    pub fn exec_ok(&self, id: &str, script: &str) -> String {
        let output = self.exec(id, script);
        assert!(
            output.status.success(),
            "`{script}` failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `GET /healthz` through [`Runtime::connect_agent`].
    pub async fn healthz(&self, id: &str) -> Result<u16, String> {
        let stream = self
            .runtime
            .connect_agent(id)
            .await
            .map_err(|e| e.to_string())?;
        langsmith::runtime::healthz(stream)
            .await
            .map_err(|e| e.to_string())
    }

    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.runtime.root().join("sandboxes").join(id)
    }

    /// Asserts that nothing of sandbox `id` remains: mounts, loop devices, container, files.
    pub async fn assert_no_trace(&self, id: &str) {
        let dir = self.sandbox_dir(id);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir_text = dir.to_string_lossy().to_string();
        assert!(
            !mountinfo.contains(&dir_text),
            "mounts remain under {dir_text}"
        );
        let loops = run_ok(Command::new("losetup").arg("-a"));
        assert!(
            !loops.contains(&format!("{dir_text}/")),
            "loop devices remain: {loops}"
        );
        assert_eq!(
            self.runtime.state(id).await,
            langsmith::runtime::ContainerState::Absent
        );
        assert!(!self.runtime.list().await.contains(&id.to_string()));
        assert!(!dir.exists(), "{} still exists", dir.display());
        let view = self.runtime.view_dir(id);
        assert!(
            !mountinfo.contains(&format!("{} ", view.display())),
            "runc's view remains mounted"
        );
        assert!(!view.exists(), "{} still exists", view.display());
        let cgroup = Path::new("/sys/fs/cgroup/memory/langsmith").join(format!("ls-{id}"));
        assert!(!cgroup.exists(), "cgroup {} remains", cgroup.display());
    }
}

impl Fixture {
    /// Asserts that the kernel lets go of the snapshot image once no sandbox runs from it.
    /// Sandboxes share its read-only loop device, which the kernel unbinds when the last
    /// container's mount namespace is freed: that may be just after a teardown returned.
    pub fn assert_snapshot_released(&self) {
        wait_for(
            "the snapshot's loop device to be released",
            RELEASE_LIMIT,
            || loops_bound_to(&self.snapshot).is_empty().then_some(()),
        );
    }
}

/// `losetup -j`: the loop devices bound to `file` now, one line each (empty when none).
pub fn loops_bound_to(file: &Path) -> String {
    run_ok(Command::new("losetup").arg("-j").arg(file))
}

impl Drop for Fixture {
    /// Best-effort cleanup when a test fails half-way, so no container, mount or loop device
    /// outlives it (normal paths destroy their sandboxes themselves).
    fn drop(&mut self) {
        let sandboxes = self.runtime.root().join("sandboxes");
        let Ok(entries) = std::fs::read_dir(&sandboxes) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().to_string();
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.runtime.root().join("runc"))
                .args(["delete", "--force", &format!("ls-{id}")])
                .output();
            let view = self.runtime.view_dir(&id);
            let _ = std::fs::remove_dir(view.join("rootfs"));
            let _ = std::fs::remove_dir(view);
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.runtime.root().to_string_lossy().to_string();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        mounts.reverse();
        for mount in mounts {
            let _ = Command::new("umount").args(["-d", mount]).output();
        }
    }
}

/// A runtime over `root`, as the server would open it at every start.
pub fn open_runtime(root: &Path) -> Runtime {
    let config = RuntimeConfig {
        root: root.to_path_buf(),
        runc: PathBuf::from("runc"),
    };
    Runtime::with_agent_executable(config, Path::new(BIN)).expect("runtime starts")
}

/// Builds a 64 MiB ext4 image holding static busybox, its applets and the usual directories.
fn make_snapshot(work: &Path, image: &Path) {
    let tree = work.join("tree");
    for dir in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).expect("busybox-static is installed");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet)).unwrap();
    }
    let tree = tree.to_string_lossy();
    run_ok(Command::new("mke2fs").args([
        "-q",
        "-F",
        "-t",
        "ext4",
        "-d",
        &tree,
        &image.to_string_lossy(),
        "64M",
    ]));
}
