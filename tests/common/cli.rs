//! Running the `langsmith` binary, as a user would: one builder names the binary and the
//! environment every test gives it, whether the test waits for its output, drives the child
//! itself, or types the command into a terminal.
//!
//! ```ignore
//! let out = Cli::new(&server).args(&["sandbox", "list"]).run();
//! let child = Cli::new(&server).args(&["sandbox", "exec", "x", "--", "cat"]).spawn();
//! let line = Cli::new(&server).arg("shell").shell_line();
//! ```

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::server::{API_KEY, TestServer};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_langsmith");

/// A `langsmith` invocation being put together.
#[must_use]
pub struct Cli {
    args: Vec<OsString>,
    /// In order; `None` removes the variable.
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    dir: Option<PathBuf>,
}

/// What a finished run printed and how it exited.
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    /// The CLI with `LANGSMITH_ENDPOINT`/`LANGSMITH_API_KEY` pointing at `server` and no
    /// workspace from the caller's environment.
    pub fn new(server: &TestServer) -> Cli {
        Cli::bare()
            .env("LANGSMITH_ENDPOINT", &server.url)
            .env("LANGSMITH_API_KEY", API_KEY)
            .env_remove("LANGSMITH_WORKSPACE_ID")
    }

    /// The binary with the test's own environment: commands that need no server, the server
    /// itself and the agent.
    pub fn bare() -> Cli {
        Cli {
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            dir: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cli {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Cli {
        self.args.extend(args.iter().map(OsString::from));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cli {
        let value = Some(value.as_ref().to_owned());
        self.env.push((key.as_ref().to_owned(), value));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cli {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Bytes piped to the CLI's stdin, closed after them; without this stdin is empty.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cli {
        self.stdin = Some(input.into());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cli {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The invocation as a `std::process::Command`, its stdio left to the caller (for
    /// children that need more set up, such as the server and the agent).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args);
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Start the CLI with piped stdout and stderr; the caller reads and waits (see
    /// [`finish`]).
    pub fn spawn(self) -> Child {
        self.spawn_with(self.command())
    }

    /// [`Self::spawn`] for a process that runs until told to stop (a tunnel, a server in a
    /// sandbox): the kernel kills it when the spawning thread ends, so a failing test leaves
    /// nothing running.
    pub fn spawn_tied(self) -> Child {
        let mut cmd = self.command();
        super::process::die_with_parent(&mut cmd);
        self.spawn_with(cmd)
    }

    fn spawn_with(&self, mut cmd: Command) -> Child {
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running langsmith");
        if let Some(input) = &self.stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input).unwrap();
        }
        child
    }

    /// Run the CLI to completion.
    pub fn run(self) -> CliOutput {
        self.spawn().wait_with_output().unwrap().into()
    }

    /// The invocation as one line for a POSIX shell, environment included (`env -u K K=V …
    /// langsmith ARGS`), for tests that type it into a terminal. Its stdin is the terminal.
    pub fn shell_line(&self) -> String {
        assert!(self.stdin.is_none(), "a typed command reads the terminal");
        assert!(
            self.dir.is_none(),
            "a typed command runs in the shell's directory"
        );
        // The last word about a variable counts; `env` takes its `-u`s before assignments.
        let mut last: Vec<(&str, Option<&str>)> = Vec::new();
        for (key, value) in &self.env {
            let key = key.to_str().expect("a UTF-8 variable name");
            let value = value.as_ref().map(|v| v.to_str().expect("a UTF-8 value"));
            last.retain(|(earlier, _)| *earlier != key);
            last.push((key, value));
        }
        let mut words = vec!["env".to_string()];
        for (key, _) in last.iter().filter(|(_, value)| value.is_none()) {
            words.extend(["-u".to_string(), shell_quote(key)]);
        }
        for (key, value) in &last {
            if let Some(value) = value {
                words.push(shell_quote(&format!("{key}={value}")));
            }
        }
        words.push(shell_quote(BIN));
        words.extend(
            self.args
                .iter()
                .map(|a| shell_quote(a.to_str().expect("a UTF-8 argument"))),
        );
        words.join(" ")
    }
}

/// `word` as the shell reads it: as is when that is safe, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Wait for a child started by [`Cli::spawn`] to exit; its status and everything it wrote on
/// stderr (read first, so a chatty child cannot block on a full pipe).
pub fn finish(child: &mut Child) -> (std::process::ExitStatus, String) {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
    }
    (child.wait().unwrap(), stderr)
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
