//! Streaming with a callback per chunk: `sandbox.exec(cmd, |kind, data| …)`,
//! `sandbox.exec(cmd, opts, |kind, data| …)` and `command.each(|kind, data| …)`.
//!
//! The callback is a Rhai function pointer (closures capture by reference, so it can append to
//! the caller's variables) called on the script thread with `kind` = `"stdout"` or `"stderr"`
//! and the chunk as a string, in the order the chunks arrived. Returning `false` kills the
//! command (its exit still ends the call); an error thrown by the callback kills it too and
//! ends the call with that error. The call returns `#{stdout: "", stderr: "",
//! exit_code}`: output went to the callback, not into memory.

use rhai::{Dynamic, Engine, FnPtr, Map, NativeCallContext};

use super::bridge::{ScriptResult, client_error, user_error};
use super::command::{CommandObj, output_map};
use super::sandbox::SandboxObj;
use crate::client::{ExecEvent, text_of};

/// Feed every chunk of `command` to `callback` until it exits.
pub fn each(ctx: &NativeCallContext, command: &CommandObj, callback: &FnPtr) -> ScriptResult<Map> {
    let mut killed = false;
    loop {
        let event = command.bridge.block_on(command.command.next_event())?;
        let (kind, data) = match event {
            Some(ExecEvent::Stdout(data)) => ("stdout", text_of(&data)),
            Some(ExecEvent::Stderr(data)) => ("stderr", text_of(&data)),
            Some(ExecEvent::Exit(code)) => {
                return Ok(output_map(String::new(), String::new(), code));
            }
            Some(ExecEvent::Error(e)) => return Err(client_error(e, None)),
            None => {
                return Err(user_error(
                    "execute: the command's event stream ended early",
                ));
            }
        };
        if killed {
            continue; // drain what was in flight before the kill
        }
        let verdict: Dynamic =
            match callback.call_within_context(ctx, (Dynamic::from(kind), Dynamic::from(data))) {
                Ok(v) => v,
                Err(e) => {
                    // The script will not read the rest: nothing should keep running for it.
                    command.command.kill();
                    return Err(e);
                }
            };
        if verdict.as_bool() == Ok(false) {
            command.command.kill();
            killed = true;
        }
    }
}

pub fn register(engine: &mut Engine) {
    engine
        .register_fn(
            "each",
            |ctx: NativeCallContext, c: &mut CommandObj, callback: FnPtr| each(&ctx, c, &callback),
        )
        .register_fn(
            "exec",
            |ctx: NativeCallContext, s: &mut SandboxObj, cmd: &str, callback: FnPtr| {
                let command = s.spawn(cmd, &Map::new())?;
                each(&ctx, &command, &callback)
            },
        )
        .register_fn(
            "exec",
            |ctx: NativeCallContext, s: &mut SandboxObj, cmd: &str, opts: Map, callback: FnPtr| {
                let command = s.spawn(cmd, &opts)?;
                each(&ctx, &command, &callback)
            },
        );
}
