//! The local terminal of an interactive console or `exec -t`: raw mode behind a guard that
//! restores the previous mode on every way out (return, error, panic; SIGINT/SIGTERM/SIGHUP end
//! the session normally through [`TerminalEvents`] so the guard runs then too), the
//! window size, and [`LentTerminal`], the two together for a remote program.

use std::io::{self, IsTerminal};
use std::sync::Once;

use tokio::sync::mpsc;

use super::ConsoleInput;
use super::events::TerminalEvents;

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

/// The window size for a remote PTY of a command that is not interactive: only when one of the
/// standard streams is a terminal (without one, [`window_size`] may guess from `tput`).
pub fn std_window_size() -> Option<(u16, u16)> {
    let any = io::stdin().is_terminal() || io::stdout().is_terminal() || io::stderr().is_terminal();
    if any { window_size() } else { None }
}

/// This terminal lent to a remote program until dropped: its size, then keystrokes, window
/// changes and end requests (SIGINT/SIGTERM/SIGHUP as [`ConsoleInput::Stop`]) go to `inputs`,
/// and the terminal is raw. Dropping restores the mode first, then the signal handlers.
pub struct LentTerminal {
    _raw: RawMode,
    _events: TerminalEvents,
}

impl LentTerminal {
    pub fn start(inputs: mpsc::Sender<ConsoleInput>) -> io::Result<LentTerminal> {
        if let Some((cols, rows)) = window_size() {
            let _ = inputs.try_send(ConsoleInput::Resize { cols, rows });
        }
        // Handlers before raw mode: no signal may find the terminal raw with nobody to restore it.
        let events = TerminalEvents::start(inputs)?;
        let raw = RawMode::enable()?;
        Ok(LentTerminal {
            _raw: raw,
            _events: events,
        })
    }
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
