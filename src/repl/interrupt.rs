//! Ctrl-C while the REPL evaluates a line: SIGINT is routed to a listener that calls
//! [`Bridge::interrupt`] (the blocked call stops with "interrupted" and the remote commands the
//! script started are killed) only for the duration of the evaluation.
//!
//! rustyline owns SIGINT for as long as its editor lives (it installs its own handler, and at
//! the prompt the terminal is in raw mode, so Ctrl-C there is a key that clears the line). So
//! the listener's OS-level handler is recorded once, before the editor exists, and swapped in
//! around each evaluation, then rustyline's is put back.

use std::sync::Arc;

use tokio::runtime::Handle;

use crate::script::Bridge;

/// The SIGINT listener of the REPL; [`Interrupts::arm`] routes SIGINT to it.
pub struct Interrupts {
    #[cfg(unix)]
    action: libc::sigaction,
    task: tokio::task::JoinHandle<()>,
}

/// Routes SIGINT to the listener until dropped.
pub struct Armed {
    #[cfg(unix)]
    previous: libc::sigaction,
}

impl Interrupts {
    /// Start the listener. Call before the rustyline editor is created.
    pub fn new(handle: &Handle, bridge: &Arc<Bridge>) -> std::io::Result<Self> {
        let bridge = bridge.clone();
        let _runtime = handle.enter();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            // Registering installs tokio's process-wide handler (if not already there).
            let mut sigint = signal(SignalKind::interrupt())?;
            // SAFETY: querying the current action with a null new action changes nothing.
            let action = unsafe {
                let mut current: libc::sigaction = std::mem::zeroed();
                libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current);
                current
            };
            let task = handle.spawn(async move {
                while sigint.recv().await.is_some() {
                    bridge.interrupt();
                }
            });
            Ok(Interrupts { action, task })
        }
        #[cfg(not(unix))]
        {
            let task = handle.spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    bridge.interrupt();
                }
            });
            Ok(Interrupts { task })
        }
    }

    /// Route SIGINT to the listener while the returned guard lives.
    pub fn arm(&self) -> Armed {
        #[cfg(unix)]
        {
            // SAFETY: installs a handler that was obtained from `sigaction` itself and stays
            // valid for the life of the process (tokio never uninstalls its handler).
            let previous = unsafe {
                let mut previous: libc::sigaction = std::mem::zeroed();
                libc::sigaction(libc::SIGINT, &self.action, &mut previous);
                previous
            };
            Armed { previous }
        }
        #[cfg(not(unix))]
        Armed {}
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        // SAFETY: puts back the action that was in place before `arm`.
        #[cfg(unix)]
        unsafe {
            libc::sigaction(libc::SIGINT, &self.previous, std::ptr::null_mut());
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}
