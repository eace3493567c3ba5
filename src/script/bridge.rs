//! The bridge between the synchronous Rhai engine and the async client: scripts run on a plain
//! thread and every client call is driven with [`Handle::block_on`], raced against an interrupt.
//! The client is connected lazily on first use, so argument checks that come before the API-key
//! check in the LangSmith CLI still come first.
//!
//! Interrupts: [`Bridge::interrupt`] (what Ctrl-C calls, see [`Bridge::watch_sigint`]) kills
//! every remote command started through the bridge that still runs and makes the blocked call
//! fail with [`interrupted_error`], which ends the script: `try`/`catch` cannot take it, so a
//! script can never swallow the user's request to stop; it reads `interrupted`. The flag stays
//! set (every later call fails the same way) until [`Bridge::clear_interrupt`].

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, Map, Position};
use tokio::runtime::Handle;
use tokio::sync::{OnceCell, watch};

use crate::client::{Client, ClientError, Command, ConfigInputs, ExecOptions, Killer, Tunnel};

/// A tunnel a script opened: `None` once closed. Shared by the script's `Tunnel` object and,
/// weakly, the bridge, which closes what is still open when the script ends.
pub type TunnelSlot = Arc<tokio::sync::Mutex<Option<Tunnel>>>;

/// Shared by every binding object of one engine.
#[derive(Debug)]
pub struct Bridge {
    handle: Handle,
    inputs: ConfigInputs,
    client: OnceCell<Client>,
    /// Interrupts since the last clear; `0` = not interrupted.
    interrupt: watch::Sender<u32>,
    /// Commands started through this bridge whose session may still run. Locked around both
    /// starting a command and interrupting, so no command escapes an interrupt.
    commands: Mutex<Vec<Killer>>,
    /// Tunnels opened by scripts; a dropped `Tunnel` object closes its tunnel by itself.
    tunnels: Mutex<Vec<std::sync::Weak<tokio::sync::Mutex<Option<Tunnel>>>>>,
}

/// Result type of every binding.
pub type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// The error of a call cut short by [`Bridge::interrupt`]. Ctrl-C is not a script error:
/// like an internal bug it cannot be caught by `try`/`catch`, so a script can
/// never swallow the user's request to stop.
pub fn interrupted_error() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from("interrupted"), Position::NONE).into()
}

/// Stops listening for SIGINT when dropped (see [`Bridge::watch_sigint`]).
#[derive(Debug)]
pub struct SigintWatch(Option<tokio::task::JoinHandle<()>>);

impl Drop for SigintWatch {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl Bridge {
    /// A bridge over `handle`. It does not listen for Ctrl-C by itself: see [`Self::watch_sigint`].
    pub fn new(handle: Handle, inputs: ConfigInputs) -> Arc<Self> {
        Arc::new(Bridge {
            handle,
            inputs,
            client: OnceCell::new(),
            interrupt: watch::channel(0).0,
            commands: Mutex::new(Vec::new()),
            tunnels: Mutex::new(Vec::new()),
        })
    }

    /// Kill every still-running command started through this bridge (SIGKILL via the data
    /// plane's `kill`) and make the blocked call, and every later one, fail with
    /// [`interrupted_error`] until [`Self::clear_interrupt`]. Callable from any thread.
    pub fn interrupt(&self) {
        let commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        self.interrupt.send_modify(|n| *n = n.saturating_add(1));
        for killer in commands.iter() {
            killer.abort();
        }
    }

    /// Whether [`Self::interrupt`] was called since the last [`Self::clear_interrupt`]. Cheap
    /// enough for `Engine::on_progress`.
    pub fn interrupted(&self) -> bool {
        *self.interrupt.borrow() > 0
    }

    /// Forget an earlier interrupt (the REPL calls this before each evaluation).
    pub fn clear_interrupt(&self) {
        self.interrupt.send_replace(0);
    }

    /// Call [`Self::interrupt`] on every SIGINT until the returned guard is dropped. The
    /// handler is registered before this returns, so no early Ctrl-C is missed.
    pub fn watch_sigint(self: &Arc<Self>) -> SigintWatch {
        use tokio::signal::unix::{SignalKind, signal};
        let _context = self.handle.enter();
        let Ok(mut sigint) = signal(SignalKind::interrupt()) else {
            return SigintWatch(None);
        };
        let bridge = Arc::clone(self);
        SigintWatch(Some(self.handle.spawn(async move {
            while sigint.recv().await.is_some() {
                bridge.interrupt();
            }
        })))
    }

    /// Wait (at most `limit`, and only until the next interrupt: a second Ctrl-C means "now")
    /// until every command started through this bridge has ended, e.g. so the kills of an
    /// interrupt reach the sandbox before the process exits.
    pub fn settle(&self, limit: Duration) {
        let killers: Vec<Killer> = self
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut rx = self.interrupt.subscribe();
        let seen = *rx.borrow_and_update();
        self.handle.block_on(async move {
            let all = futures_util::future::join_all(killers.iter().map(Killer::finished));
            tokio::select! {
                _ = tokio::time::timeout(limit, all) => {}
                _ = rx.wait_for(|n| *n > seen) => {}
            }
        });
    }

    /// Run a future to completion from the script thread; an interrupt aborts it.
    pub fn block_on<F: Future>(&self, fut: F) -> ScriptResult<F::Output> {
        let mut rx = self.interrupt.subscribe();
        self.handle.block_on(async move {
            tokio::select! {
                biased;
                _ = rx.wait_for(|n| *n > 0) => Err(interrupted_error()),
                out = fut => Ok(out),
            }
        })
    }

    /// Run a future to completion from the script thread, deaf to interrupts: for a session
    /// that took Ctrl-C over itself (the console ends cleanly on it).
    pub fn block_on_uninterrupted<F: Future>(&self, fut: F) -> F::Output {
        self.handle.block_on(fut)
    }

    /// The endpoint and key as the user gave them (flags; the environment is read on resolve).
    pub fn inputs(&self) -> &ConfigInputs {
        &self.inputs
    }

    /// The client, connecting (and maybe starting the local backend) on first use.
    pub fn client(&self) -> ScriptResult<Client> {
        self.client_saying(true)
    }

    /// [`Self::client`], but a first connection to the local backend prints nothing (for
    /// `sandbox tunnel --stdio`, whose stderr ssh shows).
    pub fn client_silently(&self) -> ScriptResult<Client> {
        self.client_saying(false)
    }

    fn client_saying(&self, say_so: bool) -> ScriptResult<Client> {
        let client = self
            .block_on(self.client.get_or_try_init(|| async {
                match say_so {
                    true => Client::connect(&self.inputs).await,
                    false => Client::connect_silently(&self.inputs).await,
                }
            }))?
            .map_err(|e| client_error(e, None))?;
        Ok(client.clone())
    }

    /// A client for a lookup that must not disturb anything (completion): the one already
    /// connected, else one for a configured endpoint or an already running local backend —
    /// never starting one and printing nothing. `None` when there is none.
    pub async fn existing_client(&self) -> Option<Client> {
        if let Some(client) = self.client.get() {
            return Some(client.clone());
        }
        Client::connect_if_running(&self.inputs)
            .await
            .ok()
            .flatten()
    }

    /// Run `call` with the client; a failure becomes a catchable error with `context`.
    pub fn call<T, F, Fut>(&self, context: &str, call: F) -> ScriptResult<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let client = self.client()?;
        self.block_on(call(client))?
            .map_err(|e| client_error(e, Some(context)))
    }

    /// Start a remote command that [`Self::interrupt`] will kill; returns once it started.
    pub fn start_command(
        &self,
        dataplane: &str,
        command: &str,
        opts: &ExecOptions,
    ) -> ScriptResult<Command> {
        let client = self.client()?;
        let starting = {
            let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
            if self.interrupted() {
                return Err(interrupted_error());
            }
            commands.retain(|k| !k.is_finished());
            let _context = self.handle.enter();
            let starting = client.start_exec(dataplane, command, opts);
            commands.push(starting.killer());
            starting
        };
        self.block_on(starting.started())?
            .map_err(|e| client_error(e, Some("execute")))
    }

    /// Resolves at the next interrupt: for sessions that end cleanly on Ctrl-C (a tunnel)
    /// instead of failing; the caller clears the interrupt afterwards.
    pub async fn next_interrupt(&self) {
        let mut rx = self.interrupt.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// Remember a script's tunnel so [`Self::close_tunnels`] can close it.
    pub fn track_tunnel(&self, slot: &TunnelSlot) {
        let mut tunnels = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        tunnels.retain(|t| t.strong_count() > 0);
        tunnels.push(Arc::downgrade(slot));
    }

    /// Close every tunnel scripts left open (the end of a script, also after an error or
    /// Ctrl-C), waiting until each session said goodbye.
    pub fn close_tunnels(&self) {
        let open: Vec<TunnelSlot> =
            std::mem::take(&mut *self.tunnels.lock().unwrap_or_else(|e| e.into_inner()))
                .iter()
                .filter_map(std::sync::Weak::upgrade)
                .collect();
        self.handle.block_on(async move {
            for slot in open {
                if let Some(mut tunnel) = slot.lock().await.take() {
                    tunnel.close().await;
                }
            }
        });
    }

    /// Run `f` inside the runtime's context (for calls that spawn tasks).
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _context = self.handle.enter();
        f()
    }
}

/// A catchable Rhai error carrying `#{status, type, message, text}`: the HTTP status (or `()`),
/// the server's error type, its message, and the whole one-line text the CLI prints.
pub fn client_error(e: ClientError, context: Option<&str>) -> Box<EvalAltResult> {
    let e = match context {
        Some(c) if !c.is_empty() => e.context(c),
        _ => e,
    };
    let mut map = Map::new();
    map.insert(
        "status".into(),
        e.status()
            .map_or(Dynamic::UNIT, |s| Dynamic::from(s as i64)),
    );
    map.insert("type".into(), e.error_type().into());
    map.insert("message".into(), e.message().into());
    map.insert("text".into(), e.to_string().into());
    EvalAltResult::ErrorRuntime(map.into(), Position::NONE).into()
}

/// A plain catchable error with a message (argument problems and the like).
pub fn user_error(message: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), Position::NONE).into()
}

/// The one line a failed script shows the user: `text` of a client error map, a thrown
/// string as-is, anything else in Rhai's own words.
pub fn error_text(err: &EvalAltResult) -> String {
    match err.unwrap_inner() {
        EvalAltResult::ErrorRuntime(value, _) => {
            if let Some(map) = value.read_lock::<Map>()
                && let Some(text) = map.get("text").or_else(|| map.get("message"))
            {
                return text.to_string();
            }
            value.to_string()
        }
        EvalAltResult::ErrorTerminated(..) => "interrupted".into(),
        other => other.to_string(),
    }
}

/// `Some(v)` as its value, `None` as `()`.
pub fn opt<T: Into<Dynamic>>(v: Option<T>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Into::into)
}

#[cfg(test)]
mod tests;
