//! A private tmux server with one window: a real terminal for the console tests. Keys are
//! typed with `send-keys`, the screen is read with `capture-pane`, and every wait polls the
//! screen for the text it expects under a generous deadline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::process::{run_ok, wait_for};

/// How long a console may take to show what a test waits for (sandbox I/O, a busy machine).
const SCREEN_DEADLINE: Duration = Duration::from_secs(90);

pub struct Tmux {
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Tmux {
    /// A `cols`×`rows` window running `bash` with prompt `pane$ ` and `env` in its environment.
    pub fn start(cols: u16, rows: u16, env: &[(&str, &str)]) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let tmux = Tmux { dir, socket };
        let mut cmd = tmux.command();
        cmd.args(["-f", "/dev/null", "new-session", "-d", "-s", "console"])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .env("PS1", "pane$ ")
            .env("HOME", tmux.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("LANGSMITH_WORKSPACE_ID")
            .envs(env.iter().copied())
            .args(["bash", "--norc", "--noprofile"]);
        run_ok(&mut cmd);
        run_ok(tmux.command().args(["set-option", "-g", "status", "off"]));
        tmux.wait_for("the pane's prompt", |screen| screen.contains("pane$"));
        tmux
    }

    /// A scratch directory that lives as long as the tmux server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket);
        cmd
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        run_ok(
            self.command()
                .args(["send-keys", "-t", "console", "-l", "--"])
                .arg(line),
        );
        run_ok(self.command().args(["send-keys", "-t", "console", "Enter"]));
    }

    /// The whole pane, history included, wrapped lines joined.
    pub fn screen(&self) -> String {
        run_ok(
            self.command()
                .args(["capture-pane", "-p", "-J", "-S", "-", "-t", "console"]),
        )
    }

    /// Polls the screen until `check` accepts it; fails the test showing the screen.
    pub fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(what, SCREEN_DEADLINE, || {
                last = self.screen();
                check(&last).then(|| last.clone())
            })
        }));
        match found {
            Ok(screen) => screen,
            Err(_) => panic!("timed out waiting for {what}; the screen:\n{last}"),
        }
    }

    /// Waits for `{prefix}<number>` (as printed by `echo {prefix}$?`, whose typed form has no
    /// digit there) and returns the number.
    pub fn wait_for_number(&self, prefix: &str) -> i64 {
        let number = |screen: &str| {
            screen.match_indices(prefix).find_map(|(at, _)| {
                let rest = &screen[at + prefix.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
        };
        let screen = self.wait_for(&format!("{prefix}<number>"), |s| number(s).is_some());
        number(&screen).expect("checked by the wait")
    }

    /// Waits until `text` is on the screen at least `count` times.
    pub fn wait_for_count(&self, text: &str, count: usize) -> String {
        self.wait_for(&format!("{count}× {text:?}"), |s| {
            s.matches(text).count() >= count
        })
    }

    /// Resizes the window; returns the pane's new `(cols, rows)`.
    pub fn resize(&self, cols: u16, rows: u16) -> (u16, u16) {
        run_ok(self.command().args([
            "resize-window",
            "-t",
            "console",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]));
        self.pane_size()
    }

    /// The pane's `(cols, rows)`.
    pub fn pane_size(&self) -> (u16, u16) {
        let size = run_ok(self.command().args([
            "display-message",
            "-p",
            "-t",
            "console",
            "#{pane_width} #{pane_height}",
        ]));
        let mut parts = size.split_whitespace().map(|n| n.parse::<u16>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    }

    /// Pid of the process the pane's shell is running in the foreground (the CLI).
    pub fn foreground_child(&self) -> i32 {
        *self
            .shell_children()
            .first()
            .expect("the pane's shell runs a command")
    }

    /// Pids of the processes the pane's shell is running now.
    pub fn shell_children(&self) -> Vec<i32> {
        let shell =
            run_ok(
                self.command()
                    .args(["display-message", "-p", "-t", "console", "#{pane_pid}"]),
            );
        let shell = shell.trim();
        std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap()
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}
