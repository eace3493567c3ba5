//! `exec(cmd, #{stream: true})` (what `langsmith sandbox exec` uses without a terminal to
//! lend): output goes live to this process's stdout and stderr as it arrives; a reader of
//! our stdout that went away (`exec … | head`) kills the command like SIGPIPE would; output
//! lost to the server's replay window is reported, never silently skipped.

use std::io::Write;

use rhai::Map;

use super::bridge::{ScriptResult, client_error, user_error};
use super::command::{CommandObj, output_map};
use crate::client::ExecEvent;

/// Copy `handle`'s output to stdout/stderr until it ends: `#{stdout: "", stderr: "", exit_code}`.
pub fn stream(handle: &CommandObj) -> ScriptResult<Map> {
    let bridge = &handle.bridge;
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    loop {
        let event = bridge.block_on(handle.command.next_event())?;
        match event {
            Some(ExecEvent::Stdout(s)) => {
                if !write_out(&mut stdout, &s) {
                    return reader_gone(handle);
                }
            }
            Some(ExecEvent::Stderr(s)) => {
                let _ = write_out(&mut stderr, &s);
            }
            Some(ExecEvent::Exit(code)) => {
                warn_if_lost(handle);
                return Ok(output_map(String::new(), String::new(), code));
            }
            Some(ExecEvent::Error(e)) => {
                warn_if_lost(handle);
                return Err(client_error(e, Some("execute")));
            }
            None => {
                return Err(user_error(
                    "execute: the command's event stream ended early",
                ));
            }
        }
    }
}

/// Say on stderr when output was lost to the server's bounded replay window (a reconnect
/// long after the drop), so a gap in the streamed output is never silent.
fn warn_if_lost(handle: &CommandObj) {
    let (out, err) = handle.command.lost_bytes();
    if out + err > 0 {
        eprintln!(
            "langsmith: {out} bytes of stdout and {err} of stderr were lost while reconnecting \
             (the sandbox no longer held them)"
        );
    }
}

/// Write and flush; `false` when the reader closed the pipe.
fn write_out(out: &mut impl Write, bytes: &[u8]) -> bool {
    let written = out.write_all(bytes).and_then(|()| out.flush());
    !matches!(written, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Whoever read our stdout is gone (`exec … | head`): kill the command, as a local pipeline
/// would by SIGPIPE, wait until the sandbox confirms, and report 128 + SIGPIPE.
fn reader_gone(handle: &CommandObj) -> ScriptResult<Map> {
    handle.command.kill();
    while let Some(event) = handle.bridge.block_on(handle.command.next_event())? {
        if matches!(event, ExecEvent::Exit(_) | ExecEvent::Error(_)) {
            break;
        }
    }
    Ok(output_map(
        String::new(),
        String::new(),
        128 + libc::SIGPIPE,
    ))
}
