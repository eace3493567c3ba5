//! Running the `langsmith` CLI against a test server, as a user would.

use std::process::{Command, Stdio};

use super::server::{API_KEY, TestServer};

pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for CliOutput {
    fn from(out: std::process::Output) -> CliOutput {
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl CliOutput {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?} / {:?}",
                self.stdout, self.stderr
            )
        })
    }
}

/// `langsmith ARGS…` with `LANGSMITH_ENDPOINT`/`LANGSMITH_API_KEY` pointing at `server`.
pub fn run(server: &TestServer, args: &[&str]) -> CliOutput {
    run_with_stdin(server, args, None)
}

/// Start `langsmith ARGS…` against `server` with piped stdout/stderr and the given stdin;
/// the caller reads and waits.
pub fn spawn(server: &TestServer, args: &[&str], stdin: Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_langsmith"))
        .args(args)
        .env("LANGSMITH_ENDPOINT", &server.url)
        .env("LANGSMITH_API_KEY", API_KEY)
        .env_remove("LANGSMITH_WORKSPACE_ID")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running langsmith")
}

/// Wait for a child started by [`spawn`] to exit; its status and everything it wrote on
/// stderr (read first, so a chatty child cannot block on a full pipe).
pub fn finish(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
    }
    (child.wait().unwrap(), stderr)
}

pub fn run_with_stdin(server: &TestServer, args: &[&str], stdin: Option<&[u8]>) -> CliOutput {
    run_with_env(server, args, stdin, &[])
}

/// [`run_with_stdin`] with extra environment variables for the CLI.
pub fn run_with_env(
    server: &TestServer,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> CliOutput {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_langsmith"));
    cmd.args(args)
        .envs(env.iter().copied())
        .env("LANGSMITH_ENDPOINT", &server.url)
        .env("LANGSMITH_API_KEY", API_KEY)
        .env_remove("LANGSMITH_WORKSPACE_ID")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running langsmith");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    out.into()
}
