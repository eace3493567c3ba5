//! `console(name)` / `console(name, #{shell, forward_ssh_agent, env})`: an interactive shell in
//! a sandbox on this terminal (`langsmith sandbox console`).
//!
//! Order of checks: strict resolve, `SSH_AUTH_SOCK` (with `forward_ssh_agent`), then stdin
//! must be a terminal — all before the remote shell starts, so a console that cannot work
//! leaves nothing running in the sandbox. The session runs on the bridge's runtime but not
//! through its interruptible `block_on`: Ctrl-C handling of scripts would turn a SIGINT into
//! "interrupted" while a console ends cleanly on it (raw mode sends Ctrl-C to the remote shell
//! anyway).
//!
//! Ctrl-C belongs to the bridge until the console's signal handlers are in place, which is
//! before it dials: a Ctrl-C before that stops the script as usual ("interrupted"), one after
//! ends the console cleanly, even while it is still opening, and is never counted by the bridge.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use super::bridge::{Bridge, ScriptResult, user_error};

/// The message of the LangSmith CLI where a console cannot work at all.
#[cfg(not(unix))]
fn unsupported(name: &str) -> String {
    format!(
        "sandbox console is not supported on Windows; use SSH instead: langsmith sandbox ssh-setup {name}"
    )
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    let b = bridge.clone();
    engine.register_fn("console", move |name: &str| console(&b, name, Map::new()));
    let b = bridge.clone();
    engine.register_fn("console", move |name: &str, opts: Map| {
        console(&b, name, opts)
    });
}

/// `opts.shell` (string or `()`), `opts.forward_ssh_agent` (bool), `opts.env` (array of
/// `KEY` / `KEY=VALUE`, or a map).
struct Options {
    shell: Option<String>,
    forward_ssh_agent: bool,
    env: BTreeMap<String, String>,
}

fn options(opts: &Map) -> ScriptResult<Options> {
    let shell = match opts.get("shell") {
        Some(v) if v.is_unit() => None,
        Some(v) => Some(v.to_string()).filter(|s| !s.is_empty()),
        None => None,
    };
    let forward_ssh_agent = match opts.get("forward_ssh_agent") {
        Some(v) => v
            .as_bool()
            .map_err(|_| user_error("console: forward_ssh_agent must be true or false"))?,
        None => false,
    };
    let env = match opts.get("env") {
        None => BTreeMap::new(),
        Some(v) if v.is_unit() => BTreeMap::new(),
        Some(v) => env_option(v)?,
    };
    Ok(Options {
        shell,
        forward_ssh_agent,
        env,
    })
}

/// `--env KEY=VALUE` sets, bare `--env KEY` copies the local value (as the LangSmith CLI does).
fn env_option(value: &Dynamic) -> ScriptResult<BTreeMap<String, String>> {
    if let Some(map) = value.read_lock::<Map>() {
        return Ok(map
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect());
    }
    let items = value
        .read_lock::<rhai::Array>()
        .ok_or_else(|| user_error("console: env must be an array of \"KEY=VALUE\" or a map"))?;
    let mut env = BTreeMap::new();
    for item in items.iter() {
        let item = item.to_string();
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None => {
                let local = std::env::var(&item).map_err(|_| {
                    user_error(format!(
                        "--env {item}: {item} is not set here; pass --env {item}=VALUE"
                    ))
                })?;
                (item.clone(), local)
            }
        };
        if key.is_empty() {
            return Err(user_error(format!(
                "--env {item}: the variable name is empty"
            )));
        }
        env.insert(key, value);
    }
    Ok(env)
}

#[cfg(not(unix))]
fn console(_bridge: &Arc<Bridge>, name: &str, _opts: Map) -> ScriptResult<()> {
    Err(user_error(unsupported(name)))
}

#[cfg(unix)]
fn console(bridge: &Arc<Bridge>, name: &str, opts: Map) -> ScriptResult<()> {
    use crate::client::console::{ConsoleInput, ConsoleOptions, forwarded_env};
    use crate::term as terminal;
    use crate::term::TerminalEvents;

    let opts = options(&opts)?;
    let sandbox = super::sandbox::resolve_ready(bridge, name)?;
    let dataplane = sandbox.data.dataplane_url.clone().unwrap_or_default();
    let ssh_agent = match opts.forward_ssh_agent {
        false => None,
        true => match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
            Some(socket) => Some(std::path::PathBuf::from(socket)),
            None => {
                return Err(user_error(
                    "--forward-ssh-agent requires SSH_AUTH_SOCK to be set (is ssh-agent running?)",
                ));
            }
        },
    };
    if !terminal::stdin_is_terminal() {
        return Err(user_error(
            "stdin is not a terminal; console needs an interactive terminal \
             (from scripts and pipes use: langsmith sandbox exec NAME -- COMMAND)",
        ));
    }
    let mut env = forwarded_env();
    env.extend(opts.env);
    let options = ConsoleOptions {
        shell: opts.shell,
        env,
        ssh_agent,
    };
    let client = bridge.client()?;
    let (inputs, received) = tokio::sync::mpsc::channel(64);
    if let Some((cols, rows)) = terminal::window_size() {
        let _ = inputs.try_send(ConsoleInput::Resize { cols, rows }); // the first of 64 slots
    }
    let events = TerminalEvents::start(inputs)
        .map_err(|e| user_error(format!("watching the terminal: {e}")))?;
    if bridge.interrupted() {
        return Err(super::bridge::interrupted_error()); // Ctrl-C came before the handlers
    }
    let starting = bridge.enter(|| client.start_console(&dataplane, &options));
    // A panic in the session must not cross into the script.
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bridge.block_on_uninterrupted(session::run(starting, &events, received))
    }));
    drop(events);
    // Only a SIGINT sent before the handlers took over, seen by the bridge's listener late,
    // can have counted meanwhile: the console ran, so it does not make the script interrupted.
    bridge.clear_interrupt();
    match ended {
        Ok(result) => result.map_err(|e| super::bridge::client_error(e, None)),
        Err(_) => Err(user_error(
            "the console failed unexpectedly (see the message above)",
        )),
    }
}

#[cfg(unix)]
mod session {
    use tokio::sync::mpsc;

    use crate::client::console::{Console, ConsoleInput};
    use crate::client::{ClientError, Starting};
    use crate::term::{RawMode, TerminalEvents};

    /// Waits for the shell — or not, when `events` asks to stop first — then relays `inputs`
    /// with the terminal in raw mode; the guard restores the terminal on every way out.
    pub async fn run(
        starting: Starting,
        events: &TerminalEvents,
        inputs: mpsc::Receiver<ConsoleInput>,
    ) -> Result<(), ClientError> {
        let dial = starting.killer();
        let console = tokio::select! {
            opened = Console::open(starting) => opened?,
            () = events.stop_requested() => {
                // A shell already started dies with the dropped dial (`kill_on_disconnect`).
                dial.hang_up();
                return Ok(());
            }
        };
        let raw = RawMode::enable()
            .map_err(|e| ClientError::Config(format!("putting the terminal in raw mode: {e}")))?;
        let mut stdout = std::io::stdout();
        let ended = console.run(inputs, &mut stdout).await;
        drop(raw);
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_entries_set_or_copy_and_unset_copies_are_refused() {
        let array: rhai::Array = vec!["A=1".into(), "PATH".into(), "B=x=y".into()];
        let env = env_option(&Dynamic::from(array)).unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "x=y");
        assert_eq!(env["PATH"], std::env::var("PATH").unwrap());
        let unset: rhai::Array = vec!["LANGSMITH_SURELY_UNSET_VARIABLE".into()];
        let e = super::super::bridge::error_text(&env_option(&Dynamic::from(unset)).unwrap_err());
        assert!(e.contains("is not set here"), "{e}");
    }
}
