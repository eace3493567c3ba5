//! `POST /execute/stream/start` and `/execute/stream/resume`: the SSE exec variant
//! over the same sessions as the WebSocket — same `command_id` get-or-create, offsets, error
//! types and lifetimes — but one-way: stdin is at EOF from spawn, and output is raw bytes in
//! base64, so chunks may be cut anywhere.
//!
//! Acknowledgement: the offsets of a `start` (0/0) or `resume` are what the client has; the
//! session keeps every byte from there on even between responses ([`Session::hold_for_ack`]),
//! so a broken response never loses output. When the retained window is full of bytes this
//! response already sent, the command would stall on them, so the response ends with
//! `ack_required` naming its cursors, and the client's immediate `resume` frees the room.
//! A client that never comes back leaves the command stalled on a full window (like a pipe
//! nobody reads) until `idle_timeout_seconds` kills it; a WebSocket that attaches meanwhile
//! releases the hold and reads on.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::app::{ApiError, AppState};
use super::exec_ws::start_or_attach;
use super::session::{Attachment, Event, Outcome, StreamKind};
use crate::api::error::kind;
use crate::api::exec::{
    ExecuteMessage, MAX_OUTPUT_CHUNK, SSE_HEARTBEAT_SECONDS, StreamResumeRequest,
};

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, kind::INVALID_REQUEST, message)
}

pub async fn start(
    State(app): State<AppState>,
    body: Result<Json<ExecuteMessage>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut execute) = body.map_err(|rejection| {
        invalid(format!(
            "expected {{\"command\": \"…\", \"command_id\": \"…\", …}}: {rejection}"
        ))
    })?;
    if execute.command.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(
            "`command` is required (the SSE variant has no interactive shell)".into(),
        ));
    }
    // What the one-way transport cannot offer, whatever the body says.
    execute.close_stdin = Some(true);
    execute.pty = None;
    execute.kill_on_disconnect = Some(false);
    execute.ssh_agent_forward = None;
    Ok(match start_or_attach(&app, execute) {
        Ok(attachment) => respond(app, attachment),
        // Refusals arrive as the same `error` the WebSocket would send, so the SDK raises the
        // same exception for either transport.
        Err(refusal) => sse_response(Body::from(error_event(
            refusal.error_type,
            &refusal.message,
        ))),
    })
}

pub async fn resume(
    State(app): State<AppState>,
    body: Result<Json<StreamResumeRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        invalid(format!(
            "expected {{\"command_id\": \"…\", \"stdout_offset\": 0, \"stderr_offset\": 0}}: {rejection}"
        ))
    })?;
    let session = app.registry.get(&request.command_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            kind::COMMAND_NOT_FOUND,
            format!(
                "command {} not found (it never existed or its ttl_seconds expired)",
                request.command_id
            ),
        )
    })?;
    let attachment = session.attach(request.stdout_offset, request.stderr_offset);
    Ok(respond(app, attachment))
}

/// Acknowledges the attachment's starting offsets and streams it as a response body.
fn respond(app: AppState, attachment: Attachment) -> Response {
    attachment.session().hold_for_ack(attachment.cursors());
    // A small queue: a slow client back-pressures the reader, and through it the command.
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(stream_events(app, attachment, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), rx))
    });
    sse_response(Body::from_stream(body))
}

fn sse_response(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// One SSE event: `event: <name>`, one `data:` line of JSON, a blank line.
fn event(name: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The terminal `error` event, with the fields of the WebSocket's `error` message.
fn error_event(error_type: &str, message: &str) -> Bytes {
    event("error", json!({"error_type": error_type, "error": message}))
}

/// Writes the events of one response until a terminal event, `ack_required`, shutdown, or the
/// client leaving. Dropping the attachment at the end detaches from the session.
async fn stream_events(app: AppState, mut attachment: Attachment, tx: mpsc::Sender<Bytes>) {
    let _open = app.shutdown.stream_opened().await;
    let session = std::sync::Arc::clone(attachment.session());
    let started = json!({"command_id": session.id, "pid": session.pid()});
    if tx.send(event("started", started)).await.is_err() {
        return;
    }
    let capacity = session.retained_capacity() as u64;
    let period = Duration::from_secs(SSE_HEARTBEAT_SECONDS);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let next = tokio::select! {
            next = attachment.next_raw(MAX_OUTPUT_CHUNK, 0) => next,
            _ = heartbeat.tick() => {
                if tx.send(Bytes::from_static(b": ping\n\n")).await.is_err() {
                    return;
                }
                continue;
            }
            () = app.shutdown.stopping() => {
                let goodbye = error_event(
                    kind::SERVER_SHUTTING_DOWN,
                    "the sandbox agent is shutting down; resume from your offsets",
                );
                let _ = tx.send(goodbye).await;
                return;
            }
            () = tx.closed() => return, // the client left while the command was quiet
        };
        match next {
            Event::Output(kind, chunk) => {
                let data = base64::engine::general_purpose::STANDARD.encode(&chunk.bytes);
                let payload = json!({"offset": chunk.offset, "data": data});
                if tx.send(event(kind.name(), payload)).await.is_err() {
                    return;
                }
                let cursors = attachment.cursors();
                let window_full = session
                    .ack_hold()
                    .is_some_and(|hold| (0..2).any(|k| cursors[k] >= hold[k] + capacity));
                if window_full {
                    let ack = json!({"stdout_offset": cursors[0], "stderr_offset": cursors[1]});
                    let _ = tx.send(event("ack_required", ack)).await;
                    return;
                }
            }
            Event::Finished(outcome) => {
                let ends = attachment.cursors();
                for kind in [StreamKind::Stdout, StreamKind::Stderr] {
                    let end = json!({"stream": kind.name(), "offset": ends[kind as usize]});
                    if tx.send(event("stream_end", end)).await.is_err() {
                        return;
                    }
                }
                let last = match outcome {
                    Outcome::Exit(exit_code) => event("exit", json!({"exit_code": exit_code})),
                    Outcome::Error {
                        error_type,
                        message,
                    } => error_event(error_type, &message),
                };
                let _ = tx.send(last).await;
                return;
            }
        }
    }
}
