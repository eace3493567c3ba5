//! The local terminal, for whoever lends it to a remote program (an interactive console,
//! `exec -t`): raw mode behind a guard, the window size, and the events a running session
//! reads from it (keystrokes, window changes, requests to end) as [`ConsoleInput`].
//!
//! A leaf: it knows nothing about sandboxes or the client that relays these events.
//!
//! * `terminal` — raw mode, window size, [`LentTerminal`] (both together for a session).
//! * `events` — [`TerminalEvents`]: the thread turning stdin and signals into inputs.

#[cfg(unix)]
mod events;
#[cfg(unix)]
mod terminal;

#[cfg(unix)]
pub use events::TerminalEvents;
#[cfg(unix)]
pub use terminal::{LentTerminal, RawMode, std_window_size, stdin_is_terminal, window_size};

/// What the local side feeds a running console.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleInput {
    /// Bytes read from the keyboard, in any split (UTF-8 sequences may straddle reads).
    Keys(Vec<u8>),
    /// The local window's size.
    Resize { cols: u16, rows: u16 },
    /// End the console now (the CLI got SIGINT/SIGTERM/SIGHUP); a clean end.
    Stop,
}
