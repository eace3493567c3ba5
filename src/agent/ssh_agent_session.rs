//! How a session uses SSH-agent forwarding: the forward is prepared before the spawn (its
//! socket path goes into `SSH_AUTH_SOCK`), adopted by the started session and removed when the
//! command ends, before anyone is told it ended; each attached socket gets a [`Route`] for the frames to send, and the control
//! loop hands the client's frames over.

use std::path::Path;
use std::sync::Arc;

use super::session::Session;
use super::spawn::SpawnRequest;
use super::ssh_agent::{AgentForward, Route, SshAgentError};
use super::user::resolve_user;
use crate::api::exec::ClientMessage;

/// Creates the forward for a command about to start and points its `SSH_AUTH_SOCK` at it.
pub fn prepare(spawn: &mut SpawnRequest) -> Result<Arc<AgentForward>, SshAgentError> {
    // An unknown user fails the spawn itself with a better message; the socket then stays
    // root's and is removed with the failed start.
    let owner = spawn
        .user
        .as_deref()
        .and_then(|spec| resolve_user(spec, Path::new("/")).ok())
        .map(|user| (user.uid, user.gid));
    let forward = AgentForward::create(owner)?;
    let path = forward.socket_path().to_string_lossy().into_owned();
    spawn.env.insert("SSH_AUTH_SOCK".into(), path);
    Ok(forward)
}

/// Ties `forward` to the session just started with it: attachments route through it and
/// [`Session::finish`] removes it. A command that already ended (before the forward was tied to
/// it) has it removed here; `set` precedes the locked check, so one of the two always sees the
/// other.
pub fn adopt(session: &Arc<Session>, forward: Arc<AgentForward>) {
    if session.ssh_agent.set(Arc::clone(&forward)).is_err() {
        return; // a racing start won: this forward was never handed to a process
    }
    if session.is_finished() {
        forward.shutdown();
    }
}

/// The route of `session`'s forwarded agent, if it has one.
pub fn route_for(session: &Session) -> Option<Route> {
    session.ssh_agent.get().map(|forward| forward.attach())
}

/// Waits for the next frame of an optional route (pending forever without one).
pub async fn next_frame(route: &mut Option<Route>) -> String {
    match route {
        Some(route) => route.next_frame().await,
        None => std::future::pending().await,
    }
}

/// Hands a client's agent frame to `session`'s forward (ignored without one).
pub fn from_client(session: &Session, message: ClientMessage) {
    if let Some(forward) = session.ssh_agent.get() {
        forward.apply_client_frame(message);
    }
}
