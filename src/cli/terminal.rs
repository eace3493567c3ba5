//! The local terminal of an interactive console: raw mode behind a guard that restores the
//! previous mode on every way out (return, error, panic; SIGINT/SIGTERM/SIGHUP end the console
//! normally through [`super::terminal_events`] so the guard runs then too), and the window size.

use std::io::{self, IsTerminal};
use std::sync::Once;

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
