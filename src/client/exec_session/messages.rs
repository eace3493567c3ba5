//! Applying the server's messages to a session: `started` answers the starter, output chunks
//! are trimmed by position so each byte is delivered once (and bytes the server no longer held
//! are counted), `exit` and `error` end the attachment.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Session;
use crate::api::exec::ServerMessage;
use crate::api::exec_frames::{self, OutputStream};
use crate::client::ClientError;
use crate::client::exec::ExecEvent;

impl Session {
    /// Apply one server message: the event to hand on, and whether the attachment is over.
    pub(super) fn handle(
        &mut self,
        msg: ServerMessage,
        failures: &mut u32,
    ) -> (Option<ExecEvent>, bool) {
        match msg {
            ServerMessage::Started { command_id, pid } => {
                *failures = 0;
                self.execute.command_id = Some(command_id.clone());
                if let Some(tx) = self.started.take() {
                    let _ = tx.send(Ok((command_id, pid)));
                }
                (None, false)
            }
            ServerMessage::Stdout { data, offset } => (self.fresh(0, data, offset), false),
            ServerMessage::Stderr { data, offset } => (self.fresh(1, data, offset), false),
            ServerMessage::Exit { exit_code } => (Some(ExecEvent::Exit(exit_code)), true),
            ServerMessage::Error { error_type, error } => {
                let error = ClientError::Exec {
                    error_type,
                    message: error,
                };
                match self.started.take() {
                    Some(tx) => {
                        let _ = tx.send(Err(error));
                        (None, true)
                    }
                    None => (Some(ExecEvent::Error(error)), true),
                }
            }
        }
    }

    /// Deliver a text chunk: whole on a running attachment; the first chunk of each stream
    /// after a re-attachment loses what overlaps output already delivered.
    pub(super) fn fresh(&mut self, stream: usize, data: String, offset: u64) -> Option<ExecEvent> {
        // A U+FFFD stands for 1–3 raw bytes: such a chunk's raw length is not its text's.
        let exact = !data.contains(char::REPLACEMENT_CHARACTER);
        let bytes = Bytes::from(data.into_bytes());
        let mut skip = self.skip_delivered(stream, offset, &bytes, exact);
        while bytes
            .get(skip)
            .is_some_and(|b| b & 0b1100_0000 == 0b1000_0000)
        {
            skip += 1; // a cut inside a U+FFFD: the rest of it was shown already
        }
        self.output_event(stream, bytes.slice(skip..))
    }

    /// Deliver a binary frame's raw bytes, by the same rule (cut anywhere: offsets are exact).
    /// `message` is the whole frame; the event shares its memory.
    pub(super) fn fresh_raw(
        &mut self,
        message: &Bytes,
        frame: exec_frames::OutputFrame<'_>,
    ) -> Option<ExecEvent> {
        let stream = match frame.stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        let skip = self.skip_delivered(stream, frame.offset, frame.bytes, true);
        let start = message.len() - frame.bytes.len() + skip;
        self.output_event(stream, message.slice(start..))
    }

    /// How many leading bytes of a chunk at `offset` were delivered already; counts the bytes
    /// the server skipped before it.
    fn skip_delivered(&mut self, stream: usize, offset: u64, data: &[u8], exact: bool) -> usize {
        if data.is_empty() {
            return 0; // says nothing about positions
        }
        let position = &mut self.positions[stream];
        let lost = position.lost_before(offset);
        if lost > 0 {
            // The server no longer held bytes we had not seen (its replay window moved on).
            self.lost[stream].fetch_add(lost, Ordering::Relaxed);
        }
        position.take(offset, data.len(), exact).min(data.len())
    }

    fn output_event(&self, stream: usize, bytes: Bytes) -> Option<ExecEvent> {
        if bytes.is_empty() {
            return None;
        }
        Some(if stream == 0 {
            ExecEvent::Stdout(bytes)
        } else {
            ExecEvent::Stderr(bytes)
        })
    }
}
