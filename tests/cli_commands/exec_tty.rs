//! `langsmith sandbox exec -t` in a real terminal (a tmux pane on a private tmux server): the
//! remote PTY takes the local window size at start and follows it when the window is resized.

use std::process::Command;
use std::time::Duration;

use super::exec::sandbox;
use crate::common::api::{Api, Exec};
use crate::common::process::{run_ok, wait_for};
use crate::common::server::API_KEY;

/// A tmux server of our own, so tests (ours and others') never share windows.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("langsmith-exec-tty-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        run_ok(Command::new("tmux").args(["-L", &self.socket]).args(args))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// `rows cols` of the PTY `tty` as seen inside the sandbox.
fn size_of(api: &Api, sb: &serde_json::Value, tty: &str) -> String {
    let Exec { stdout, .. } = api.exec(sb, &format!("stty -F {tty} size"));
    stdout.trim().to_string()
}

#[test]
fn the_remote_pty_follows_the_local_window_size() {
    let (server, api, sb) = sandbox("x");
    let tmux = Tmux::new();
    let cli = format!(
        "env LANGSMITH_ENDPOINT={} LANGSMITH_API_KEY={API_KEY} {} sandbox exec -t x -- \
         sh -c 'tty > /tmp/which; exec sleep 600'",
        server.url,
        env!("CARGO_BIN_EXE_langsmith"),
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "exec",
        "-x",
        "120",
        "-y",
        "40",
        &cli,
    ]);
    let tty = wait_for("the command's tty", Duration::from_secs(30), || {
        let which = api.exec(&sb, "cat /tmp/which 2>/dev/null");
        which
            .stdout
            .starts_with("/dev/pts/")
            .then(|| which.stdout.trim().to_string())
    });
    // The size is sent right after the command started, so it may land a moment later.
    wait_for("the initial window size", Duration::from_secs(30), || {
        (size_of(&api, &sb, &tty) == "40 120").then_some(())
    });
    tmux.run(&["resize-window", "-t", "exec", "-x", "100", "-y", "30"]);
    wait_for("the resized window size", Duration::from_secs(30), || {
        (size_of(&api, &sb, &tty) == "30 100").then_some(())
    });
}
