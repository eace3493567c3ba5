//! The clap command tree, argument → script dispatch, output and exit codes.
//!
//! Every `sandbox …` subcommand is a Rhai script (`scripts/sandbox/**.rhai`, overridable from the
//! user scripts folder) that declares its command line in a header. Its value is printed by
//! [`crate::script::render`], and a [`CliError`] becomes one `{"error": "…"}` line on stderr
//! and an exit status in [`main`]. The `sandbox` subtree is built (and the user scripts read)
//! only once the command line is known to be a `sandbox` one, so `agent` (PID 1 of
//! every sandbox) and `server` never read it.
//!
//! - [`args`]: the top of the tree, global flags and the commands that are not scripts.
//! - [`errors`]: [`CliError`], its message and exit status.
//! - [`header`]: the `//!` interface header of a script; `header_flag`: its `@flag` lines.
//! - [`command_tree`]: the `sandbox` subtree built from the headers, groups from directories.
//! - [`script_args`]: from parsed arguments to the script to run and its `args` map.
//! - `tests`: the unit tests of all of the above.

pub mod args;
pub mod command_tree;
pub mod errors;
pub mod header;
mod header_flag;
pub mod script_args;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, error::ErrorKind};
use rhai::{Dynamic, Map};

use self::args::{Cli, Command, ScriptCmd};
use self::command_tree::Purpose;
use self::errors::CliError;
use self::script_args::Invocation;
use crate::client::ConfigInputs;
use crate::script::ScriptHost;
use crate::script::render::{self, Format};

/// Entry point used by `main.rs`: the one place where an error becomes its message and exit
/// status.
pub fn main() -> ExitCode {
    let argv = script_shorthand(std::env::args_os().collect());
    match parse(argv).and_then(|cli| cli.map_or(Ok(0), run)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            e.report();
            ExitCode::from(e.exit_code())
        }
    }
}

/// The parsed command line; `None` when help or the version was printed instead.
///
/// Parsed first with a stand-in for the `sandbox` subtree: only a `sandbox` command line is
/// parsed again with the subtree built from the scripts, so no other command reads the user
/// scripts folder.
fn parse(argv: Vec<OsString>) -> Result<Option<Cli>, CliError> {
    // Built once: parsing takes a copy, and the `sandbox` subtree is added to the original.
    let stand_in = Cli::command();
    let (matches, root) = match stand_in.clone().try_get_matches_from(argv.clone()) {
        Ok(m) if let Some(root) = script_root(m.subcommand_name()) => {
            let full = command_tree::with_scripts(stand_in, root, Purpose::Parse);
            (full.try_get_matches_from(argv.clone()), Some(root))
        }
        other => (other, None),
    };
    let error = match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => return Ok(Some(cli)),
        Err(e) => e,
    };
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Rendered again from the tree with the user's plain scripts, so they are listed.
            let e = if let Some(root) = root {
                command_tree::with_scripts(Cli::command(), root, Purpose::Help)
                    .try_get_matches_from(argv)
                    .err()
                    .unwrap_or(error)
            } else {
                error
            };
            let _ = e.print();
            Ok(None)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            Ok(None)
        }
        _ => Err(CliError::Parse {
            error,
            argv: argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        }),
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

/// The client's runtime: one worker, beside the thread that runs the script.
///
/// The script calls the client with `block_on` from its own thread, which a current-thread
/// runtime would not drive, so the runtime has a worker; one is enough for a client waiting
/// on a few sockets. A second one cost every command its thread's start and the wake-ups
/// between the two: `sandbox exec x -- true` took 0.6 ms longer at its median (120 runs of
/// each, side by side on one server).
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn run(cli: Cli) -> Result<u8, CliError> {
    let inputs = ConfigInputs {
        api_key: Some(cli.api_key.clone()),
        api_url: Some(cli.api_url.clone()),
    };
    let format = Format::parse(&cli.format);
    let Some(command) = cli.command else {
        print_help(&[]);
        return Ok(0);
    };
    let script = match command {
        #[cfg(target_os = "linux")]
        Command::Server(a) => {
            return crate::server::run(a).map(|()| 0).map_err(CliError::Service);
        }
        #[cfg(target_os = "linux")]
        Command::Agent(a) => {
            return crate::agent::run(a).map(|()| 0).map_err(CliError::Service);
        }
        Command::HelpScript => {
            print!("{}", script_reference());
            return Ok(0);
        }
        Command::Shell => {
            let rt = runtime()?;
            return crate::repl::run(ScriptHost::new(rt.handle().clone(), inputs), format)
                .map_err(CliError::Script);
        }
        Command::Run(a) => {
            let rt = runtime()?;
            let host = ScriptHost::new(rt.handle().clone(), inputs);
            let origin = a.file.display().to_string();
            let source =
                std::fs::read_to_string(&a.file).map_err(|error| CliError::ReadScript {
                    name: origin.clone(),
                    error,
                })?;
            let ast = host.compile(&origin, &source).map_err(CliError::Script)?;
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
            let code = result.map(|value| emit(&value, format));
            leave(rt, host);
            return code.map_err(CliError::Script);
        }
        Command::Sandbox(cmd) => script_of("sandbox", &cmd)?,
        Command::Secrets(cmd) => script_of("secrets", &cmd)?,
    };
    let Some((name, args)) = script else {
        return Ok(0);
    };
    let rt = runtime()?;
    let host = ScriptHost::new(rt.handle().clone(), inputs);
    let _sigint = host.bridge.watch_sigint();
    let result = host.run_named(&name, args);
    if let Some(code) = interrupted(&host) {
        return Ok(code);
    }
    let code = result.map(|value| emit(&value, format));
    leave(rt, host);
    code.map_err(CliError::Script)
}

/// Ends a script command without tearing down what the process exit discards anyway.
///
/// Freeing the engine's tables and joining the runtime's workers took half a millisecond of
/// every command. Nothing is lost: the script has ended, its tunnels are closed (see
/// [`ScriptHost::run`]) and its output flushed, and what the host still owns — connections, the
/// tasks of commands a script left running — holds nothing the kernel does not release when
/// the process exits, as the runtime's own drop would (a server sees the same closed
/// connection either way).
fn leave(rt: tokio::runtime::Runtime, host: ScriptHost) {
    std::mem::forget(host);
    rt.shutdown_background();
}

/// The script a command line of the script root `root` runs and its arguments; `None` when
/// it asked for help (printed here).
fn script_of(root: &str, cmd: &ScriptCmd) -> Result<Option<(String, Map)>, CliError> {
    match script_args::resolve(root, &cmd.matches)? {
        Invocation::Script { name, args } => Ok(Some((name, args))),
        Invocation::Help(path) => {
            print_help(&path);
            Ok(None)
        }
    }
}

/// `name` when it is one of the roots whose subcommands are scripts.
fn script_root(name: Option<&str>) -> Option<&'static str> {
    command_tree::SCRIPT_ROOTS
        .into_iter()
        .find(|root| Some(*root) == name)
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
    let (text, code) = render::render(value, format);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    code
}

/// Help of the (sub)command at `path`, on stdout; the scripts are read only for help below
/// `sandbox`.
fn print_help(path: &[String]) {
    let mut cmd = match path.first().map(String::as_str) {
        root @ Some(_) if let Some(root) = script_root(root) => {
            command_tree::with_scripts(Cli::command(), root, Purpose::Help)
        }
        _ => Cli::command(),
    };
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
