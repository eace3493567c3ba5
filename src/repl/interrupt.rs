//! Ctrl-C while the REPL evaluates a line: a SIGINT listener that exists only during the
//! evaluation and calls [`Bridge::interrupt`], which stops the blocked call with "interrupted"
//! and kills the remote commands the script started. At the prompt rustyline has the terminal
//! in raw mode, so Ctrl-C there is a key that clears the line, not a signal.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::script::Bridge;

/// Listens for SIGINT until dropped.
pub struct InterruptGuard {
    task: Option<JoinHandle<()>>,
}

impl InterruptGuard {
    /// Start listening. The signal is registered before this returns, so a Ctrl-C right after
    /// the evaluation starts is not lost (nor does it kill the process).
    pub fn arm(handle: &Handle, bridge: &Arc<Bridge>) -> Self {
        let bridge = bridge.clone();
        let _runtime = handle.enter();
        #[cfg(unix)]
        let task = {
            use tokio::signal::unix::{SignalKind, signal};
            signal(SignalKind::interrupt()).ok().map(|mut sigint| {
                handle.spawn(async move {
                    while sigint.recv().await.is_some() {
                        bridge.interrupt();
                    }
                })
            })
        };
        #[cfg(not(unix))]
        let task = Some(handle.spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                bridge.interrupt();
            }
        }));
        InterruptGuard { task }
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
