//! The clap command tree, argument → script dispatch, output and exit codes.

use clap::{Parser, Subcommand};

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "langsmith",
    version,
    about = "LangSmith sandboxes: CLI, scriptable shell and local backend"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local sandbox backend (the LangSmith Sandbox API on this machine).
    #[cfg(target_os = "linux")]
    Server(crate::server::ServerArgs),
    /// The in-sandbox agent (started by the runtime as PID 1 of each sandbox).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    Agent(crate::agent::AgentArgs),
}

/// Entry point used by `main.rs`.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        #[cfg(target_os = "linux")]
        Command::Server(args) => crate::server::run(args),
        #[cfg(target_os = "linux")]
        Command::Agent(args) => crate::agent::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{{\"error\": {:?}}}", format!("{e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}
