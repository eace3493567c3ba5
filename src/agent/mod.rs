//! The in-sandbox agent: PID 1 of every sandbox. It reaps zombies and serves the data plane
//! (exec sessions, files) over a unix socket that the server proxies `{dataplane_url}/…` to.

use std::path::PathBuf;

/// `langsmith agent` (hidden): the arguments the runtime starts the agent with.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Unix socket to serve the data plane on.
    #[arg(long)]
    pub socket: PathBuf,
}

/// Run the agent until it is killed. Forks a reaper when running as PID 1.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("agent not implemented yet")
}

/// Serve the data plane on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = (listener, shutdown);
    anyhow::bail!("agent not implemented yet")
}
