//! Applying the server's messages to a session: `started` answers the starter, output chunks
//! are trimmed by position so each byte is delivered once (and bytes the server no longer held
//! are counted), `exit` and `error` end the attachment.

use std::sync::atomic::Ordering;

use super::Session;
use crate::api::exec::ServerMessage;
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

    /// Deliver a chunk: whole on a running attachment; the first chunk of each stream after a
    /// re-attachment loses what overlaps output already delivered.
    pub(super) fn fresh(&mut self, stream: usize, data: String, offset: u64) -> Option<ExecEvent> {
        if data.is_empty() {
            return None; // says nothing about positions
        }
        let position = &mut self.positions[stream];
        let lost = position.lost_before(offset);
        if lost > 0 {
            // The server no longer held bytes we had not seen (its replay window moved on).
            self.lost[stream].fetch_add(lost, Ordering::Relaxed);
        }
        let mut skip = position.take(offset, &data).min(data.len());
        while !data.is_char_boundary(skip) {
            skip += 1; // a cut inside a U+FFFD: the rest of it was shown already
        }
        if skip == data.len() {
            return None;
        }
        let fresh = if skip == 0 {
            data
        } else {
            data[skip..].to_string()
        };
        Some(if stream == 0 {
            ExecEvent::Stdout(fresh)
        } else {
            ExecEvent::Stderr(fresh)
        })
    }
}
