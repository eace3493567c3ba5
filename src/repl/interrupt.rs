//! Ctrl-C while the REPL evaluates a line: the bridge's own listener ([`Bridge::watch_sigint`])
//! turns SIGINT into [`Bridge::interrupt`] (the blocked call stops with "interrupted" and the
//! remote commands the script started are killed); this module only routes SIGINT to it for
//! the duration of an evaluation.
//!
//! Why routing is needed: rustyline 17 (built without its `signal-hook` feature) installs its
//! own SIGINT and SIGWINCH handler when the editor is created (`PosixTerminal::new`, when stdin
//! and stdout are terminals) and puts the previous ones back only when the editor is dropped.
//! At the prompt that is right — the terminal is raw, Ctrl-C is a key that clears the line —
//! but during an evaluation it would swallow Ctrl-C. So the listener's OS-level handler is
//! recorded once, before the editor exists, and swapped in around each evaluation.

use std::sync::Arc;

use crate::script::Bridge;
use crate::script::bridge::SigintWatch;

/// The REPL's SIGINT listener; [`SigintRoute::arm`] routes SIGINT to it.
pub struct SigintRoute {
    _watch: SigintWatch,
    #[cfg(unix)]
    action: libc::sigaction,
}

/// Routes SIGINT to the listener until dropped.
pub struct Armed {
    #[cfg(unix)]
    previous: libc::sigaction,
}

impl SigintRoute {
    /// Start the listener and record its handler. Call before the rustyline editor is created.
    pub fn new(bridge: &Arc<Bridge>) -> Self {
        let watch = bridge.watch_sigint();
        // SAFETY: querying the current action with a null new action changes nothing.
        #[cfg(unix)]
        let action = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current);
            current
        };
        SigintRoute {
            _watch: watch,
            #[cfg(unix)]
            action,
        }
    }

    /// Route SIGINT to the listener while the returned guard lives.
    pub fn arm(&self) -> Armed {
        // SAFETY: installs a handler that was obtained from `sigaction` itself and stays
        // valid for the life of the process (tokio never uninstalls its handler).
        #[cfg(unix)]
        let previous = unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGINT, &self.action, &mut previous);
            previous
        };
        Armed {
            #[cfg(unix)]
            previous,
        }
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
