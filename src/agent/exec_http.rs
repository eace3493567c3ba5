//! `POST /execute`: the legacy one-shot execution. The command runs as an
//! unregistered session, so its output is retained with the same bounds as a WebSocket one,
//! and the answer carries whatever was retained once it finished.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;

use super::app::{ApiError, AppState};
use super::registry::StartRequest;
use super::session::{Outcome, Policy, Session, StreamKind};
use super::spawn::{Program, SpawnError, SpawnRequest};
use crate::api::error::kind;
use crate::api::exec::{CommandSpec, ExecuteRequest, ExecuteResponse, defaults};

pub async fn execute(
    State(app): State<AppState>,
    body: Result<Json<ExecuteRequest>, JsonRejection>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            kind::INVALID_REQUEST,
            format!("expected {{\"command\": \"…\" or [\"argv\", …]}}: {rejection}"),
        )
    })?;
    let program = match request.command {
        CommandSpec::Shell(command) => Program::Shell {
            shell: request.shell,
            command: Some(command),
        },
        CommandSpec::Argv(argv) => Program::Argv(argv),
    };
    let timeout = request.timeout.unwrap_or(defaults::TIMEOUT_SECONDS);
    let start = StartRequest {
        spawn: SpawnRequest {
            program,
            env: request.env.unwrap_or_default(),
            cwd: request.cwd,
            user: None,
            stdin_pipe: false,
            pty: false,
        },
        policy: Policy::default(),
        timeout: (timeout > 0).then(|| Duration::from_secs(timeout as u64)),
    };
    let id = uuid::Uuid::now_v7().simple().to_string();
    let session = match app.registry.start_unregistered(&id, start) {
        Ok(session) => session,
        Err(error) => return not_started(error),
    };
    // If the client gives up, the command must not outlive the request.
    let guard = KillUnlessFinished(session);
    let outcome = guard.0.finished().await;
    let response = ExecuteResponse {
        stdout: guard.0.retained_text(StreamKind::Stdout),
        stderr: guard.0.retained_text(StreamKind::Stderr),
        exit_code: match outcome {
            Outcome::Exit(code) => code,
            Outcome::Error {
                error_type,
                message,
            } if error_type == kind::COMMAND_TIMEOUT => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    kind::COMMAND_TIMEOUT,
                    message,
                ));
            }
            Outcome::Error { message, .. } => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    kind::COMMAND_ERROR,
                    message,
                ));
            }
        },
    };
    Ok(Json(response))
}

/// A program that cannot be found or executed answers like a shell would (127 / 126);
/// everything else is the caller's mistake (400), never a 5xx that would trigger a retry.
fn not_started(error: SpawnError) -> Result<Json<ExecuteResponse>, ApiError> {
    if let SpawnError::Io { program, source } = &error {
        let shell_like = match source.kind() {
            std::io::ErrorKind::NotFound => Some((127, "command not found")),
            std::io::ErrorKind::PermissionDenied => Some((126, "permission denied")),
            _ => None,
        };
        if let Some((exit_code, what)) = shell_like {
            return Ok(Json(ExecuteResponse {
                stdout: String::new(),
                stderr: format!("{program}: {what}\n"),
                exit_code,
            }));
        }
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        kind::COMMAND_ERROR,
        error.to_string(),
    ))
}

struct KillUnlessFinished(std::sync::Arc<Session>);

impl Drop for KillUnlessFinished {
    fn drop(&mut self) {
        self.0.kill();
    }
}
