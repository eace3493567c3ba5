//! The `Sandbox` object and the `sandbox_*` module functions.

use std::sync::Arc;

use rhai::{Array, Blob, Dynamic, Engine, Map};

use super::bridge::{Bridge, ScriptResult, opt, user_error};
use super::command::{CommandObj, LocalIo, exec_options};
use super::snapshot::from_map;
use crate::api::{CreateSandboxRequest, Sandbox, UpdateSandboxRequest, status};
use crate::client::ExecOptions;
use crate::term;
use crate::text::go_quote;

/// Default `--timeout` of sandbox waits, in seconds.
pub const DEFAULT_WAIT_SECS: i64 = 120;

/// A sandbox as last read from the API, plus the bridge to act on it.
#[derive(Clone, Debug)]
pub struct SandboxObj {
    pub data: Sandbox,
    pub bridge: Arc<Bridge>,
}

impl SandboxObj {
    fn new(bridge: &Arc<Bridge>, data: Sandbox) -> Self {
        SandboxObj {
            data,
            bridge: bridge.clone(),
        }
    }

    pub(super) fn dataplane(&self) -> ScriptResult<String> {
        match self.data.dataplane_url.as_deref() {
            Some(url) if !url.is_empty() => Ok(url.to_string()),
            _ => Err(user_error(format!(
                "sandbox {} has no dataplane URL",
                go_quote(&self.data.name)
            ))),
        }
    }

    /// Start a command; the caller decides how to consume it (`terminal` is for `exec` only).
    pub fn spawn(&self, command: &str, opts: &Map) -> ScriptResult<CommandObj> {
        let (options, local) = exec_options(opts)?;
        if local.terminal {
            return Err(user_error(
                "exec option `terminal: true` works with exec(cmd, opts) only, \
                 not with command() or a callback",
            ));
        }
        self.start(command, &options, local)
    }

    /// Start a command wired to this process: with `forward_stdin` our piped stdin is copied
    /// to it; a `pty` that is not lent the terminal takes the local window's size if any.
    pub(super) fn start(
        &self,
        command: &str,
        options: &ExecOptions,
        local: LocalIo,
    ) -> ScriptResult<CommandObj> {
        if local.forward_stdin && term::stdin_is_terminal() {
            // A read of a terminal cannot be stopped: it would take keystrokes meant for the
            // shell or REPL after the command.
            return Err(user_error(
                "exec option `forward_stdin: true` copies piped input, but stdin is a terminal; \
                 for interactive input use `pty: true, terminal: true` (langsmith sandbox exec \
                 -t) or langsmith sandbox console",
            ));
        }
        let dp = self.dataplane()?;
        let cmd = self.bridge.start_command(&dp, command, options)?;
        if local.forward_stdin {
            cmd.forward_stdin(std::io::stdin(), options.pty);
        }
        if options.pty
            && !local.terminal
            && let Some((cols, rows)) = term::std_window_size()
        {
            cmd.resize(cols, rows);
        }
        Ok(CommandObj {
            command: cmd,
            bridge: self.bridge.clone(),
        })
    }

    /// Run to completion. With `stream: true` output goes live to this process's stdout and
    /// stderr and the map's `stdout`/`stderr` stay empty; `terminal: true` lends it this
    /// terminal (see `exec_terminal.rs`).
    fn exec(&self, command: &str, opts: Map) -> ScriptResult<Map> {
        let stream = opts
            .get("stream")
            .is_some_and(|v| v.as_bool().unwrap_or(false));
        let (mut options, local) = exec_options(&opts)?;
        // Output only goes to this process's stdout and stderr: take it byte for byte.
        options.raw_output = stream || local.terminal;
        if local.terminal {
            return super::exec_terminal::exec(self, command, &options, local);
        }
        let handle = self.start(command, &options, local)?;
        if !stream {
            return handle.wait();
        }
        super::exec_stream::stream(&handle)
    }

    /// The contents of a file in the sandbox.
    pub fn read_file(&self, path: &str) -> ScriptResult<Blob> {
        read(self, path)
    }

    /// Create or replace a file in the sandbox.
    pub fn write_file(&self, path: &str, data: Vec<u8>) -> ScriptResult<()> {
        write(self, path, data)
    }

    fn wait(&mut self, timeout: i64) -> ScriptResult<SandboxObj> {
        let (name, secs) = (self.data.name.clone(), timeout.max(0) as u64);
        self.bridge
            .call("", |c| async move { c.wait_sandbox(&name, secs).await })?;
        self.refresh()
    }

    fn refresh(&mut self) -> ScriptResult<SandboxObj> {
        let name = self.data.name.clone();
        self.data =
            self.bridge.call(
                "getting sandbox",
                |c| async move { c.get_sandbox(&name).await },
            )?;
        Ok(self.clone())
    }
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    register_properties(engine);
    register_methods(engine);
    super::sandbox_fns::register(engine, bridge);
}

/// The `Sandbox` type and its read-only properties.
fn register_properties(engine: &mut Engine) {
    engine
        .register_type_with_name::<SandboxObj>("Sandbox")
        .register_get("id", |s: &mut SandboxObj| s.data.id.clone())
        .register_get("name", |s: &mut SandboxObj| s.data.name.clone())
        .register_get("status", |s: &mut SandboxObj| s.data.status.clone())
        .register_get("status_message", |s: &mut SandboxObj| {
            opt(s.data.status_message.clone())
        })
        .register_get("dataplane_url", |s: &mut SandboxObj| {
            opt(s.data.dataplane_url.clone())
        })
        .register_get("snapshot_id", |s: &mut SandboxObj| {
            opt(s.data.snapshot_id.clone())
        })
        .register_get("vcpus", |s: &mut SandboxObj| opt(s.data.vcpus))
        .register_get("mem_bytes", |s: &mut SandboxObj| opt(s.data.mem_bytes))
        .register_get("fs_capacity_bytes", |s: &mut SandboxObj| {
            opt(s.data.fs_capacity_bytes)
        })
        .register_get("proxy_config", |s: &mut SandboxObj| {
            // Plain JSON from the API: it always converts.
            s.data
                .proxy_config
                .as_ref()
                .and_then(|v| rhai::serde::to_dynamic(v).ok())
                .unwrap_or(Dynamic::UNIT)
        })
        .register_get("created_at", |s: &mut SandboxObj| s.data.created_at.clone())
        .register_get("updated_at", |s: &mut SandboxObj| s.data.updated_at.clone());
}

/// The `Sandbox` methods: commands, files, lifecycle.
fn register_methods(engine: &mut Engine) {
    engine
        .register_fn("exec", |s: &mut SandboxObj, cmd: &str| {
            s.exec(cmd, Map::new())
        })
        .register_fn("exec", |s: &mut SandboxObj, cmd: &str, opts: Map| {
            s.exec(cmd, opts)
        })
        .register_fn("command", |s: &mut SandboxObj, cmd: &str| {
            s.spawn(cmd, &Map::new())
        })
        .register_fn("command", |s: &mut SandboxObj, cmd: &str, opts: Map| {
            s.spawn(cmd, &opts)
        })
        .register_fn(
            "read",
            |s: &mut SandboxObj, path: &str| -> ScriptResult<String> {
                let bytes = read(s, path)?;
                String::from_utf8(bytes)
                    .map_err(|_| user_error(format!("{path} is not UTF-8 text; use read_bytes")))
            },
        )
        .register_fn("read_bytes", |s: &mut SandboxObj, path: &str| read(s, path))
        .register_fn("write", |s: &mut SandboxObj, path: &str, data: &str| {
            write(s, path, data.as_bytes().to_vec())
        })
        .register_fn("write", |s: &mut SandboxObj, path: &str, data: Blob| {
            write(s, path, data)
        })
        .register_fn("start", |s: &mut SandboxObj| -> ScriptResult<SandboxObj> {
            let name = s.data.name.clone();
            s.bridge.call("starting sandbox", |c| async move {
                c.start_sandbox(&name).await
            })?;
            s.refresh()
        })
        .register_fn("stop", |s: &mut SandboxObj| -> ScriptResult<()> {
            let name = s.data.name.clone();
            s.bridge.call("stopping sandbox", |c| async move {
                c.stop_sandbox(&name).await
            })
        })
        .register_fn("delete", |s: &mut SandboxObj| -> ScriptResult<()> {
            let name = s.data.name.clone();
            s.bridge.call("deleting sandbox", |c| async move {
                c.delete_sandbox(&name).await
            })
        })
        .register_fn("refresh", |s: &mut SandboxObj| s.refresh())
        .register_fn("wait", |s: &mut SandboxObj| s.wait(DEFAULT_WAIT_SECS))
        .register_fn("wait", |s: &mut SandboxObj, timeout: i64| s.wait(timeout))
        .register_fn("to_map", |s: &mut SandboxObj| {
            rhai::serde::to_dynamic(&s.data)
        })
        .register_fn("to_string", |s: &mut SandboxObj| {
            format!("Sandbox({})", s.data.name)
        })
        .register_fn("to_debug", |s: &mut SandboxObj| {
            format!("Sandbox({})", s.data.name)
        });
}

fn read(s: &SandboxObj, path: &str) -> ScriptResult<Blob> {
    let (dp, path) = (s.dataplane()?, path.to_string());
    s.bridge.call(
        "reading file",
        |c| async move { c.download(&dp, &path).await },
    )
}

fn write(s: &SandboxObj, path: &str, data: Vec<u8>) -> ScriptResult<()> {
    let (dp, path) = (s.dataplane()?, path.to_string());
    s.bridge.call("writing file", |c| async move {
        c.upload(&dp, &path, data).await
    })
}

/// Strict resolve: the sandbox must be `ready` and have a dataplane URL.
pub fn resolve_ready(bridge: &Arc<Bridge>, name: &str) -> ScriptResult<SandboxObj> {
    let owned = name.to_string();
    let data = bridge.call(
        "getting sandbox",
        |c| async move { c.get_sandbox(&owned).await },
    )?;
    if data.status != status::READY {
        return Err(user_error(format!(
            "sandbox {} is not ready (status: {})",
            go_quote(name),
            data.status
        )));
    }
    let sandbox = SandboxObj::new(bridge, data);
    sandbox.dataplane()?;
    Ok(sandbox)
}

/// Helpers for the module functions in `sandbox_fns.rs`.
pub(super) fn wrap(bridge: &Arc<Bridge>, data: Sandbox) -> SandboxObj {
    SandboxObj::new(bridge, data)
}

pub(super) fn create_request(opts: Map) -> ScriptResult<CreateSandboxRequest> {
    from_map("sandbox_create", opts)
}

pub(super) fn update_request(opts: Map) -> ScriptResult<UpdateSandboxRequest> {
    from_map("sandbox_update", opts)
}

pub(super) fn wrap_all(bridge: &Arc<Bridge>, list: Vec<Sandbox>) -> Array {
    list.into_iter()
        .map(|s| Dynamic::from(wrap(bridge, s)))
        .collect()
}
