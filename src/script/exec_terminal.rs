//! `exec(cmd, #{pty: true, terminal: true})` (what `langsmith sandbox exec -t` uses when stdin
//! is a terminal): the command runs on this terminal like over `ssh -t` — raw mode, every
//! keystroke (Ctrl-C and Ctrl-D included) goes to the remote PTY, its window follows ours —
//! and the call returns its exit code. SIGINT/SIGTERM/SIGHUP from outside kill the command.
//! The terminal is restored on every way out, before an error is reported.

use std::io::Write;

use rhai::Map;
use tokio::sync::mpsc;

use super::bridge::{ScriptResult, client_error, user_error};
use super::command::{LocalIo, output_map};
use super::sandbox::SandboxObj;
use crate::client::{ExecEvent, ExecOptions};
use crate::term::{LentTerminal, stdin_is_terminal};

/// Terminal events buffered before the thread reading the terminal waits.
const INPUT_BUFFER: usize = 64;

pub fn exec(
    sandbox: &SandboxObj,
    command: &str,
    options: &ExecOptions,
    local: LocalIo,
) -> ScriptResult<Map> {
    if !stdin_is_terminal() {
        return Err(user_error(
            "exec option `terminal: true` needs stdin to be a terminal; \
             use `forward_stdin: true` for piped input",
        ));
    }
    let handle = sandbox.start(command, options, local)?;
    let (inputs, received) = mpsc::channel(INPUT_BUFFER);
    let lent = match LentTerminal::start(inputs) {
        Ok(lent) => lent,
        Err(e) => {
            handle.command.kill();
            return Err(user_error(format!("taking over the terminal: {e}")));
        }
    };
    let bridge = &handle.bridge;
    bridge.enter(|| handle.command.relay_terminal(received));
    let mut stdout = std::io::stdout();
    let ended = loop {
        let event = match bridge.block_on(handle.command.next_event()) {
            Ok(event) => event,
            Err(interrupted) => break Err(interrupted),
        };
        match event {
            // Under a PTY everything is on stdout; a stray stderr chunk goes the same way so
            // the screen keeps its order.
            Some(ExecEvent::Stdout(s) | ExecEvent::Stderr(s)) => {
                let _ = stdout.write_all(&s).and_then(|()| stdout.flush());
            }
            Some(ExecEvent::Exit(code)) => {
                break Ok(output_map(String::new(), String::new(), code));
            }
            Some(ExecEvent::Error(e)) => break Err(client_error(e, Some("execute"))),
            None => {
                break Err(user_error(
                    "execute: the command's event stream ended early",
                ));
            }
        }
    };
    drop(lent);
    ended
}
