//! The `Command` object: a running command started by `Sandbox.command` (streaming, stdin,
//! background work), plus the options map shared by `exec` and `command`.
//! Every command is started through [`Bridge::start_command`], so an interrupt kills it.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use super::bridge::{Bridge, ScriptResult, client_error, opt, user_error};
use crate::client::{Command, ExecEvent, ExecOptions, text_of};

/// A running command.
#[derive(Clone, Debug)]
pub struct CommandObj {
    pub command: Command,
    pub bridge: Arc<Bridge>,
}

impl CommandObj {
    /// Collect the remaining output: `#{stdout, stderr, exit_code}`.
    pub fn wait(&self) -> ScriptResult<Map> {
        let out = self
            .bridge
            .block_on(self.command.wait())?
            .map_err(|e| client_error(e, Some("execute")))?;
        Ok(output_map(out.stdout, out.stderr, out.exit_code))
    }

    /// The next event as `#{type: "stdout"|"stderr", data}` or `#{type: "exit", exit_code}`,
    /// `()` once the command has ended.
    fn next(&self) -> ScriptResult<Dynamic> {
        let mut map = Map::new();
        match self.bridge.block_on(self.command.next_event())? {
            None => return Ok(Dynamic::UNIT),
            Some(ExecEvent::Stdout(data)) => {
                map.insert("type".into(), "stdout".into());
                map.insert("data".into(), text_of(&data).into());
            }
            Some(ExecEvent::Stderr(data)) => {
                map.insert("type".into(), "stderr".into());
                map.insert("data".into(), text_of(&data).into());
            }
            Some(ExecEvent::Exit(code)) => {
                map.insert("type".into(), "exit".into());
                map.insert("exit_code".into(), (code as i64).into());
            }
            Some(ExecEvent::Error(e)) => return Err(client_error(e, Some("execute"))),
        }
        Ok(map.into())
    }
}

/// `#{stdout, stderr, exit_code}`.
pub fn output_map(stdout: String, stderr: String, exit_code: i32) -> Map {
    let mut map = Map::new();
    map.insert("stdout".into(), stdout.into());
    map.insert("stderr".into(), stderr.into());
    map.insert("exit_code".into(), (exit_code as i64).into());
    map
}

/// How a command is wired to this process (not part of the wire request).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalIo {
    /// Copy this process's piped stdin to the command until EOF (`forward_stdin: true`).
    pub forward_stdin: bool,
    /// Lend it this terminal: raw mode, keystrokes and window sizes (`terminal: true`).
    pub terminal: bool,
}

fn flag(opts: &Map, key: &str) -> ScriptResult<bool> {
    match opts.get(key) {
        None => Ok(false),
        Some(v) if v.is_unit() => Ok(false),
        Some(v) => v
            .as_bool()
            .map_err(|t| user_error(format!("exec option `{key}` must be a bool, not {t}"))),
    }
}

/// Read `#{shell, env, cwd, timeout, stdin, pty, forward_stdin, terminal}` (all optional).
/// Without `stdin`, `forward_stdin` or `terminal` the command starts with stdin at EOF, as
/// one-shot commands expect.
pub fn exec_options(opts: &Map) -> ScriptResult<(ExecOptions, LocalIo)> {
    let text =
        |key: &str| -> ScriptResult<Option<String>> {
            match opts.get(key) {
                None => Ok(None),
                Some(v) if v.is_unit() => Ok(None),
                Some(v) => v.clone().into_string().map(Some).map_err(|t| {
                    user_error(format!("exec option `{key}` must be a string, not {t}"))
                }),
            }
        };
    let env = match opts.get("env") {
        None => None,
        Some(v) if v.is_unit() => None,
        Some(v) => {
            let map = v
                .read_lock::<Map>()
                .ok_or_else(|| user_error("exec option `env` must be a map"))?;
            let pairs: BTreeMap<String, String> = map
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Some(pairs)
        }
    };
    let timeout = match opts.get("timeout") {
        None => None,
        Some(v) if v.is_unit() => None,
        Some(v) => Some(v.as_int().map_err(|t| {
            user_error(format!("exec option `timeout` must be an integer, not {t}"))
        })?),
    };
    let local = LocalIo {
        forward_stdin: flag(opts, "forward_stdin")?,
        terminal: flag(opts, "terminal")?,
    };
    let stdin = flag(opts, "stdin")? || local.forward_stdin || local.terminal;
    let pty = flag(opts, "pty")?;
    if local.terminal && (!pty || local.forward_stdin) {
        return Err(user_error(
            "exec option `terminal: true` needs `pty: true` and excludes `forward_stdin` \
             (the terminal is the command's input)",
        ));
    }
    let env = if pty { with_local_term(env) } else { env };
    let options = ExecOptions {
        shell: text("shell")?,
        env,
        cwd: text("cwd")?,
        timeout_seconds: timeout,
        close_stdin: !stdin,
        pty,
        ..Default::default()
    };
    Ok((options, local))
}

/// Programs under a PTY need `TERM` to draw: pass on the local one unless `env` sets it.
fn with_local_term(env: Option<BTreeMap<String, String>>) -> Option<BTreeMap<String, String>> {
    let Ok(term) = std::env::var("TERM") else {
        return env;
    };
    let mut env = env.unwrap_or_default();
    env.entry("TERM".into()).or_insert(term);
    Some(env)
}

pub fn register(engine: &mut Engine) {
    engine.register_fn("is_terminal_stdin", || {
        use std::io::IsTerminal;
        std::io::stdin().is_terminal()
    });
    engine
        .register_type_with_name::<CommandObj>("Command")
        .register_get("id", |c: &mut CommandObj| c.command.command_id.clone())
        .register_get("pid", |c: &mut CommandObj| {
            opt(c.command.pid.map(i64::from))
        })
        .register_fn("wait", |c: &mut CommandObj| c.wait())
        .register_fn("next", |c: &mut CommandObj| c.next())
        .register_fn("kill", |c: &mut CommandObj| c.command.kill())
        .register_fn("send", |c: &mut CommandObj, data: &str| {
            c.command.send_input(data)
        })
        .register_fn("close_stdin", |c: &mut CommandObj| c.command.close_stdin())
        .register_fn("resize", |c: &mut CommandObj, cols: i64, rows: i64| {
            let clamp = |n: i64| n.clamp(1, i64::from(u16::MAX)) as u16;
            c.command.resize(clamp(cols), clamp(rows))
        })
        .register_fn("to_string", |c: &mut CommandObj| {
            format!("Command({})", c.command.command_id)
        })
        .register_fn("to_debug", |c: &mut CommandObj| {
            format!("Command({})", c.command.command_id)
        });
}
