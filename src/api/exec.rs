//! Messages of the command-execution data plane.
//!
//! WebSocket `{dp}/execute/ws`: one JSON object per text frame, tagged by `type` (and, for a
//! client that asks, output in binary frames: [`super::exec_frames`]).
//! HTTP `POST {dp}/execute`: the legacy one-shot form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::models::RunConfig;

/// Client → server messages on `/execute/ws`.
// One message is decoded at a time per socket, so the size of the `execute` variant costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Start a command, or re-attach from offset 0 when `command_id` names a live session.
    Execute(ExecuteMessage),
    /// Attach to an existing session from byte offsets.
    Reconnect {
        command_id: String,
        #[serde(default)]
        stdout_offset: u64,
        #[serde(default)]
        stderr_offset: u64,
    },
    /// Bytes for the command's stdin (or the PTY master).
    Input { data: String },
    /// Half-close stdin.
    CloseStdin,
    /// SIGKILL the session's process group.
    Kill,
    /// Apply a PTY window size.
    Resize { cols: u16, rows: u16 },
    /// Bytes for one forwarded SSH-agent connection (base64 `data`, see [`super::ssh_agent`]).
    SshAgentData { channel_id: String, data: String },
    /// The client's end of one forwarded SSH-agent connection closed.
    SshAgentClose { channel_id: String },
    /// Unknown message types are ignored for forward compatibility.
    #[serde(other)]
    Unknown,
}

/// The `execute` message. Every field but `type` is optional on the wire; the defaults are
/// the official SDK's (`timeout_seconds` 60, `shell` `/bin/bash`, `idle_timeout_seconds` 300,
/// `ttl_seconds` 600).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecuteMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_on_disconnect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_config: Option<RunConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_stdin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_agent_forward: Option<bool>,
}

/// Server → client messages on `/execute/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message of every successful attachment.
    Started {
        command_id: String,
        pid: Option<u32>,
    },
    Stdout {
        data: String,
        offset: u64,
    },
    Stderr {
        data: String,
        offset: u64,
    },
    /// Terminal: the command ended and all its output was delivered.
    Exit {
        exit_code: i32,
    },
    /// Terminal: `CommandTimeout`, `CommandNotFound`, `SpawnFailed`, `InvalidRequest`, …
    Error {
        error_type: String,
        error: String,
    },
}

/// Default values the server applies when the client leaves a field out.
pub mod defaults {
    pub const SHELL: &str = "/bin/bash";
    pub const TIMEOUT_SECONDS: i64 = 60;
    pub const IDLE_TIMEOUT_SECONDS: i64 = 300;
    pub const TTL_SECONDS: i64 = 600;
}

/// Largest chunk of raw output put in one `stdout`/`stderr` message.
///
/// The spec recommends 64 KiB; 128 KiB is chosen instead because the official Python SDK
/// pays a fixed cost per message (its WebSocket reader thread, JSON call and generator
/// steps): from a loopback endpoint sending pre-built messages, it read 64 MiB of output at
/// 240–300 MB/s in 64 KiB messages and 340–360 MB/s in 128 KiB ones, with nothing more
/// gained above that. The bound that matters is the client's message limit: even a chunk
/// of nothing but control bytes, each escaped to six, stays under it (checked below).
pub const MAX_OUTPUT_CHUNK: usize = 128 * 1024;

/// The official Python SDK's limit on one received message (its `websockets` client's
/// default `max_size`): a larger one closes the connection with 1009, and the SDK then asks
/// for the same output again, forever.
pub const CLIENT_MESSAGE_LIMIT: usize = 1 << 20;

/// Most bytes one raw output byte becomes in a message: a control byte is written `\u00XX`
/// (an invalid UTF-8 byte becomes U+FFFD, three bytes, and is not escaped).
const WORST_ESCAPED_BYTE: usize = 6;

/// Room for the rest of an output message: `{"type":"stdout","data":"","offset":N}`.
const OUTPUT_MESSAGE_FRAME: usize = 64;

const _: () =
    assert!(MAX_OUTPUT_CHUNK * WORST_ESCAPED_BYTE + OUTPUT_MESSAGE_FRAME <= CLIENT_MESSAGE_LIMIT);

/// `command` of the legacy `POST /execute`: the SDK sends a shell string, the LangSmith CLI an argv
/// array (run without a shell).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    Shell(String),
    Argv(Vec<String>),
}

/// Body of the legacy `POST {dp}/execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteRequest {
    pub command: CommandSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Answer of the legacy `POST {dp}/execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResponse {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Body of `POST {dp}/execute/stream/resume` (SSE variant): where to continue, which
/// also acknowledges every byte below these offsets. The start body is an [`ExecuteMessage`]
/// without `type` (stdin is always at EOF there, and no PTY).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamResumeRequest {
    pub command_id: String,
    #[serde(default)]
    pub stdout_offset: u64,
    #[serde(default)]
    pub stderr_offset: u64,
}

/// Seconds between `: ping` comments on an idle SSE exec stream (the SDK gives up after 60).
pub const SSE_HEARTBEAT_SECONDS: u64 = 15;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_client_message_types_are_ignored() {
        let m: ClientMessage = serde_json::from_str(r#"{"type":"future","x":1}"#).unwrap();
        assert_eq!(m, ClientMessage::Unknown);
    }

    #[test]
    fn execute_message_round_trips_with_tag() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"execute","command":"echo hi","close_stdin":true}"#)
                .unwrap();
        match m {
            ClientMessage::Execute(e) => {
                assert_eq!(e.command.as_deref(), Some("echo hi"));
                assert_eq!(e.close_stdin, Some(true));
            }
            other => panic!("unexpected {other:?}"),
        }
        let s = serde_json::to_string(&ServerMessage::Exit { exit_code: 3 }).unwrap();
        assert_eq!(s, r#"{"type":"exit","exit_code":3}"#);
    }

    /// The worst chunk the agent can cut, all control bytes at the largest offset, fits in
    /// one message the official client accepts.
    #[test]
    fn the_most_escaped_chunk_fits_the_clients_message_limit() {
        let message = ServerMessage::Stderr {
            data: "\u{1}".repeat(MAX_OUTPUT_CHUNK),
            offset: u64::MAX,
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            text.len(),
            MAX_OUTPUT_CHUNK * WORST_ESCAPED_BYTE
                + r#"{"type":"stderr","data":"","offset":18446744073709551615}"#.len()
        );
        assert!(text.len() <= CLIENT_MESSAGE_LIMIT, "{} bytes", text.len());
    }

    #[test]
    fn legacy_command_accepts_string_and_argv() {
        let a: ExecuteRequest = serde_json::from_str(r#"{"command":["ls","-la"]}"#).unwrap();
        assert_eq!(
            a.command,
            CommandSpec::Argv(vec!["ls".into(), "-la".into()])
        );
        let b: ExecuteRequest = serde_json::from_str(r#"{"command":"ls -la"}"#).unwrap();
        assert_eq!(b.command, CommandSpec::Shell("ls -la".into()));
    }
}
