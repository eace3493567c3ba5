//! Feeding a remote [`Command`]'s stdin from this process: copying a piped reader until EOF,
//! or relaying a terminal's keystrokes and window sizes (given as [`ConsoleInput`] events:
//! this layer knows nothing about terminals; the script layer reads the terminal).
//!
//! The wire carries stdin as JSON text, so bytes go through [`Utf8Input`]: sequences split
//! across reads are re-assembled, bytes that are not UTF-8 arrive as U+FFFD. Stdin has no
//! offsets in the protocol: input in flight when a connection drops may be lost.

use std::io::Read;

use super::exec::{Command, StdinItem};
use super::utf8_input::Utf8Input;

/// Size of one read from the local reader.
const READ_CHUNK: usize = 64 * 1024;
/// What a PTY's line discipline takes as end-of-file at the start of a line (Ctrl-D).
const PTY_EOF: &str = "\u{4}";

impl Command {
    /// Copy `reader` (piped input, never a terminal: a blocked read cannot be stopped and would
    /// take the next keystroke meant for whoever reads the terminal after us) into the
    /// command's stdin from a plain thread until EOF, then close stdin (under a PTY, which has
    /// no half-close, send Ctrl-D instead). The copy waits while the command does not read and
    /// stops when the command ends. A thread (not a runtime task) because a blocked read must
    /// never hold up the runtime's shutdown.
    pub fn forward_stdin<R: Read + Send + 'static>(&self, mut reader: R, pty: bool) {
        let stdin = self.stdin.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut decoder = Utf8Input::default();
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => 0,
                };
                let text = match n {
                    0 => decoder.finish(),
                    n => decoder.push(&buf[..n]),
                };
                if !text.is_empty() && stdin.blocking_send(StdinItem::Data(text)).is_err() {
                    return; // the command ended
                }
                if n == 0 {
                    let end = if pty {
                        StdinItem::Data(PTY_EOF.into())
                    } else {
                        StdinItem::Close
                    };
                    let _ = stdin.blocking_send(end);
                    return;
                }
            }
        });
    }

    /// Relay terminal input to the command (started with a PTY) until it ends: keystrokes
    /// become input, window sizes resize its PTY, [`ConsoleInput::Stop`] kills it — its exit
    /// still arrives as an event, except for a command that dies with its socket
    /// ([`super::ExecOptions::kill_on_disconnect`]): that one is hung up on, which needs no
    /// answer from the sandbox, and its events just end. Spawns a task: call within the
    /// runtime's context.
    #[cfg(unix)]
    pub fn relay_terminal(&self, inputs: tokio::sync::mpsc::Receiver<ConsoleInput>) {
        tokio::spawn(relay(self.clone(), inputs));
    }
}

#[cfg(unix)]
use super::console::ConsoleInput;

#[cfg(unix)]
async fn relay(command: Command, mut inputs: tokio::sync::mpsc::Receiver<ConsoleInput>) {
    let killer = command.killer();
    let mut keys = Utf8Input::default();
    loop {
        let input = tokio::select! {
            input = inputs.recv() => input,
            () = killer.finished() => return,
        };
        match input {
            Some(ConsoleInput::Keys(bytes)) => {
                let text = keys.push(&bytes);
                if !text.is_empty() {
                    command.send_input(text);
                }
            }
            Some(ConsoleInput::Resize { cols, rows }) => command.resize(cols, rows),
            Some(ConsoleInput::Stop) if command.kill_on_disconnect => command.hang_up(),
            Some(ConsoleInput::Stop) => command.kill(),
            // The terminal's input ended: the command keeps running until it exits.
            None => return,
        }
    }
}
