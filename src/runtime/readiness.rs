//! Reaching a sandbox's agent and deciding that it is usable.
//!
//! The socket lives in a directory the sandbox can write (the agent binds it from inside), so
//! a process in the sandbox could swap it for a symlink to some other socket on the host or of
//! another sandbox. [`connect`] therefore checks who is listening: the peer must be a process
//! in this sandbox's cgroup. Readiness is `GET /healthz` answering 200, waited for with a
//! bounded deadline that gives up early if the container dies.

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

/// Connects to the agent socket of `container` and verifies that the listening process
/// belongs to that container's cgroup.
pub async fn connect(socket: &Path, container: &str) -> Result<UnixStream, String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connect {}: {e}", socket.display()))?;
    let peer = stream
        .peer_cred()
        .ok()
        .and_then(|cred| cred.pid())
        .ok_or_else(|| "the agent socket reports no peer process".to_string())?;
    let cgroups = std::fs::read_to_string(format!("/proc/{peer}/cgroup")).unwrap_or_default();
    let expected = format!(":{}", super::bundle::cgroup_path(container));
    if cgroups.lines().any(|line| line.ends_with(&expected)) {
        Ok(stream)
    } else {
        Err(format!(
            "{} is served by process {peer}, which is not part of {container}; refusing it",
            socket.display()
        ))
    }
}

/// Waits until the agent is healthy. The error explains why it is not.
pub async fn wait_for_agent(socket: &Path, runc: &Runc, container: &str) -> Result<(), String> {
    let deadline = Instant::now() + READY_DEADLINE;
    let mut last_problem = "the agent socket was never created".to_string();
    for poll in 0u32.. {
        let attempt = async { healthz(connect(socket, container).await?).await };
        match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
            Ok(Ok(200)) => return Ok(()),
            Ok(Ok(status)) => last_problem = format!("GET /healthz answered {status}"),
            Ok(Err(problem)) => {
                if socket.exists() {
                    last_problem = problem;
                }
            }
            Err(_) => last_problem = "GET /healthz did not answer".to_string(),
        }
        if poll % STATE_CHECK_EVERY == STATE_CHECK_EVERY - 1 {
            let state = runc.state(container).await;
            if state != ContainerState::Running {
                return Err(format!("the container is {state:?} ({last_problem})"));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the agent was not healthy within {}s ({last_problem})",
                READY_DEADLINE.as_secs()
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    unreachable!("the poll loop only ends by returning")
}

/// One `GET /healthz` on a connected agent stream; returns the status code.
pub async fn healthz(stream: UnixStream) -> Result<u16, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get("/healthz")
        .header(http::header::HOST, "agent")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let result = sender
        .send_request(request)
        .await
        .map(|response| response.status().as_u16())
        .map_err(|e| format!("GET /healthz: {e}"));
    driver.abort();
    result
}
