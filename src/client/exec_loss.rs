//! How an attachment lost its socket, and the words the user reads for it.
//!
//! A session that re-attaches reports only the loss that made it give up, plainly (the command
//! may well still run). A session with a single attachment
//! ([`super::ExecOptions::kill_on_disconnect`], the interactive console) says where the socket
//! broke — while dialing, before the shell started, or while it ran — since the shell is gone
//! with it and that is all the user will learn.

use tokio_tungstenite::tungstenite::{self, protocol::CloseFrame};

use super::ClientError;

/// Why one attachment ended without a terminal message.
#[derive(Debug)]
pub(super) enum Loss {
    /// The dial failed: refused with a status, a bad URL or key, or no answer.
    Connect(ClientError),
    Write(tungstenite::Error),
    Read(tungstenite::Error),
    /// The server closed the socket (with this frame, if it sent one) or the stream ended.
    Closed(Option<CloseFrame>),
}

impl Loss {
    /// In the words of a session that re-attaches.
    pub fn retried(self) -> ClientError {
        match self {
            Loss::Connect(e) => e,
            Loss::Write(e) | Loss::Read(e) => ClientError::Transport(e.to_string()),
            Loss::Closed(_) => {
                ClientError::Transport("connection closed before the command ended".into())
            }
        }
    }

    /// In the words of a single-attachment session; `started`: the shell had started.
    pub fn single(self, started: bool) -> ClientError {
        let transport = ClientError::Transport;
        match (self, started) {
            (Loss::Connect(e), _) => connect_error(e),
            (Loss::Write(e), false) => transport(e.to_string()).context("send execute"),
            (Loss::Read(e), false) => transport(e.to_string()).context("read start"),
            (Loss::Closed(_), false) => {
                transport("the server closed the connection".into()).context("read start")
            }
            (Loss::Write(e), true) => transport(format!("websocket write: {e}")),
            (Loss::Read(e), true) => transport(format!("websocket read: {e}")),
            (Loss::Closed(frame), true) => closed_early(frame),
        }
    }
}

/// A failed dial in the LangSmith CLI's words: `websocket connect (<status>): …` for a refusal,
/// `websocket connect: …` when no answer came; a bad URL or key stays as it is.
fn connect_error(e: ClientError) -> ClientError {
    match (&e, e.status()) {
        (ClientError::Config(_), _) => e,
        (_, Some(status)) => e.context(format!("websocket connect ({status})")),
        (_, None) => e.context("websocket connect"),
    }
}

/// The socket ended without `exit`: the sandbox went away (stopped, deleted) or the
/// connection broke. The close code and reason say which, when the server gave them.
fn closed_early(frame: Option<CloseFrame>) -> ClientError {
    let detail = match frame {
        Some(frame) if !frame.reason.is_empty() => format!(" ({}: {})", frame.code, frame.reason),
        Some(frame) => format!(" ({})", frame.code),
        None => String::new(),
    };
    ClientError::Transport(format!(
        "websocket closed before the shell exited{detail}; check the sandbox with: \
         langsmith sandbox get NAME"
    ))
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    use super::*;

    #[test]
    fn a_failed_dial_reads_as_the_spec_words_it() {
        let refused = Loss::Connect(ClientError::from_response(403, "forbidden"));
        assert_eq!(
            refused.single(false).to_string(),
            "websocket connect (403): HTTP 403: forbidden"
        );
        let unreachable = Loss::Connect(ClientError::Transport("connection refused".into()));
        assert_eq!(
            unreachable.single(false).to_string(),
            "websocket connect: connection refused"
        );
        let bad_key = Loss::Connect(ClientError::Config("API key is not valid".into()));
        assert_eq!(bad_key.single(false).to_string(), "API key is not valid");
    }

    #[test]
    fn a_shell_cut_off_says_how_and_a_reattaching_session_says_it_plainly() {
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: "sandbox deleted".into(),
        };
        assert_eq!(
            Loss::Closed(Some(frame)).single(true).to_string(),
            "websocket closed before the shell exited (1001: sandbox deleted); \
             check the sandbox with: langsmith sandbox get NAME"
        );
        assert_eq!(
            Loss::Closed(None).single(false).to_string(),
            "read start: the server closed the connection"
        );
        assert_eq!(
            Loss::Closed(None).retried().to_string(),
            "connection closed before the command ended"
        );
    }
}
