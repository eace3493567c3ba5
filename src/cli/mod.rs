//! The clap command tree, argument → script dispatch, output and exit codes.
//!
//! Every `sandbox …` subcommand is a Rhai script (`scripts/sandbox/**.rhai`, overridable from the
//! user scripts folder): clap parses, [`dispatch`] turns the parsed arguments into the script's
//! `args` map, the script's value goes through [`output`](crate::script::render), and errors become one
//! `{"error": "…"}` line on stderr with exit status 1.

pub mod args;
mod args_flags;
pub mod errors;
mod user_scripts;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, error::ErrorKind};
use rhai::{Dynamic, Map};

use self::args::{Cli, Command, SandboxSub, SnapshotSub};
use self::errors::{clap_message, exact_name, print_error};
use self::user_scripts::with_user_scripts;
use crate::client::ConfigInputs;
use crate::script::ScriptHost;
use crate::script::render::{self as output, Format};

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let argv = script_shorthand(std::env::args_os().collect());
    let argv_text: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match Cli::try_parse_from(argv.clone()) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Rendered again from the tree with the user's scripts, so they are listed.
            let e = with_user_scripts(Cli::command())
                .try_get_matches_from(argv)
                .err()
                .unwrap_or(e);
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            print_error(&clap_message(&e, &argv_text));
            return ExitCode::FAILURE;
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            print_error(&message);
            ExitCode::FAILURE
        }
    }
}

/// `langsmith FILE.rhai ARGS…` (and `#!/usr/bin/env langsmith` shebangs) mean `run FILE.rhai`.
fn script_shorthand(mut argv: Vec<OsString>) -> Vec<OsString> {
    if argv
        .get(1)
        .is_some_and(|a| a.to_string_lossy().ends_with(".rhai"))
    {
        argv.insert(1, "run".into());
    }
    argv
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))
}

fn run(cli: Cli) -> Result<u8, String> {
    let inputs = ConfigInputs {
        api_key: Some(cli.api_key.clone()),
        api_url: Some(cli.api_url.clone()),
    };
    let format = Format::parse(&cli.format);
    let Some(command) = cli.command else {
        print_help(&[]);
        return Ok(0);
    };
    let (name, args) = match command {
        #[cfg(target_os = "linux")]
        Command::Server(a) => {
            return crate::server::run(a)
                .map(|()| 0)
                .map_err(|e| format!("{e:#}"));
        }
        #[cfg(target_os = "linux")]
        Command::Agent(a) => {
            return crate::agent::run(a)
                .map(|()| 0)
                .map_err(|e| format!("{e:#}"));
        }
        Command::HelpScript => {
            print!("{}", script_reference());
            return Ok(0);
        }
        Command::Shell => {
            let rt = runtime()?;
            return crate::repl::run(ScriptHost::new(rt.handle().clone(), inputs), format);
        }
        Command::Run(a) => {
            let rt = runtime()?;
            let host = ScriptHost::new(rt.handle().clone(), inputs);
            let origin = a.file.display().to_string();
            let source = std::fs::read_to_string(&a.file)
                .map_err(|e| format!("reading script {origin}: {e}"))?;
            let ast = host.compile(&origin, &source)?;
            let _sigint = host.bridge.watch_sigint();
            let mut map = Map::new();
            map.insert(
                "argv".into(),
                a.argv
                    .into_iter()
                    .map(Dynamic::from)
                    .collect::<rhai::Array>()
                    .into(),
            );
            map.insert("file".into(), origin.into());
            let result = crate::script::finish(host.run(&ast, map));
            if let Some(code) = interrupted(&host) {
                return Ok(code);
            }
            return Ok(emit(&result?, format));
        }
        Command::Sandbox(sb) => match sb.command {
            None => {
                print_help(&["sandbox"]);
                return Ok(0);
            }
            Some(sub) => match dispatch(sub)? {
                Some(found) => found,
                None => return Ok(0),
            },
        },
    };
    let rt = runtime()?;
    let host = ScriptHost::new(rt.handle().clone(), inputs);
    let _sigint = host.bridge.watch_sigint();
    let result = host.run_named(&name, args);
    if let Some(code) = interrupted(&host) {
        return Ok(code);
    }
    Ok(emit(&result?, format))
}

/// Exit status after Ctrl-C: 128 + SIGINT, as shells report it.
const INTERRUPTED_EXIT: u8 = 130;
/// How long an interrupted CLI waits for the sandbox to confirm its kills.
const KILL_CONFIRM_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `Some(130)` when Ctrl-C interrupted the script — once the remote commands it killed are
/// confirmed gone (or the wait gave up), so none outlives the CLI by accident.
fn interrupted(host: &ScriptHost) -> Option<u8> {
    if !host.bridge.interrupted() {
        return None;
    }
    host.bridge.settle(KILL_CONFIRM_LIMIT);
    Some(INTERRUPTED_EXIT)
}

/// Print a script's value; returns the exit status it asks for.
fn emit(value: &Dynamic, format: Format) -> u8 {
    use std::io::Write;
    let (text, code) = output::render(value, format);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    code
}

/// Serialise an argument struct and add the checked positional as `name` (or `snapshot_id`).
fn script_args<T: serde::Serialize>(
    a: &T,
    key: &str,
    positionals: &[String],
) -> Result<Map, String> {
    let mut map: Map = rhai::serde::to_dynamic(a)
        .map_err(|e| e.to_string())?
        .try_cast::<Map>()
        .unwrap_or_default();
    map.insert(key.into(), exact_name(positionals)?.into());
    Ok(map)
}

/// The script and `args` map of a `sandbox` subcommand; `None` when help was printed.
fn dispatch(sub: SandboxSub) -> Result<Option<(String, Map)>, String> {
    let named = |script: &str, map: Map| Ok(Some((format!("sandbox/{script}"), map)));
    match sub {
        SandboxSub::Create(a) => named("create", script_args(&a, "name", &a.positionals)?),
        SandboxSub::List(_) => named("list", Map::new()),
        SandboxSub::Get(a) => named("get", script_args(&a, "name", &a.positionals)?),
        SandboxSub::Update(a) => named("update", script_args(&a, "name", &a.positionals)?),
        SandboxSub::Delete(a) => named("delete", script_args(&a, "name", &a.positionals)?),
        SandboxSub::Start(a) => named("start", script_args(&a, "name", &a.positionals)?),
        SandboxSub::Stop(a) => named("stop", script_args(&a, "name", &a.positionals)?),
        SandboxSub::Wait(a) => named("wait", script_args(&a, "name", &a.positionals)?),
        SandboxSub::Exec(a) => {
            let name = match (a.positionals.first(), a.command.first()) {
                (Some(n), _) | (None, Some(n)) => n.clone(),
                (None, None) => return Err("requires at least 1 arg(s), only received 0".into()),
            };
            if a.command.is_empty() {
                return Err("usage: langsmith sandbox exec <name> -- <command>".into());
            }
            let mut map: Map = rhai::serde::to_dynamic(&a)
                .map_err(|e| e.to_string())?
                .try_cast::<Map>()
                .unwrap_or_default();
            map.insert("name".into(), name.into());
            let argv: rhai::Array = a.command.into_iter().map(Dynamic::from).collect();
            map.insert("command".into(), argv.into());
            named("exec", map)
        }
        SandboxSub::Console(a) => named("console", script_args(&a, "name", &a.positionals)?),
        SandboxSub::External(argv) => external("sandbox", argv),
        SandboxSub::Snapshot(s) => {
            let named =
                |script: &str, map: Map| Ok(Some((format!("sandbox/snapshot/{script}"), map)));
            match s.command {
                None => {
                    print_help(&["sandbox", "snapshot"]);
                    Ok(None)
                }
                Some(SnapshotSub::List(_)) => named("list", Map::new()),
                Some(SnapshotSub::Build(a)) => {
                    named("build", script_args(&a, "name", &a.positionals)?)
                }
                Some(SnapshotSub::Capture(a)) => {
                    named("capture", script_args(&a, "name", &a.positionals)?)
                }
                Some(SnapshotSub::Get(a)) => {
                    named("get", script_args(&a, "snapshot_id", &a.positionals)?)
                }
                Some(SnapshotSub::Wait(a)) => {
                    named("wait", script_args(&a, "snapshot_id", &a.positionals)?)
                }
                Some(SnapshotSub::Delete(a)) => {
                    named("delete", script_args(&a, "snapshot_id", &a.positionals)?)
                }
                Some(SnapshotSub::External(argv)) => external("sandbox snapshot", argv),
            }
        }
    }
}

/// A user script for an unknown subcommand; without one, help (exit 0) as in GA. A name that
/// is not plain (`../x`, `a/b`, `x.y`) never names a script: it is unknown, with a note why.
fn external(parent: &str, argv: Vec<String>) -> Result<Option<(String, Map)>, String> {
    if !crate::script::builtins::is_plain_name(&argv[0]) {
        eprintln!(
            "unknown command {:?} for \"langsmith {parent}\": command names are letters, \
             digits, '-' and '_' (see the commands below)",
            argv[0]
        );
        print_help(&parent.split(' ').collect::<Vec<_>>());
        return Ok(None);
    }
    let name = format!("{}/{}", parent.replace(' ', "/"), argv[0]);
    let exists =
        crate::script::builtins::find(&name).map_err(|e| format!("reading script {name}: {e}"))?;
    if exists.is_none() {
        print_help(&parent.split(' ').collect::<Vec<_>>());
        return Ok(None);
    }
    let mut map = Map::new();
    let rest: rhai::Array = argv[1..].iter().cloned().map(Dynamic::from).collect();
    map.insert("argv".into(), rest.into());
    Ok(Some((name, map)))
}

/// Help of the (sub)command at `path`, on stdout.
fn print_help(path: &[&str]) {
    let mut cmd = with_user_scripts(Cli::command());
    cmd.build();
    let mut target = &mut cmd;
    for name in path {
        if target.find_subcommand(name).is_none() {
            break;
        }
        target = target.find_subcommand_mut(name).expect("checked above");
    }
    let _ = target.print_help();
}

/// The script API reference.
pub fn script_reference() -> String {
    crate::script::REFERENCE.to_string()
}
