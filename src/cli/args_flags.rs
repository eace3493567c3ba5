//! Argument structs of the subcommands with their own flags (create, update, exec, console,
//! snapshot build and capture).

use clap::{ArgAction, Args};
use serde::Serialize;

use super::args::go_int;

#[derive(Debug, Args, Serialize)]
pub struct CreateArgs {
    #[serde(skip)]
    #[arg(value_name = "NAME")]
    pub positionals: Vec<String>,
    /// Snapshot to boot from (required).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub snapshot_id: String,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 2, value_parser = go_int)]
    pub vcpus: i64,
    /// Memory, e.g. 512mb, 2gb.
    #[arg(long, default_value = "512mb")]
    pub memory: String,
    /// Root filesystem capacity, e.g. 8gb.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub rootfs_capacity: String,
    /// Auth-proxy configuration: JSON text or @file.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub proxy_config: String,
    /// Have the server answer only once the sandbox is ready.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    pub wait: bool,
    /// Seconds to wait (with --wait).
    #[arg(long, default_value_t = 120, value_parser = go_int)]
    pub timeout: i64,
}

#[derive(Debug, Args, Serialize)]
pub struct UpdateArgs {
    #[serde(skip)]
    #[arg(value_name = "NAME")]
    pub positionals: Vec<String>,
    /// Number of vCPUs.
    #[arg(long, value_parser = go_int)]
    pub vcpus: Option<i64>,
    /// Memory, e.g. 2gb.
    #[arg(long)]
    pub memory: Option<String>,
    /// Root filesystem capacity, e.g. 16gb.
    #[arg(long)]
    pub rootfs_capacity: Option<String>,
    /// Auth-proxy configuration: JSON text or @file.
    #[arg(long)]
    pub proxy_config: Option<String>,
}

/// `exec NAME [flags] -- COMMAND…`: GA's form plus flags GA lacks (all optional, so every GA
/// command line means the same here).
#[derive(Debug, Args, Serialize)]
pub struct ExecArgs {
    #[serde(skip)]
    #[arg(value_name = "NAME")]
    pub positionals: Vec<String>,
    /// Allocate a pseudo-terminal (sized like the local terminal, if there is one).
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    pub tty: bool,
    /// Set an environment variable, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory of the command.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub cwd: String,
    /// Kill the command after this many seconds (0 = no limit).
    #[arg(long, default_value_t = 0, value_parser = go_int)]
    pub timeout: i64,
    /// The command and its arguments, after `--`.
    #[serde(skip)]
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args, Serialize)]
pub struct ConsoleArgs {
    #[serde(skip)]
    #[arg(value_name = "NAME")]
    pub positionals: Vec<String>,
    /// Shell to run (default: the sandbox's, normally /bin/bash).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub shell: String,
    /// Forward the local SSH agent (SSH_AUTH_SOCK) into the sandbox.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    pub forward_ssh_agent: bool,
    /// Environment for the shell: KEY=VALUE, or KEY to copy the local value (repeatable).
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
}

#[derive(Debug, Args, Serialize)]
pub struct BuildArgs {
    #[serde(skip)]
    #[arg(value_name = "NAME")]
    pub positionals: Vec<String>,
    /// Image to build from (required).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub docker_image: String,
    /// Filesystem capacity, e.g. 4gb.
    #[arg(long, default_value = "4gb")]
    pub capacity: String,
    /// Private registry URL.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub registry_url: String,
    /// Private registry user name.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub registry_username: String,
    /// Private registry password.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub registry_password: String,
    /// Wait until the snapshot is ready.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    pub wait: bool,
    /// Seconds to wait (with --wait).
    #[arg(long, default_value_t = 300, value_parser = go_int)]
    pub timeout: i64,
}

#[derive(Debug, Args, Serialize)]
pub struct CaptureArgs {
    #[serde(skip)]
    #[arg(value_name = "NAME")]
    pub positionals: Vec<String>,
    /// Sandbox to capture (required).
    #[arg(long = "box", default_value = "", hide_default_value = true)]
    pub r#box: String,
    /// An existing checkpoint timestamp; omitted → a fresh one.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub checkpoint: String,
    /// Wait until the snapshot is ready.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    pub wait: bool,
    /// Seconds to wait (with --wait).
    #[arg(long, default_value_t = 300, value_parser = go_int)]
    pub timeout: i64,
}
