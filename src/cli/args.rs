//! The top of the clap command tree: global flags and the commands that
//! are not scripts. The `sandbox` subtree is built from the scripts' headers
//! ([`super::command_tree`]); its int flags use Go's base detection ([`go_int`]).

use clap::{Args, Parser, Subcommand};

pub use super::command_tree::ScriptCmd;

/// Parse an int flag like pflag: base auto-detection (`0x10`, `0o17`, `010`, `0b11`), `_` allowed.
pub fn go_int(text: &str) -> Result<i64, String> {
    let invalid = || {
        format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            crate::text::go_quote(text)
        )
    };
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let digits = digits.replace('_', "");
    if digits.is_empty() {
        return Err(invalid());
    }
    let magnitude = i128::from_str_radix(&digits, radix).map_err(|_| invalid())?;
    let value = if neg { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            crate::text::go_quote(text)
        )
    })
}

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "langsmith",
    version,
    about = "LangSmith sandboxes: CLI, scriptable shell and local backend",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// API key (overrides LANGSMITH_API_KEY).
    #[arg(long, global = true, default_value = "", hide_default_value = true)]
    pub api_key: String,
    /// API base URL (overrides LANGSMITH_ENDPOINT).
    #[arg(long, global = true, default_value = "", hide_default_value = true)]
    pub api_url: String,
    /// Output format: json or pretty.
    #[arg(long, global = true, default_value = "json")]
    pub format: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage sandboxes and snapshots.
    Sandbox(ScriptCmd),
    /// Manage workspace secrets (credentials the egress proxy adds for a sandbox).
    Secrets(ScriptCmd),
    /// Interactive Rhai shell with the sandbox bindings (see `langsmith help-script`).
    Shell,
    /// Run a Rhai script: `langsmith run FILE.rhai [ARGS…]` (`args.argv` holds ARGS).
    Run(RunArgs),
    /// Print the script API reference.
    HelpScript,
    /// Run the local sandbox backend (the LangSmith Sandbox API on this machine).
    #[cfg(target_os = "linux")]
    Server(crate::server::ServerArgs),
    /// The in-sandbox agent (started by the runtime as PID 1 of each sandbox).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    Agent(crate::agent::AgentArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The script file.
    pub file: std::path::PathBuf,
    /// Arguments for the script (`args.argv`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<String>,
}
