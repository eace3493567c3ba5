//! `langsmith shell` in a real terminal: tmux runs the REPL in a pane, the test types into it
//! with `send-keys` and reads the screen with `capture-pane`, polling for the expected text
//! under a generous deadline.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::api::Api;
use crate::common::cli::Cli;
use crate::common::process::{run_ok, wait_for};
use crate::common::{TestServer, image};

/// A tmux server of its own (private socket) running one REPL.
struct Terminal {
    socket: String,
    _dir: tempfile::TempDir,
}

impl Terminal {
    /// Start `langsmith shell` against `server`, with its own data and config directories.
    fn shell(server: &TestServer, home: &Path) -> Terminal {
        Terminal::shell_with(Cli::new(server).env_remove("LANGSMITH_STATE_DIR"), home)
    }

    /// Start `langsmith shell` as `cli` configures it, with its own data and config
    /// directories.
    fn shell_with(cli: Cli, home: &Path) -> Terminal {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock").display().to_string();
        let shell = cli
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("TERM", "xterm")
            .args(&["shell"]);
        let command = format!("exec {}", shell.shell_line());
        run_ok(Command::new("tmux").args([
            "-S",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "repl",
            "-x",
            "160",
            "-y",
            "50",
            &command,
        ]));
        let term = Terminal { socket, _dir: dir };
        term.expect("langsmith>"); // capture-pane drops trailing blanks
        term
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }

    /// Type literal text (no Enter).
    fn type_text(&self, text: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "repl", "-l", text])
                .status
                .success()
        );
    }

    /// Press keys by tmux name: `Enter`, `Tab`, `C-c`, `C-d`.
    fn press(&self, key: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "repl", key])
                .status
                .success()
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "repl"]).stdout)
            .into_owned()
    }

    /// Wait until the screen satisfies `check`; returns the screen.
    fn wait_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(what, Duration::from_secs(60), || {
                last = self.screen();
                check(&last).then(|| last.clone())
            })
        }));
        found.unwrap_or_else(|_| panic!("timed out waiting for {what}; screen:\n{last}"))
    }

    fn expect(&self, text: &str) -> String {
        self.wait_screen(&format!("{text:?} on screen"), |s| s.contains(text))
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", "repl"]).status.success()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

#[test]
fn the_shell_completes_methods_and_sandbox_names_and_keeps_history() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("repl-snap", image::tiny(), 64 << 20);
    api.ready_sandbox("mybox", &snapshot, json!({}));
    let home = tempfile::tempdir().unwrap();
    let term = Terminal::shell(&server, home.path());

    // A sandbox name inside the string argument, fetched from the server on first need.
    term.type_text("let sb = sandbox(\"my");
    term.press("Tab");
    term.expect("let sb = sandbox(\"mybox\"");
    term.type_text(");");
    term.press("Enter");
    term.wait_screen("the prompt after the assignment", |s| {
        s.lines().filter(|l| l.starts_with("langsmith>")).count() >= 2
    });

    // A method of the variable's type (`sb` holds a Sandbox).
    term.type_text("sb.ex");
    term.press("Tab");
    term.expect("langsmith> sb.exec");
    // Right after `(`, the hint shows the method's signatures.
    term.type_text("(");
    term.expect("exec(string, map)");
    term.type_text("\"echo completed-$((20 + 22))\").stdout");
    term.press("Enter");
    term.expect("completed-42");

    // Ctrl-C at the prompt clears the line; Ctrl-D leaves.
    term.type_text("this line is dropped");
    term.press("C-c");
    term.expect("this line is dropped\nlangsmith>");
    term.type_text("40 + 2");
    term.press("Enter");
    let screen = term.expect("\n42\n");
    assert!(
        !screen.contains("Variable not found"),
        "the cleared line was evaluated:\n{screen}"
    );
    term.press("C-d");
    wait_for(
        "the shell to exit on Ctrl-D",
        Duration::from_secs(30),
        || (!term.alive()).then_some(()),
    );
    let history =
        std::fs::read_to_string(home.path().join("data/langsmith/history")).unwrap_or_default();
    assert!(history.contains("sb.exec(\"echo completed"), "{history}");
    assert!(!history.contains("this line is dropped"), "{history}");
}

/// Whether the sandbox still runs a process whose command line contains `marker`.
fn still_running(api: &Api, sandbox: &serde_json::Value, marker: &str) -> bool {
    api.exec(sandbox, "ps -o args").stdout.contains(marker)
}

#[test]
fn ctrl_c_cancels_a_running_exec_kills_it_and_returns_to_the_prompt() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("repl-snap", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("longbox", &snapshot, json!({}));
    let home = tempfile::tempdir().unwrap();
    let term = Terminal::shell(&server, home.path());

    term.type_text("let sb = sandbox(\"longbox\"); sb.exec(\"sleep 4242; echo never\")");
    term.press("Enter");
    wait_for("the remote sleep to start", Duration::from_secs(60), || {
        still_running(&api, &sb, "sleep 4242").then_some(())
    });
    term.press("C-c");
    term.expect("error: interrupted");
    wait_for(
        "the remote sleep to be killed",
        Duration::from_secs(60),
        || (!still_running(&api, &sb, "sleep 4242")).then_some(()),
    );

    // The shell lives on, with its variables, and the sandbox still answers.
    term.type_text("sb.exec(\"echo after-$((1 + 1))\").stdout");
    term.press("Enter");
    let screen = term.expect("after-2");
    assert!(
        !screen.contains("never\\n"),
        "the interrupted command's output appeared:\n{screen}"
    );
    assert!(term.alive());
}

/// With nothing configured and no local backend running, Tab offers nothing and leaves the
/// machine as it was: completion never starts the backend (only a script's call does).
#[test]
fn completion_never_starts_the_local_backend() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    // Neither a server nor a key: only the local backend could answer.
    let nothing_configured = Cli::bare()
        .env_remove("LANGSMITH_ENDPOINT")
        .env_remove("LANGSMITH_API_KEY")
        .env("LANGSMITH_STATE_DIR", &state);
    let term = Terminal::shell_with(nothing_configured, home.path());

    term.type_text("sandbox(\"my");
    term.press("Tab");
    term.press("C-c");
    // A fresh prompt: the line editor may drop keys typed before it took the terminal again.
    term.expect("sandbox(\"my\nlangsmith>");
    // Keys are read in order: once this answer shows, the Tab above has been handled.
    term.type_text("40 + 2");
    term.press("Enter");
    term.expect("\n42\n");
    let screen = term.screen();
    assert!(
        !screen.contains("local sandbox backend"),
        "completion announced a backend:\n{screen}"
    );
    assert!(
        !state.exists(),
        "completion touched the state directory (a backend was started): {:?}",
        std::fs::read_dir(&state).map(|d| d.count())
    );
}
