//! The real `langsmith server`, started on `127.0.0.1:0` with a private state directory.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::cli::Cli;
use super::process::die_with_parent;

pub const API_KEY: &str = "test-key-0123456789";

pub struct TestServer {
    pub url: String,
    pub state_dir: PathBuf,
    child: Option<Child>,
    /// Extra flags, environment and soft open file limit of the first launch, reused by
    /// restarts.
    args: Vec<String>,
    env: Vec<(String, String)>,
    soft_open_files: Option<u64>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Start a server with a fresh state directory.
    pub fn start() -> TestServer {
        TestServer::in_fresh_state_dir(TestServer::start_in)
    }

    /// The server `launch` starts on a new state directory, which lives as long as it.
    fn in_fresh_state_dir(launch: impl FnOnce(&Path) -> TestServer) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = launch(&dir.path().join("state"));
        server._dir = Some(dir);
        server
    }

    /// Start a server with a fresh state directory, extra server flags and environment.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        TestServer::in_fresh_state_dir(|state_dir| TestServer::launch(state_dir, args, env))
    }

    /// Start a server on an existing state directory (restarts).
    pub fn start_in(state_dir: &Path) -> TestServer {
        TestServer::launch(state_dir, &[], &[])
    }

    /// Start a server with a fresh state directory whose log (stderr) goes to `log`, with
    /// `LANGSMITH_LOG` set to `filter`.
    pub fn start_logging(filter: &str, log: &Path) -> TestServer {
        TestServer::start_logging_with(filter, log, &[])
    }

    /// [`TestServer::start_logging`] with more environment.
    pub fn start_logging_with(filter: &str, log: &Path, env: &[(&str, &str)]) -> TestServer {
        let file = std::fs::File::create(log).unwrap();
        let mut env = env.to_vec();
        env.push(("LANGSMITH_LOG", filter));
        TestServer::in_fresh_state_dir(|state_dir| {
            TestServer::launch_on("127.0.0.1:0", state_dir, &[], &env, file.into())
        })
    }

    fn launch(state_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> TestServer {
        TestServer::launch_on("127.0.0.1:0", state_dir, args, env, Stdio::inherit())
    }

    /// Start a server with a fresh state directory whose soft limit on open files is
    /// `soft` (its hard limit stays the test's).
    pub fn start_with_soft_open_file_limit(soft: u64) -> TestServer {
        TestServer::in_fresh_state_dir(|state_dir| {
            let log = Stdio::inherit();
            TestServer::launch_limited("127.0.0.1:0", state_dir, &[], &[], log, Some(soft))
        })
    }

    fn launch_on(
        listen: &str,
        state_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: Stdio,
    ) -> TestServer {
        TestServer::launch_limited(listen, state_dir, args, env, log, None)
    }

    fn launch_limited(
        listen: &str,
        state_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: Stdio,
        soft_open_files: Option<u64>,
    ) -> TestServer {
        let mut cli = Cli::bare()
            .args(&[
                "server",
                "--listen",
                listen,
                "--api-key",
                API_KEY,
                "--state-dir",
            ])
            .arg(state_dir)
            .args(args);
        // Quiet unless the caller asks for more (the benchmark's `PERF_SERVER_LOG`).
        cli = cli.env("LANGSMITH_LOG", "warn");
        for (key, value) in env {
            cli = cli.env(key, value);
        }
        let mut cmd = cli.command();
        cmd.stdout(Stdio::piped()).stderr(log);
        die_with_parent(&mut cmd);
        if let Some(soft) = soft_open_files {
            // SAFETY: between fork and exec the closure only makes two system calls through
            // glibc's thin wrappers (no allocation, no lock) and touches only the child.
            unsafe {
                cmd.pre_exec(move || {
                    let mut limit = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    limit.rlim_cur = soft.min(limit.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("starting langsmith server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("server did not print its ready line ({e}): {line:?}"));
        assert_eq!(ready["event"], "ready");
        TestServer {
            url: ready["url"].as_str().unwrap().to_string(),
            state_dir: state_dir.to_path_buf(),
            child: Some(child),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            soft_open_files,
            _dir: None,
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v2/sandboxes{path}", self.url)
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL the server (sandboxes keep running), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL the server, as a crash would, and start it again on the same address and state
    /// directory: every `dataplane_url` handed out before stays valid, as for a real restart.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.relaunch();
    }

    /// SIGTERM the server (a graceful stop), then start it again like [`Self::crash_and_restart`].
    pub fn stop_and_restart(&mut self) {
        self.stop();
        self.relaunch();
    }

    fn relaunch(&mut self) {
        let listen = self.url.trim_start_matches("http://").to_string();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let again = TestServer::launch_limited(
            &listen,
            &self.state_dir,
            &args,
            &env,
            Stdio::inherit(),
            self.soft_open_files,
        );
        assert_eq!(
            again.url, self.url,
            "the server came back on another address"
        );
        self.child = again.child_handover();
    }

    fn child_handover(mut self) -> Option<Child> {
        self.child.take()
    }

    /// SIGTERM the server and wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        if self._dir.is_some() {
            reap_leftovers(&self.state_dir);
        }
    }
}

/// The containers runc runs for the server at `state_dir`, warm sandboxes included
/// (`ls-<sandbox id>`).
///
/// `runc list` reads its root's directory, then each container's state: a container the
/// server deletes in between (a warm sandbox being replaced, a teardown) makes it fail with
/// "no such file or directory". That listing is asked again, a bounded number of times; any
/// other failure fails the test.
pub fn runc_containers(state_dir: &Path) -> Vec<String> {
    let root = state_dir.join("runtime/runc");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let out = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output()
            .unwrap_or_else(|e| panic!("running runc list: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|line| !line.is_empty())
                .map(str::to_string)
                .collect();
        }
        assert!(
            attempts < 20 && stderr.contains("no such file or directory"),
            "runc --root {} list -q failed ({}) after {attempts} attempts:\n{stderr}",
            root.display(),
            out.status
        );
    }
}

/// A failed test may leave sandboxes running: remove their containers and mounts so the
/// machine stays clean for the next test.
pub fn reap_leftovers(state_dir: &Path) {
    let root = state_dir.join("runtime/runc");
    if root.exists() {
        let runtime_root = state_dir.join("runtime").canonicalize().unwrap_or_default();
        for id in &runc_containers(state_dir) {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "-f", id])
                .status();
            // The (never mounted) directory runc was shown the sandbox in.
            let sandbox = id.strip_prefix("ls-").unwrap_or(id);
            let view = langsmith::runtime::view_dir(&runtime_root, sandbox);
            let _ = std::fs::remove_dir(view.join("rootfs"));
            let _ = std::fs::remove_dir(view);
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = state_dir.to_string_lossy().to_string();
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").args(["-l", m]).status();
    }
}
