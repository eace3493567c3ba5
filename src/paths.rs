//! Where langsmith keeps its files on this machine: every directory decision in one place,
//! used by the client (which finds or starts the local backend), the server (which keeps its
//! state there), the script layer (user scripts) and the REPL (history).
//!
//! The state directory is the contract between the CLI and a server it started: one rule
//! names it for both — `$LANGSMITH_STATE_DIR`, else `<data dir>/langsmith` — so a server run
//! without `--state-dir` keeps its state exactly where the CLI looks for it. When neither
//! names a directory (no home directory at all) there is no default: each caller says how to
//! name one, rather than the server picking a directory the CLI would never find.
//!
//! A leaf: it only reads the environment and the platform's directory conventions.

use std::path::{Path, PathBuf};

/// Names the state directory of the local backend (overrides the data directory).
pub const STATE_DIR_VAR: &str = "LANGSMITH_STATE_DIR";
/// Names the user scripts folder (overrides the config directory).
pub const SCRIPTS_DIR_VAR: &str = "LANGSMITH_SCRIPTS_DIR";

/// The folder under the platform's data and config directories.
const APP_DIR: &str = "langsmith";

/// The local backend's state directory: `$LANGSMITH_STATE_DIR`, else `<data dir>/langsmith`;
/// `None` when neither can be named.
pub fn state_dir() -> Option<PathBuf> {
    env_dir(STATE_DIR_VAR).or_else(|| dirs::data_dir().map(|d| d.join(APP_DIR)))
}

/// The user scripts folder: `$LANGSMITH_SCRIPTS_DIR`, else `<config dir>/langsmith/scripts`.
pub fn user_scripts_dir() -> Option<PathBuf> {
    env_dir(SCRIPTS_DIR_VAR).or_else(|| dirs::config_dir().map(|d| d.join(APP_DIR).join("scripts")))
}

/// The REPL's history file, `<data dir>/langsmith/history` (not moved by `$LANGSMITH_STATE_DIR`:
/// it belongs to the user, not to a backend).
pub fn history_file() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join(APP_DIR).join("history"))
}

/// The CLI's own credentials, `<config dir>/langsmith/credentials.json` (mode 0600): the API
/// key of each remote endpoint that `sandbox ssh-setup` configured, so an ssh `ProxyCommand`
/// finds it without the key being written into `~/.ssh/config`.
pub fn credentials_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join(APP_DIR).join("credentials.json"))
}

/// `STATE/server.json`: written by a server once it is ready (`{"url", "pid"}`), read by the
/// client to find it.
pub fn server_info_file(state: &Path) -> PathBuf {
    state.join("server.json")
}

/// `STATE/api-key`: the key a server generated and clients send.
pub fn api_key_file(state: &Path) -> PathBuf {
    state.join("api-key")
}

/// `STATE/server.log`: output of a server the client started in the background.
pub fn server_log_file(state: &Path) -> PathBuf {
    state.join("server.log")
}

/// A directory named by `var`, when it is set and not empty.
fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}
