//! The script layer: one Rhai engine per process with the `Snapshot`, `Sandbox` and `Command`
//! bindings, the async bridge, and the built-in scripts behind every `sandbox` subcommand.
//!
//! Scripts run on a plain thread (never a tokio worker); client calls block on the runtime
//! through [`bridge::Bridge`]. Ctrl-C kills the script's remote commands and stops it.
//! A script's value is printed through [`render`] by the CLI and the REPL (JSON, or tables with
//! `--format pretty`); scripts never format output themselves.
//!
//! The script API is documented in one reference, `reference.md` next to this file, printed
//! by `langsmith help-script`; a test checks that every registered function, method and
//! property appears in it.
//!
//! Module map: [`bridge`] (script thread ↔ tokio runtime, interrupts) · [`builtins`] (the
//! embedded subcommand scripts and user overrides) · objects: [`snapshot`], [`sandbox`] +
//! `sandbox_fns`, [`command`] · running commands: `streaming` (a callback per chunk),
//! `exec_stream` and `exec_terminal` (what `sandbox exec` uses), [`console`] · `transfer`
//! (upload, download) · `service` (service URLs, download links) · `egress` (the egress
//! log) · `secrets` (workspace secrets) · `http` (`http_get`) ·
//! [`tunnel`] (`sb.tunnel`, and `tunnel_cli` behind `sandbox tunnel`) ·
//! `ssh_setup` (the local files of `sandbox ssh-setup`) · [`helpers`]
//! (argument parsing shared by the built-ins, exit status) ·
//! [`render`] + `table` (values → JSON or pretty tables).

pub mod bridge;
pub mod builtins;
pub mod command;
pub mod console;
mod egress;
mod exec_stream;
mod exec_terminal;
pub mod helpers;
mod http;
pub mod render;
pub mod sandbox;
mod sandbox_fns;
mod secrets;
mod service;
pub mod snapshot;
#[cfg(unix)]
mod ssh_setup;
mod streaming;
mod table;
mod transfer;
pub mod tunnel;
mod tunnel_cli;

use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Map, Scope};

pub use bridge::{Bridge, error_text};
pub use command::CommandObj;
pub use helpers::ExitStatus;
pub use sandbox::SandboxObj;
pub use snapshot::SnapshotObj;

use crate::client::ConfigInputs;

/// The script API reference (`langsmith help-script`).
pub const REFERENCE: &str = include_str!("reference.md");

/// The engine with every binding registered.
pub struct ScriptHost {
    pub engine: Engine,
    pub bridge: Arc<Bridge>,
    /// The runtime the bridge drives client calls on (the REPL listens for Ctrl-C on it).
    pub handle: tokio::runtime::Handle,
}

impl ScriptHost {
    pub fn new(handle: tokio::runtime::Handle, inputs: ConfigInputs) -> Self {
        let bridge = Bridge::new(handle.clone(), inputs);
        let mut engine = engine();
        let watched = bridge.clone();
        engine.on_progress(move |_| watched.interrupted().then(|| Dynamic::from("interrupted")));
        snapshot::register(&mut engine, &bridge);
        sandbox::register(&mut engine, &bridge);
        command::register(&mut engine);
        streaming::register(&mut engine);
        transfer::register(&mut engine);
        service::register(&mut engine);
        egress::register(&mut engine);
        secrets::register(&mut engine, &bridge);
        http::register(&mut engine, &bridge);
        console::register(&mut engine, &bridge);
        tunnel::register(&mut engine, &bridge);
        helpers::register(&mut engine, &bridge);
        #[cfg(unix)]
        ssh_setup::register(&mut engine, &bridge);
        ScriptHost {
            engine,
            bridge,
            handle,
        }
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
        let result = self.engine.eval_ast_with_scope(&mut scope, ast);
        self.bridge.close_tunnels();
        result
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

/// [`Engine::new`], except that the standard library's functions are looked up when a script
/// first calls them instead of all being registered up front.
///
/// Registering them all took 1–1.5 ms, a fifth of a `langsmith sandbox exec`, for the handful
/// a subcommand's script calls. Scripts, the REPL and the reference test see the same functions.
fn engine() -> Engine {
    use rhai::packages::{Package, StandardPackage};
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new_lazy().as_shared_module());
    // What `Engine::new` sets besides: `import` from files, interned strings, and `print` and
    // `debug` to stdout.
    engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new());
    engine.set_max_strings_interned(256);
    engine.on_print(|text| println!("{text}"));
    engine.on_debug(|text, source, pos| {
        let at = match (source, pos.is_none()) {
            (Some(source), true) => format!("{source} | "),
            (Some(source), false) => format!("{source} @ {pos:?} | "),
            (None, true) => String::new(),
            (None, false) => format!("{pos:?} | "),
        };
        println!("{at}{text}");
    });
    engine
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

    /// Whether `word` occurs in `text` as a whole identifier.
    fn mentions(text: &str, word: &str) -> bool {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        text.match_indices(word).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + word.len()..].chars().next();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        })
    }

    #[test]
    fn the_reference_documents_every_registered_function_method_and_property() {
        let (_rt, host) = host();
        let signatures = host.engine.gen_fn_signatures(false);
        assert!(signatures.len() > 50, "{signatures:?}");
        let mut missing = std::collections::BTreeSet::new();
        for sig in &signatures {
            let name = &sig[..sig.find('(').unwrap()];
            let name = name.strip_prefix("get$").unwrap_or(name);
            let receiver = sig
                .split_once("(_: &mut ")
                .map(|(_, rest)| rest.split([',', ')']).next().unwrap());
            if !mentions(REFERENCE, name) {
                missing.insert(name.to_string());
            }
            if let Some(ty) = receiver
                && !mentions(REFERENCE, ty)
            {
                missing.insert(ty.to_string());
            }
        }
        assert!(
            missing.is_empty(),
            "undocumented in src/script/reference.md: {missing:?}"
        );
    }

    #[test]
    fn sleep_waits_on_the_runtime_from_the_script_thread() {
        // The CLI's runtime is multi-threaded; a current-thread one cannot drive timers from
        // `Handle::block_on`.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let host = ScriptHost::new(rt.handle().clone(), ConfigInputs::default());
        host.engine.eval::<()>("sleep(0.01)").unwrap();
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
