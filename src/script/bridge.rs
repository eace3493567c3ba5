//! The bridge between the synchronous Rhai engine and the async client: scripts run on a plain
//! thread and every client call is driven with [`Handle::block_on`], raced against Ctrl-C.
//! The client is connected lazily on first use, so argument checks that come before the API-key
//! check in the GA CLI still come first.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use rhai::{Dynamic, EvalAltResult, Map, Position};
use tokio::runtime::Handle;
use tokio::sync::{OnceCell, watch};

use crate::client::{Client, ClientError, Command, ConfigInputs};

/// Shared by every binding object of one engine.
#[derive(Debug)]
pub struct Bridge {
    handle: Handle,
    inputs: ConfigInputs,
    client: OnceCell<Client>,
    /// Remote commands started through this bridge, killed by [`Bridge::interrupt`].
    running: std::sync::Mutex<Vec<Command>>,
}

/// Result type of every binding.
pub type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// Set to `true` by Ctrl-C; script evaluation and client calls stop when they see it.
fn interrupt_channel() -> &'static (watch::Sender<bool>, watch::Receiver<bool>) {
    static CHANNEL: OnceLock<(watch::Sender<bool>, watch::Receiver<bool>)> = OnceLock::new();
    CHANNEL.get_or_init(|| watch::channel(false))
}

/// Whether Ctrl-C was pressed since the last [`clear_interrupt`].
pub fn interrupted() -> bool {
    *interrupt_channel().1.borrow()
}

/// Forget an earlier Ctrl-C (the REPL calls this before each evaluation).
pub fn clear_interrupt() {
    interrupt_channel().0.send_replace(false);
}

/// The error that stops a script and cannot be caught by `try`/`catch`.
pub fn terminated() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from("interrupted"), Position::NONE).into()
}

impl Bridge {
    /// A bridge over `handle`; installs the Ctrl-C listener on that runtime.
    pub fn new(handle: Handle, inputs: ConfigInputs) -> Arc<Self> {
        static LISTENER: OnceLock<()> = OnceLock::new();
        LISTENER.get_or_init(|| {
            handle.spawn(async {
                while tokio::signal::ctrl_c().await.is_ok() {
                    interrupt_channel().0.send_replace(true);
                }
            });
        });
        Arc::new(Bridge {
            handle,
            inputs,
            client: OnceCell::new(),
            running: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Remember a started remote command so that [`Bridge::interrupt`] can kill it.
    pub fn track(&self, command: &Command) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.push(command.clone());
    }

    /// Ctrl-C: the blocked call returns the (uncatchable) error "interrupted", and every remote
    /// command started through this bridge is killed (a finished one ignores the kill).
    pub fn interrupt(&self) {
        interrupt_channel().0.send_replace(true);
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|e| e.into_inner()));
        for command in running {
            command.kill();
        }
    }

    /// Whether Ctrl-C was pressed since the last [`clear_interrupt`] (for `on_progress`).
    pub fn interrupted() -> bool {
        interrupted()
    }

    /// Run a future to completion from the script thread; Ctrl-C aborts it.
    pub fn block_on<F: Future>(&self, fut: F) -> ScriptResult<F::Output> {
        let mut rx = interrupt_channel().1.clone();
        self.handle.block_on(async move {
            tokio::select! {
                out = fut => Ok(out),
                _ = rx.wait_for(|stop| *stop) => Err(terminated()),
            }
        })
    }

    /// The client, connecting (and maybe starting the local backend) on first use.
    pub fn client(&self) -> ScriptResult<Client> {
        let client = self
            .block_on(
                self.client
                    .get_or_try_init(|| Client::connect(&self.inputs)),
            )?
            .map_err(|e| client_error(e, None))?;
        Ok(client.clone())
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
