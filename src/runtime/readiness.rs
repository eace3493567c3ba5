//! Reaching a sandbox's agent and deciding that it is usable.
//!
//! The runtime binds the agent's socket itself, on the host, in a directory the sandbox
//! never sees, and hands the listening descriptor to the agent; so the path the server
//! connects to cannot be swapped for a link to another socket. Readiness is `GET /healthz`
//! answering 200, waited for with a bounded deadline that gives up early if the container
//! dies.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::time::Instant;

use super::ContainerState;
use super::runc::Runc;

/// How long a fresh container may take until its agent answers.
pub const READY_DEADLINE: Duration = Duration::from_secs(20);
/// Pause between connection attempts.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Upper bound on one health request, so a wedged agent cannot stall the wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often (in polls) to ask the OCI runtime whether the container is still alive.
const STATE_CHECK_EVERY: u32 = 20;

/// Why a sandbox's agent cannot be talked to. No variant names a host path or process:
/// these reach API answers.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("its agent does not accept connections ({0})")]
    Connect(#[source] std::io::Error),
    #[error("HTTP handshake: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("{0}")]
    Request(#[source] http::Error),
    #[error("GET /healthz: {0}")]
    Healthz(#[source] hyper::Error),
}

/// Why a fresh container's agent never became healthy; each names the last problem seen.
#[derive(Debug, thiserror::Error)]
pub enum NotHealthy {
    #[error("the container is {state:?} ({last_problem})")]
    ContainerEnded {
        state: ContainerState,
        last_problem: String,
    },
    #[error("the agent was not healthy within {}s ({last_problem})", READY_DEADLINE.as_secs())]
    Deadline { last_problem: String },
}

/// Connects to the agent's socket at `socket`.
pub async fn connect(socket: &Path) -> Result<UnixStream, AgentError> {
    UnixStream::connect(socket)
        .await
        .map_err(AgentError::Connect)
}

/// Waits until the agent is healthy. The error explains why it is not.
pub async fn wait_for_agent(socket: &Path, runc: &Runc, container: &str) -> Result<(), NotHealthy> {
    let deadline = Instant::now() + READY_DEADLINE;
    let mut last_problem;
    for poll in 0u32.. {
        let attempt = async { healthz(connect(socket).await?).await };
        match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
            Ok(Ok(200)) => return Ok(()),
            Ok(Ok(status)) => last_problem = format!("GET /healthz answered {status}"),
            Ok(Err(problem)) => last_problem = problem.to_string(),
            Err(_) => last_problem = "GET /healthz did not answer".to_string(),
        }
        if poll % STATE_CHECK_EVERY == STATE_CHECK_EVERY - 1 {
            let state = runc.state(container).await;
            if state != ContainerState::Running {
                return Err(NotHealthy::ContainerEnded {
                    state,
                    last_problem,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(NotHealthy::Deadline { last_problem });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    unreachable!("the poll loop only ends by returning")
}

/// One `GET /healthz` on a connected agent stream; returns the status code.
pub async fn healthz(stream: UnixStream) -> Result<u16, AgentError> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(AgentError::Handshake)?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get("/healthz")
        .header(http::header::HOST, "agent")
        .body(Empty::<Bytes>::new())
        .map_err(AgentError::Request)?;
    let result = sender
        .send_request(request)
        .await
        .map(|response| response.status().as_u16())
        .map_err(AgentError::Healthz);
    driver.abort();
    result
}
