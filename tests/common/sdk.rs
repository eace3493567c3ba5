//! The official LangSmith Python SDK, pinned, in a virtualenv made on first use.

use std::io::{BufRead, BufReader, Lines, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;

use super::process::{die_with_parent, run_ok};
use super::server::{API_KEY, TestServer};

/// The SDK version the conformance scripts are written against.
pub const SDK_VERSION: &str = "0.14.17";

/// Path of the virtualenv's python, creating the virtualenv (and installing the SDK) once.
pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sdk-venv-{SDK_VERSION}"));
        let python = venv.join("bin/python");
        let marker = venv.join(".installed");
        if !marker.exists() {
            run_ok(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            run_ok(Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("langsmith=={SDK_VERSION}"),
            ]));
            std::fs::write(&marker, SDK_VERSION).unwrap();
        }
        python
    })
}

/// Run `tests/sdk/<script>` with the SDK pointed at `server`; `env` adds variables.
/// Panics with the script's output when it fails.
pub fn run_script(server: &TestServer, script: &str, env: &[(&str, &str)]) -> String {
    run_ok(&mut script_command(server, script, env))
}

fn script_command(server: &TestServer, script: &str, env: &[(&str, &str)]) -> Command {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let mut cmd = Command::new(python());
    cmd.arg(path)
        .env("LANGSMITH_ENDPOINT", &server.url)
        .env("LANGSMITH_API_KEY", API_KEY)
        // The scripts' helper modules must not leave bytecode in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("LANGCHAIN_ENDPOINT")
        .env_remove("LANGCHAIN_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A script running beside the test, for flows where the test acts on the host mid-script
/// (e.g. crashes the server): the two talk in lines over the script's stdout and stdin.
pub struct RunningScript {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Everything the script printed so far, for failure messages.
    transcript: String,
    stderr: Option<JoinHandle<String>>,
}

/// Start `tests/sdk/<script>` like [`run_script`], without waiting for it.
pub fn spawn_script(server: &TestServer, script: &str, env: &[(&str, &str)]) -> RunningScript {
    let mut cmd = script_command(server, script, env);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().expect("starting the SDK script");
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    RunningScript {
        stdin: child.stdin.take().unwrap(),
        lines: BufReader::new(child.stdout.take().unwrap()).lines(),
        child,
        transcript: String::new(),
        stderr: Some(stderr),
    }
}

impl RunningScript {
    /// Reads the script's output until a line starting with `prefix`, and returns that line.
    /// Fails the test with the script's output if it ends first.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        while let Some(Ok(line)) = self.lines.next() {
            self.transcript.push_str(&line);
            self.transcript.push('\n');
            if line.starts_with(prefix) {
                return line;
            }
        }
        let status = self.child.wait().unwrap();
        let stderr = self.stderr_text();
        panic!(
            "the script ended ({status}) before printing {prefix:?}:\n{}{stderr}",
            self.transcript
        );
    }

    /// Sends one line to the script's stdin.
    pub fn send_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("writing to the script's stdin");
        self.stdin.flush().unwrap();
    }

    /// Waits for the script to exit successfully and returns all it printed.
    pub fn finish(mut self) -> String {
        for line in self.lines.by_ref().map_while(Result::ok) {
            self.transcript.push_str(&line);
            self.transcript.push('\n');
        }
        let status = self.child.wait().unwrap();
        let stderr = self.stderr_text();
        assert!(
            status.success(),
            "the script failed ({status}):\n{}{stderr}",
            self.transcript
        );
        self.transcript
    }

    fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }
}
