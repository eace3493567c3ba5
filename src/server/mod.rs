//! The local backend: the LangSmith Sandbox API on one Linux machine.

pub mod images;

use std::net::SocketAddr;
use std::path::PathBuf;

/// `langsmith server [--listen ADDR] [--state-dir DIR] [--api-key KEY]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on; `127.0.0.1:0` picks a free port.
    #[arg(long, default_value = "127.0.0.1:7433")]
    pub listen: SocketAddr,
    /// State directory (database, images, sandboxes). Defaults to the user's data directory.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// API key clients must send as `X-Api-Key`. Without it a key is generated once and kept
    /// in `STATE_DIR/api-key` (mode 0600).
    #[arg(long, env = "LANGSMITH_SERVER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// OCI runtime binary.
    #[arg(long, default_value = "runc")]
    pub runtime: PathBuf,
}

/// Run the server until SIGTERM/SIGINT.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("server not implemented yet")
}
