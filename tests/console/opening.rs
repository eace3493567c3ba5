//! Ctrl-C while a console is still being opened: the sandbox is frozen (`runc pause`) so the
//! dial cannot finish, the CLI gets SIGINT once it is dialing, then the sandbox thaws. The
//! console ends cleanly (exit 0, the terminal restored) without opening a shell — and no
//! interrupt left over from it turns a later exit status into 130.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{
    PROMPT, PROMPT_ARGS, assert_terminal_restored, console, run_console, sandbox, start_tmux,
};
use crate::common::cli::BIN;
use crate::common::process::{run_ok, wait_for};

/// A paused sandbox container, resumed when dropped (also when the test fails).
struct Paused {
    runc_root: PathBuf,
    id: String,
}

impl Paused {
    fn pause(runc_root: PathBuf, id: &str) -> Paused {
        let runc = |verb: &str| {
            run_ok(
                Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args([verb, id]),
            );
        };
        runc("pause");
        Paused {
            runc_root,
            id: id.to_string(),
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.runc_root)
            .args(["resume", &self.id])
            .status();
    }
}

/// Established TCP connections of process `pid` to `port` (IPv4, this network namespace).
fn connections_to(pid: i32, port: u16) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0; // the process is gone
    };
    let sockets: HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields[2].rsplit(':').next().unwrap();
            fields[3] == "01" // ESTABLISHED
                && u16::from_str_radix(remote_port, 16) == Ok(port)
                && sockets.contains(fields[9])
        })
        .count()
}

#[test]
fn ctrl_c_while_the_console_dials_ends_it_cleanly_without_a_shell() {
    let (server, api) = sandbox("console-dial");
    let id = api
        .call("GET", "/api/v2/sandboxes/boxes/console-dial", None)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let tmux = start_tmux(&[]);
    // The runtime names a sandbox's container `ls-<sandbox id>`.
    let container = format!("ls-{id}");
    let paused = Paused::pause(server.state_dir.join("runtime/runc"), &container);

    let dial = console(&server, &["console-dial"]).args(&PROMPT_ARGS);
    run_console(&tmux, "dial", dial);
    // Resolving the sandbox uses one connection; the console's socket is a second one,
    // whose handshake waits for the frozen sandbox.
    let cli = wait_for(
        "the CLI dialing the console",
        Duration::from_secs(90),
        || {
            tmux.shell_children().into_iter().find(|&pid| {
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe == Path::new(BIN))
                    && connections_to(pid, port) >= 2
            })
        },
    );
    // SAFETY: plain kill(2) of the CLI process this test started in its pane.
    assert_eq!(unsafe { libc::kill(cli, libc::SIGINT) }, 0);

    // Stopping needs no answer from the sandbox, so the console ends while it is still
    // frozen; resuming it only afterwards leaves no race with a shell starting.
    let exited = |s: &str| {
        s.match_indices("dial-exit=")
            .any(|(at, prefix)| s[at + prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    tmux.wait_for("the console's end", exited);
    drop(paused);
    assert_eq!(tmux.wait_for_number("dial-exit="), 0, "{}", tmux.screen());
    assert!(
        !tmux.screen().contains(PROMPT),
        "a shell was opened: {}",
        tmux.screen()
    );
    assert_terminal_restored(&tmux, "dial");
}
