//! `GET /execute/ws`: the WebSocket exec protocol. The first message starts or
//! re-attaches a session; afterwards one task reads control messages ([`super::control`], which
//! also answers pings) while this one streams output, so a slow socket back-pressures the session.
//! Output goes as JSON text, or in binary frames to a client that asked for them
//! ([`crate::api::exec_frames`]).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};

use super::app::AppState;
use super::registry::StartRequest;
use super::session::{Attachment, Event, Outcome, Policy, STREAMING_GAP, StreamKind};
use super::spawn::{Program, SpawnRequest};
use crate::api::error::kind;
use crate::api::exec::{ClientMessage, ExecuteMessage, ServerMessage, defaults};
use crate::api::exec_frames;

/// How long the control messages of a client that left are still read (see `serve_socket`).
const CONTROL_DRAIN: Duration = Duration::from_secs(2);

/// Binary output that follows the last frame within [`STREAMING_GAP`] is streaming: the next
/// frame waits (that long at most) until this much is ready. A program that writes a page at
/// a time (busybox `head`, `cat`) would otherwise cost a frame per page at every hop to the
/// client; output after a pause still goes at once.
const GATHER_BYTES: u64 = 64 * 1024;

pub async fn execute_ws(
    State(app): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let framing = match headers.get(exec_frames::OUTPUT_FRAMES_HEADER) {
        Some(value) if value == exec_frames::BINARY => Framing::Binary,
        _ => Framing::Json,
    };
    upgrade.on_upgrade(move |socket| serve_socket(app, socket, framing))
}

/// How output goes to this socket's client: the protocol's JSON text messages, or the binary
/// frames it asked for (see [`crate::api::exec_frames`]).
#[derive(Debug, Clone, Copy)]
enum Framing {
    Json,
    Binary,
}

/// A terminal failure before or instead of `started`.
pub(super) struct Refusal {
    pub error_type: &'static str,
    pub message: String,
}

fn refuse(error_type: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        error_type,
        message: message.into(),
    }
}

async fn serve_socket(app: AppState, socket: WebSocket, framing: Framing) {
    let _open = app.shutdown.stream_opened().await;
    let (mut sink, mut stream) = socket.split();
    // A connection that has said nothing yet (the server dials the next exec's ahead) is
    // dropped when the agent stops: it has nothing to be told, and must not hold the stop up.
    let first = tokio::select! {
        biased; // a message that has arrived is served, even as the agent stops
        first = next_client_message(&mut stream) => first,
        () = app.shutdown.stopping() => None,
    };
    let Some(first) = first else {
        return; // closed, or the agent stopping, before it said anything
    };
    let attached = match first {
        Some(ClientMessage::Execute(execute)) => start_or_attach(&app, execute),
        Some(ClientMessage::Reconnect {
            command_id,
            stdout_offset,
            stderr_offset,
        }) => match app.registry.get(&command_id) {
            Some(session) => Ok(session.attach(stdout_offset, stderr_offset)),
            None => Err(refuse(
                kind::COMMAND_NOT_FOUND,
                format!(
                    "command {command_id} not found (it never existed or its ttl_seconds expired)"
                ),
            )),
        },
        _ => Err(refuse(
            kind::INVALID_REQUEST,
            "the first message must be {\"type\":\"execute\",…} or {\"type\":\"reconnect\",…}",
        )),
    };
    let mut attachment = match attached {
        Ok(attachment) => attachment,
        Err(refusal) => {
            let error = ServerMessage::Error {
                error_type: refusal.error_type.to_string(),
                error: refusal.message,
            };
            let _ = send(&mut sink, &error).await;
            let _ = sink.send(close_normal()).await;
            return;
        }
    };
    let session = attachment.session().clone();
    let started = ServerMessage::Started {
        command_id: session.id.clone(),
        pid: Some(session.pid()),
    };
    if send(&mut sink, &started).await.is_err() {
        return;
    }
    let mut agent_route = super::ssh_agent_session::route_for(&session);
    let mut control = tokio::spawn(super::control::run(session, stream));
    let mut client_gone = false;
    let mut last_frame = None;
    loop {
        tokio::select! {
            frame = super::ssh_agent_session::next_frame(&mut agent_route) => {
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    client_gone = true;
                    break;
                }
            }
            (message, last) = next_message(&mut attachment, framing, &mut last_frame) => {
                if sink.send(message).await.is_err() {
                    client_gone = true;
                    break;
                }
                if last {
                    let _ = sink.send(close_normal()).await;
                    break;
                }
            }
            _ = &mut control => break, // the client went away
            () = app.shutdown.stopping() => {
                // The session lives on as long as the sandbox does; tell the client to
                // come back rather than leave it guessing.
                let _ = sink.send(close_going_away()).await;
                break;
            }
        }
    }
    if client_gone {
        // The client left, but what it sent before leaving may not be read yet: the official
        // SDK's `kill()` sends `kill` and drops the connection at once, and output written
        // meanwhile fails here first. The control task reads on to the socket's end.
        let _ = tokio::time::timeout(CONTROL_DRAIN, &mut control).await;
    }
    control.abort();
    drop(agent_route);
    // Detach before completing the close handshake: once the client sees the close, the
    // session has already applied `kill_on_disconnect` / the idle timer for this socket.
    drop(attachment);
    let _ = sink.close().await;
}

/// Starts the session named by `execute` (or finds it) and attaches from offset 0.
pub(super) fn start_or_attach(
    app: &AppState,
    execute: ExecuteMessage,
) -> Result<Attachment, Refusal> {
    let command_id = execute
        .command_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    if let Some(existing) = app.registry.get(&command_id) {
        return Ok(existing.attach(0, 0)); // idempotent start: never spawn twice
    }
    let forward_agent = execute.ssh_agent_forward.unwrap_or(false);
    let mut request = start_request(execute)?;
    let agent = forward_agent
        .then(|| super::ssh_agent_session::prepare(&mut request.spawn))
        .transpose()
        .map_err(|e| refuse(kind::SPAWN_FAILED, e.to_string()))?;
    let session = app
        .registry
        .get_or_start(&command_id, request)
        .map_err(|e| refuse(kind::SPAWN_FAILED, e.to_string()))?;
    if let Some(agent) = agent {
        super::ssh_agent_session::adopt(&session, agent);
    }
    Ok(session.attach(0, 0))
}

/// Validates an `execute` message and turns it into what the registry starts.
fn start_request(execute: ExecuteMessage) -> Result<StartRequest, Refusal> {
    let run_config = execute.run_config.unwrap_or_default();
    let legacy_given = execute.env.is_some() || execute.cwd.is_some();
    let run_config_given =
        run_config.user.is_some() || run_config.work_dir.is_some() || run_config.env_vars.is_some();
    if legacy_given && run_config_given {
        return Err(refuse(
            kind::INVALID_REQUEST,
            "pass either env/cwd or run_config, not both (env/cwd are the deprecated spelling)",
        ));
    }
    let pty = execute.pty.unwrap_or(false);
    if execute.command.is_none() && !pty {
        return Err(refuse(
            kind::INVALID_REQUEST,
            "`command` is required unless `pty` is true (an interactive shell)",
        ));
    }
    if let Some(dir) = &run_config.work_dir
        && !dir.starts_with('/')
    {
        return Err(refuse(
            kind::INVALID_REQUEST,
            format!("run_config.work_dir must be an absolute path, got {dir:?}"),
        ));
    }
    let mut env: BTreeMap<String, String> = execute.env.unwrap_or_default();
    env.extend(run_config.env_vars.unwrap_or_default());
    let spawn = SpawnRequest {
        program: Program::Shell {
            shell: execute.shell,
            command: execute.command,
        },
        env,
        cwd: execute.cwd.or(run_config.work_dir),
        user: run_config.user,
        stdin_pipe: pty || !execute.close_stdin.unwrap_or(false),
        pty,
    };
    let idle = execute
        .idle_timeout_seconds
        .unwrap_or(defaults::IDLE_TIMEOUT_SECONDS);
    let ttl = execute.ttl_seconds.unwrap_or(defaults::TTL_SECONDS);
    let timeout = execute.timeout_seconds.unwrap_or(defaults::TIMEOUT_SECONDS);
    Ok(StartRequest {
        spawn,
        policy: Policy {
            idle_timeout: seconds_unless_negative(idle),
            kill_on_disconnect: execute.kill_on_disconnect.unwrap_or(false),
            ttl: seconds_unless_negative(ttl),
        },
        timeout: (timeout > 0).then(|| Duration::from_secs(timeout as u64)),
    })
}

/// `-1` (any negative) means "never".
fn seconds_unless_negative(seconds: i64) -> Option<Duration> {
    u64::try_from(seconds).ok().map(Duration::from_secs)
}

/// The next message for this socket, and whether it is the terminal one. `last_frame`: when
/// the last binary frame went.
async fn next_message(
    attachment: &mut Attachment,
    framing: Framing,
    last_frame: &mut Option<tokio::time::Instant>,
) -> (Message, bool) {
    let (message, last) = match framing {
        Framing::Json => to_message(attachment.next().await),
        Framing::Binary => match next_raw_gathered(attachment, last_frame).await {
            Event::Output(kind, mut chunk) => {
                *last_frame = Some(tokio::time::Instant::now());
                exec_frames::write_header(&mut chunk.bytes, kind.into(), chunk.offset);
                return (Message::Binary(chunk.bytes.into()), false);
            }
            Event::Finished(outcome) => to_message(Event::Finished(outcome)),
        },
    };
    (text_message(&message), last)
}

/// The next raw chunk with room for a frame header; gathered first while output streams
/// (see [`GATHER_BYTES`]).
async fn next_raw_gathered(
    attachment: &mut Attachment,
    last_frame: &Option<tokio::time::Instant>,
) -> Event<super::output::RawChunk> {
    if let Some(at) = last_frame
        && at.elapsed() < STREAMING_GAP
    {
        let deadline = tokio::time::Instant::now() + STREAMING_GAP;
        attachment.gather(GATHER_BYTES, deadline).await;
    }
    attachment
        .next_raw(exec_frames::MAX_BINARY_CHUNK, exec_frames::HEADER_LEN)
        .await
}

/// The wire message for `event`, and whether it is the terminal one.
fn to_message(event: Event) -> (ServerMessage, bool) {
    match event {
        Event::Output(StreamKind::Stdout, chunk) => (
            ServerMessage::Stdout {
                data: chunk.data,
                offset: chunk.offset,
            },
            false,
        ),
        Event::Output(StreamKind::Stderr, chunk) => (
            ServerMessage::Stderr {
                data: chunk.data,
                offset: chunk.offset,
            },
            false,
        ),
        Event::Finished(Outcome::Exit(exit_code)) => (ServerMessage::Exit { exit_code }, true),
        Event::Finished(Outcome::Error {
            error_type,
            message,
        }) => (
            ServerMessage::Error {
                error_type: error_type.to_string(),
                error: message,
            },
            true,
        ),
    }
}

/// The next application message: `None` when the socket ended, `Some(None)` for a frame that
/// is not a valid client message.
pub(super) async fn next_client_message(
    stream: &mut SplitStream<WebSocket>,
) -> Option<Option<ClientMessage>> {
    loop {
        let parsed = match stream.next().await? {
            Ok(Message::Text(text)) => serde_json::from_str(text.as_str()).ok(),
            Ok(Message::Binary(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        };
        return Some(parsed);
    }
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: &ServerMessage,
) -> Result<(), axum::Error> {
    sink.send(text_message(message)).await
}

/// `message` as a JSON text frame. sonic-rs escapes a string 16 or 32 bytes at a time where
/// serde_json goes byte by byte: with 64 KiB of output per message, escaping was 40% of the
/// agent's CPU while it streamed, and the agent shares the machine's cores with the client.
/// The bytes are the same as serde_json's (see the test below).
fn text_message(message: &ServerMessage) -> Message {
    let text = sonic_rs::to_string(message).expect("server messages serialise");
    Message::Text(text.into())
}

fn close_going_away() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::AWAY,
        reason: "the sandbox agent is shutting down; reconnect".into(),
    }))
}

fn close_normal() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every control character, quotes, backslashes, DEL, multi-byte and 4-byte UTF-8, and a
    /// long run with escapes at both ends (the SIMD loop's edges): the frame is byte for byte
    /// what serde_json writes, so clients see exactly the JSON they saw before.
    #[test]
    fn output_frames_are_the_json_serde_json_writes() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        let long = format!("\"{}\\{}\u{7f}", "a".repeat(70_000), "é🦀".repeat(999));
        for data in [
            String::new(),
            controls,
            "quote \" backslash \\ slash / del \u{7f} é 🦀 \u{2028}".to_string(),
            long,
        ] {
            for message in [
                ServerMessage::Stdout {
                    data: data.clone(),
                    offset: u64::MAX,
                },
                ServerMessage::Stderr {
                    data: data.clone(),
                    offset: 0,
                },
                ServerMessage::Error {
                    error_type: "CommandTimeout".into(),
                    error: data.clone(),
                },
            ] {
                let Message::Text(text) = text_message(&message) else {
                    panic!("not a text frame");
                };
                assert_eq!(text.as_str(), serde_json::to_string(&message).unwrap());
            }
        }
    }
}
