//! Workspace secrets in scripts: `secret_list([include_hosts])`, `secret_set(key, value[,
//! hosts])`, `secret_delete(key)`, and `read_secret_value(prompt, from_stdin)`, which reads a
//! value without it ever being a command-line argument (`langsmith secrets set` uses it).

use std::io::{BufRead, IsTerminal, Read};
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine};

use super::bridge::{Bridge, ScriptResult, user_error};
use crate::api::secrets::SecretConfigInput;

fn list(b: &Bridge, include_hosts: bool) -> ScriptResult<Array> {
    let list = b.call("listing secrets", |c| async move {
        c.secrets(include_hosts).await
    })?;
    list.into_iter().map(rhai::serde::to_dynamic).collect()
}

fn set(
    b: &Bridge,
    key: &str,
    value: Option<String>,
    hosts: Option<Array>,
) -> ScriptResult<Dynamic> {
    let configs = hosts
        .map(|hosts| {
            rhai::serde::from_dynamic::<Vec<SecretConfigInput>>(&hosts.into()).map_err(|e| {
                user_error(format!(
                    "secret_set: hosts must be maps #{{host_pattern, header_name, \
                     header_value_template}}: {e}"
                ))
            })
        })
        .transpose()?;
    let key = key.to_string();
    let info = b.call("setting secret", |c| async move {
        c.set_secret(&key, value, configs).await
    })?;
    rhai::serde::to_dynamic(info)
}

/// The value from all of stdin (one trailing newline dropped), or typed on the terminal with
/// echo off after `prompt`.
fn read_value(prompt: &str, from_stdin: bool) -> ScriptResult<String> {
    let stdin = std::io::stdin();
    let mut value = String::new();
    if from_stdin {
        stdin
            .lock()
            .read_to_string(&mut value)
            .map_err(|e| user_error(format!("reading the value from stdin: {e}")))?;
    } else if stdin.is_terminal() {
        eprint!("{prompt}");
        value = read_without_echo(&stdin)?;
        eprintln!();
    } else {
        return Err(user_error(
            "no value: pipe it in with --value-stdin, or run on a terminal to be asked for it",
        ));
    }
    let value = value
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&value)
        .to_string();
    if value.is_empty() {
        return Err(user_error("the value is empty"));
    }
    Ok(value)
}

/// One line from the terminal on stdin, with echo off while it is typed.
#[cfg(unix)]
fn read_without_echo(stdin: &std::io::Stdin) -> ScriptResult<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let saved = tcgetattr(stdin).map_err(|e| user_error(format!("reading the terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(stdin, SetArg::TCSANOW, &quiet)
        .map_err(|e| user_error(format!("turning off the terminal's echo: {e}")))?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(stdin, SetArg::TCSANOW, &saved);
    read.map_err(|e| user_error(format!("reading the value: {e}")))?;
    Ok(line)
}

#[cfg(not(unix))]
fn read_without_echo(_stdin: &std::io::Stdin) -> ScriptResult<String> {
    Err(user_error(
        "cannot turn off echo on this terminal: pipe the value in with --value-stdin",
    ))
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    let b = bridge.clone();
    engine.register_fn("secret_list", move || list(&b, false));
    let b = bridge.clone();
    engine.register_fn("secret_list", move |include_hosts: bool| {
        list(&b, include_hosts)
    });
    let b = bridge.clone();
    engine.register_fn("secret_set", move |key: &str, value: &str| {
        set(&b, key, Some(value.to_string()), None)
    });
    let b = bridge.clone();
    engine.register_fn("secret_set", move |key: &str, value: &str, hosts: Array| {
        set(&b, key, Some(value.to_string()), Some(hosts))
    });
    let b = bridge.clone();
    engine.register_fn("secret_hosts", move |key: &str, hosts: Array| {
        set(&b, key, None, Some(hosts))
    });
    let b = bridge.clone();
    engine.register_fn("secret_delete", move |key: &str| -> ScriptResult<()> {
        let key = key.to_string();
        b.call(
            "deleting secret",
            |c| async move { c.delete_secret(&key).await },
        )
    });
    engine.register_fn("read_secret_value", read_value);
}
