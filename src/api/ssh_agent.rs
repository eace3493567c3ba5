//! The frames of SSH-agent forwarding on an exec socket (`ssh_agent_forward: true`).
//!
//! Every connection made to the agent socket inside the sandbox is one channel, named by the
//! sandbox's side. Each end sends what it reads from its side of a channel as `ssh_agent_data`
//! (base64, standard alphabet, padded; at most [`MAX_SSH_AGENT_CHUNK`] raw bytes per frame)
//! and `ssh_agent_close` once its side closed. The sandbox's frames are [`SshAgentMessage`];
//! the client answers with the same shapes as [`ClientMessage::SshAgentData`] and
//! [`ClientMessage::SshAgentClose`]. The agent and the client both frame with these helpers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::exec::ClientMessage;

/// Largest chunk of agent bytes put in one `ssh_agent_data` message (before base64).
pub const MAX_SSH_AGENT_CHUNK: usize = 16 * 1024;

/// Server → client frames of SSH-agent forwarding: one channel per connection made to the
/// agent socket inside the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SshAgentMessage {
    /// Bytes of one agent connection, base64.
    SshAgentData { channel_id: String, data: String },
    /// The sender's end of the connection closed.
    SshAgentClose { channel_id: String },
}

impl SshAgentMessage {
    /// The frame carrying one chunk (at most [`MAX_SSH_AGENT_CHUNK`] bytes) of a channel.
    pub fn data(channel_id: String, bytes: &[u8]) -> SshAgentMessage {
        SshAgentMessage::SshAgentData {
            channel_id,
            data: BASE64.encode(bytes),
        }
    }
}

/// The client sends the very same frames, as client messages.
impl From<SshAgentMessage> for ClientMessage {
    fn from(message: SshAgentMessage) -> ClientMessage {
        match message {
            SshAgentMessage::SshAgentData { channel_id, data } => {
                ClientMessage::SshAgentData { channel_id, data }
            }
            SshAgentMessage::SshAgentClose { channel_id } => {
                ClientMessage::SshAgentClose { channel_id }
            }
        }
    }
}

/// The bytes of an `ssh_agent_data` frame; `None` when `data` is not valid base64.
pub fn decode_data(data: &str) -> Option<Vec<u8>> {
    BASE64.decode(data.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_frame_alike() {
        let frame = SshAgentMessage::data("7".into(), b"\x00\x01agent");
        let text = serde_json::to_string(&ClientMessage::from(frame.clone())).unwrap();
        assert_eq!(text, serde_json::to_string(&frame).unwrap());
        assert_eq!(
            text,
            r#"{"type":"ssh_agent_data","channel_id":"7","data":"AAFhZ2VudA=="}"#
        );
        assert_eq!(decode_data("AAFhZ2VudA==").unwrap(), b"\x00\x01agent");
        assert_eq!(decode_data("not base64!"), None);
    }
}
