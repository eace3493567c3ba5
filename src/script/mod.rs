//! The script layer: one Rhai engine per process with the `Snapshot`, `Sandbox` and `Command`
//! bindings, the async bridge, and the built-in scripts behind every `sandbox` subcommand.
//!
//! Scripts run on a plain thread (never a tokio worker); client calls block on the runtime
//! through [`bridge::Bridge`]. Ctrl-C kills the script's remote commands and stops it.
//! A script's value is printed by the CLI's output layer (JSON, or tables with
//! `--format pretty`); scripts never format output themselves.
//!
//! # Script API
//!
//! Every command-line subcommand gets its parsed arguments as the constant map `args`
//! (flag names in snake_case, e.g. `args.snapshot_id`). `langsmith run FILE.rhai A B` gets
//! `args.argv == ["A", "B"]`.
//!
//! **Sandboxes** — `sandbox_create(#{name, snapshot_id, vcpus, mem_bytes, fs_capacity_bytes,
//! proxy_config, wait_for_ready, timeout, …})`, `sandbox_get(name)`, `sandbox_resolve(name)`
//! (must be ready, with a dataplane URL), `sandbox_list()`, `sandbox_update(name, #{vcpus,
//! mem_bytes, fs_capacity_bytes, proxy_config})`, `sandbox_delete(name)`, `sandbox_start(name)`,
//! `sandbox_stop(name)`, `sandbox_wait(name, timeout_secs)`.
//! A `Sandbox` has `id name status status_message dataplane_url snapshot_id vcpus mem_bytes
//! fs_capacity_bytes created_at updated_at` and
//! `exec(cmd)` / `exec(cmd, opts)` → `#{stdout, stderr, exit_code}` and `command(cmd[, opts])`
//! → `Command`, where `opts` is `#{shell, env, cwd, timeout, stream, stdin, forward_stdin, pty}`
//! (all optional): `shell` (default `/bin/bash`), `env` (a map), `cwd`, `timeout` (seconds,
//! `0` = none, default 60; on expiry a catchable error of type `CommandTimeout`);
//! `stream: true` (exec only) prints output live instead of collecting it; `stdin: true` keeps
//! stdin open for `send` (otherwise the command sees EOF); `forward_stdin: true` copies this
//! process's stdin to the command until EOF, then closes it (invalid UTF-8 becomes U+FFFD);
//! `pty: true` runs under a pseudo-terminal (output all on stdout; sized like, and following,
//! the local terminal if there is one; the local `TERM` is passed on unless `env` sets it; a
//! forwarded stdin ends with Ctrl-D instead of a close).
//! `exit_code` is 128 + signal number when a signal killed the command (`kill -9` → 137).
//! `read(path)` → string, `read_bytes(path)` → blob, `write(path, string|blob)`,
//! `start()`, `stop()`, `delete()`, `refresh()`, `wait([timeout_secs])`, `to_map()`.
//!
//! **Console** — `console(name)` / `console(name, #{shell, forward_ssh_agent, env})`: an
//! interactive shell in the sandbox on this terminal until it exits (`env` is an array of
//! `"KEY=VALUE"` / `"KEY"`, or a map); fails with `stdin is not a terminal` without one.
//!
//! **Snapshots** — `snapshot_build(#{name, docker_image, fs_capacity_bytes, registry_url,
//! registry_username, registry_password})`, `snapshot_capture(sandbox_name, #{name,
//! checkpoint})`, `snapshot_get(id)`, `snapshot_list()`, `snapshot_wait(id, timeout_secs)`,
//! `snapshot_delete(id)`. A `Snapshot` has `id name status status_message docker_image
//! image_digest source_sandbox_id fs_capacity_bytes fs_used_bytes created_at updated_at` and
//! `wait([timeout_secs])`, `refresh()`, `delete()`, `to_map()`.
//!
//! **Commands** — `Command` (from `Sandbox.command`) has `id`, `pid`, `next()` → `#{type: "stdout" |
//! "stderr", data}` / `#{type: "exit", exit_code}` / `()` when done, `wait()` → `#{stdout,
//! stderr, exit_code}`, `send(text)`, `close_stdin()`, `kill()`, `resize(cols, rows)` (PTY).
//! A dropped connection is re-attached by itself from byte offsets: no output is lost or
//! repeated (unless the sandbox no longer holds it after a long disconnection: streaming
//! `exec` then says on stderr how many bytes were lost).
//!
//! **Helpers** — `parse_size("4gb", "--capacity")` → bytes, `parse_json_arg(text_or_@file,
//! flag)`, `shell_join(argv)`, `go_quote(text)`, `connect()` (resolve endpoint and key now),
//! `is_terminal_stdin()`, `exit_status(code)` (a value that makes the CLI print nothing and exit with `code`;
//! Rhai's own `exit(value)` stops a script with `value` as its result), `sleep(secs)`, `eprint(text)`,
//! `is_terminal_stderr()`.
//!
//! **Errors** — API failures are catchable: `try { … } catch (e) { e.status; e.type;
//! e.message; e.text }` (`status` is `()` when there was no HTTP answer; `text` is the line the
//! CLI prints, e.g. `getting sandbox: HTTP 404: …`). Argument errors are thrown strings.
//!
//! **Ctrl-C** — kills every remote command the script started that still runs, and the
//! blocked call fails with `#{type: "Interrupted", message: "interrupted"}`; the script then
//! stops at its next step. `langsmith run` and `langsmith sandbox …` exit with status 130.

pub mod bridge;
pub mod builtins;
pub mod command;
pub mod console;
pub mod helpers;
pub mod sandbox;
mod sandbox_fns;
pub mod snapshot;

use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Map, Scope};

pub use bridge::{Bridge, error_text};
pub use command::CommandObj;
pub use helpers::ExitStatus;
pub use sandbox::SandboxObj;
pub use snapshot::SnapshotObj;

use crate::client::ConfigInputs;

/// The engine with every binding registered.
pub struct ScriptHost {
    pub engine: Engine,
    pub bridge: Arc<Bridge>,
}

impl ScriptHost {
    pub fn new(handle: tokio::runtime::Handle, inputs: ConfigInputs) -> Self {
        let bridge = Bridge::new(handle, inputs);
        let mut engine = Engine::new();
        let watched = bridge.clone();
        engine.on_progress(move |_| watched.interrupted().then(|| Dynamic::from("interrupted")));
        snapshot::register(&mut engine, &bridge);
        sandbox::register(&mut engine, &bridge);
        command::register(&mut engine);
        console::register(&mut engine, &bridge);
        helpers::register(&mut engine, &bridge);
        ScriptHost { engine, bridge }
    }

    /// Compile a script, naming its origin in syntax errors. A `#!` first line (shebang) is
    /// blanked, keeping line numbers.
    pub fn compile(&self, origin: &str, source: &str) -> Result<AST, String> {
        let source = match source.strip_prefix("#!") {
            Some(rest) => rest.find('\n').map_or("", |i| &rest[i..]),
            None => source,
        };
        self.engine
            .compile(source)
            .map_err(|e| format!("{origin}: {e}"))
    }

    /// Run `ast` with `args` bound as a constant.
    pub fn run(&self, ast: &AST, args: Map) -> Result<Dynamic, Box<EvalAltResult>> {
        let mut scope = Scope::new();
        scope.push_constant("args", args);
        self.engine.eval_ast_with_scope(&mut scope, ast)
    }

    /// Find (user folder first) and run the script for a subcommand such as `sandbox/create`.
    pub fn run_named(&self, name: &str, args: Map) -> Result<Dynamic, String> {
        let found = builtins::find(name)
            .map_err(|e| format!("reading script {name}: {e}"))?
            .ok_or_else(|| {
                format!(
                    "unknown command {:?}: no script {name}.rhai",
                    name.replace('/', " ")
                )
            })?;
        let ast = self.compile(&found.origin, &found.source)?;
        finish(self.run(&ast, args))
    }
}

/// A script's value, or its error as the one line the user sees.
pub fn finish(result: Result<Dynamic, Box<EvalAltResult>>) -> Result<Dynamic, String> {
    result.map_err(|e| error_text(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> (tokio::runtime::Runtime, ScriptHost) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let host = ScriptHost::new(rt.handle().clone(), ConfigInputs::default());
        (rt, host)
    }

    #[test]
    fn every_builtin_and_example_compiles() {
        let (_rt, host) = host();
        for (name, src) in builtins::BUILTINS.iter().chain(builtins::EXAMPLES) {
            host.compile(name, src).unwrap();
        }
    }

    #[test]
    fn argument_errors_come_before_any_api_call() {
        let (_rt, host) = host();
        let mut args = Map::new();
        args.insert("name".into(), "s".into());
        args.insert("docker_image".into(), "".into());
        args.insert("capacity".into(), "4gb".into());
        let err = host.run_named("sandbox/snapshot/build", args).unwrap_err();
        assert_eq!(err, "--docker-image is required");
    }

    #[test]
    fn helper_functions_work_from_scripts() {
        let (_rt, host) = host();
        let v: i64 = host
            .engine
            .eval(r#"parse_size("1.5gb", "--memory")"#)
            .unwrap();
        assert_eq!(v, 1610612736);
        let s: String = host.engine.eval(r#"shell_join(["echo", "a b"])"#).unwrap();
        assert_eq!(s, "'echo' 'a b'");
        let e = host
            .engine
            .eval::<i64>(r#"parse_size("5", "--memory")"#)
            .unwrap_err();
        assert_eq!(
            error_text(&e),
            r#"invalid --memory: invalid size "5": unit required (e.g. 512mb, 2gb)"#
        );
    }
}
