//! The local terminal of an interactive console: raw mode behind a guard that restores the
//! previous mode on every way out (return, error, panic, and — through [`watch_signals`] —
//! SIGINT/SIGTERM/SIGHUP, which end the console normally instead of killing the process), the
//! window size and its changes (SIGWINCH), and a keyboard reader that can be stopped.
//!
//! The reader is a plain thread polling stdin together with a wake-up pipe: a thread blocked
//! in `read(0)` could not be stopped, and would swallow the next keystroke meant for whatever
//! reads the terminal after the console (the REPL).

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Once;

use tokio::sync::mpsc;

use crate::client::console::ConsoleInput;

/// Bytes read from the keyboard at a time (the GA CLI's read size).
const READ_SIZE: usize = 4096;

/// Whether stdin is a terminal a console can put in raw mode.
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// The local window's size as `(cols, rows)`, when there is a terminal to ask.
pub fn window_size() -> Option<(u16, u16)> {
    crossterm::terminal::size()
        .ok()
        .filter(|(cols, rows)| *cols > 0 && *rows > 0)
}

/// Raw mode for as long as this value lives.
pub struct RawMode(());

impl RawMode {
    pub fn enable() -> io::Result<RawMode> {
        restore_on_panic();
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// A panic restores the terminal before its message is printed (in raw mode the message
/// would be garbled, and with `panic = "abort"` no destructor would run at all).
fn restore_on_panic() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::terminal::disable_raw_mode();
            previous(info);
        }));
    });
}

/// Registers for window changes and termination requests now (before raw mode is entered, so
/// no SIGTERM can slip through in between) and returns the loop that feeds them to a console
/// until `inputs` closes. A registered handler replaces the signal's default action for the
/// rest of the process.
pub fn watch_signals(
    inputs: mpsc::Sender<ConsoleInput>,
) -> io::Result<impl std::future::Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut winch = signal(SignalKind::window_change())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            let input = tokio::select! {
                _ = winch.recv() => match window_size() {
                    Some((cols, rows)) => ConsoleInput::Resize { cols, rows },
                    None => continue,
                },
                _ = int.recv() => ConsoleInput::Stop,
                _ = term.recv() => ConsoleInput::Stop,
                _ = hup.recv() => ConsoleInput::Stop,
                () = inputs.closed() => return,
            };
            if inputs.send(input).await.is_err() {
                return;
            }
        }
    })
}

/// The keyboard reader thread; dropping it stops and joins the thread.
pub struct KeyboardReader {
    wake: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeyboardReader {
    /// Reads stdin on a thread into `inputs` as [`ConsoleInput::Keys`] until stdin ends, the
    /// receiver goes away, or the reader is dropped.
    pub fn start(inputs: mpsc::Sender<ConsoleInput>) -> io::Result<KeyboardReader> {
        let (wake_read, wake_write) = nix::unistd::pipe().map_err(io::Error::from)?;
        let thread = std::thread::Builder::new()
            .name("console-keyboard".into())
            .spawn(move || read_keys(wake_read, inputs))?;
        Ok(KeyboardReader {
            wake: Some(wake_write),
            thread: Some(thread),
        })
    }
}

impl Drop for KeyboardReader {
    fn drop(&mut self) {
        drop(self.wake.take()); // the read end sees EOF: the poll wakes up
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_keys(wake: OwnedFd, inputs: mpsc::Sender<ConsoleInput>) {
    let stdin = io::stdin();
    let mut buf = [0u8; READ_SIZE];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: stdin.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return; // stopped
        }
        if fds[0].revents == 0 {
            continue;
        }
        match nix::unistd::read(stdin.as_fd(), &mut buf) {
            Ok(0) => return, // end of input: the shell keeps running until it exits
            Ok(n) => {
                if inputs
                    .blocking_send(ConsoleInput::Keys(buf[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}
