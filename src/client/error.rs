//! Typed errors of the client core: HTTP answers (status, the server's `detail.error` type and
//! `detail.message`), transport failures, configuration problems, waits that time out or fail,
//! and terminal errors of a remote command.

use crate::api::error::kind;
use serde_json::Value;

/// Everything a client call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a status ≥ 400.
    #[error("HTTP {status}: {message}")]
    Http {
        status: u16,
        /// `detail.error` of the body, when the server sent one (e.g. `NotFound`).
        error_type: Option<String>,
        /// `detail.message`, or the raw body when it was not the standard envelope.
        message: String,
    },
    /// The request never got an HTTP answer (DNS, connect, TLS, timeout, broken socket).
    #[error("{0}")]
    Transport(String),
    /// Endpoint, key or local backend could not be resolved.
    #[error("{0}")]
    Config(String),
    /// A wait ran out of time, e.g. `timed out after 5m0s waiting for snapshot`.
    #[error("{0}")]
    Timeout(String),
    /// A wait saw a terminal failure, e.g. `snapshot build failed: …`.
    #[error("{0}")]
    Failed(String),
    /// A remote command ended with a terminal `error` message.
    #[error("{error_type}: {message}")]
    Exec { error_type: String, message: String },
    /// The server spoke something this client does not understand.
    #[error("{0}")]
    Protocol(String),
    /// A cause with the operation it interrupted, shown as `<context>: <cause>`.
    #[error("{context}: {source}")]
    Context {
        context: String,
        source: Box<ClientError>,
    },
}

impl ClientError {
    /// Wrap in an operation description (`getting sandbox`, `building snapshot`, …).
    pub fn context(self, context: impl Into<String>) -> Self {
        ClientError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The innermost error, without any context wrapping.
    pub fn root(&self) -> &ClientError {
        match self {
            ClientError::Context { source, .. } => source.root(),
            other => other,
        }
    }

    /// HTTP status of the root cause, if it was an HTTP answer.
    pub fn status(&self) -> Option<u16> {
        match self.root() {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short machine-readable type of the root cause (`NotFound`, `Transport`, `Timeout`, …).
    pub fn error_type(&self) -> String {
        match self.root() {
            ClientError::Http {
                error_type, status, ..
            } => error_type
                .clone()
                .unwrap_or_else(|| format!("Http{status}")),
            ClientError::Transport(_) => "Transport".into(),
            ClientError::Config(_) => "Config".into(),
            ClientError::Timeout(_) => "Timeout".into(),
            ClientError::Failed(_) => "Failed".into(),
            ClientError::Exec { error_type, .. } => error_type.clone(),
            ClientError::Protocol(_) => "Protocol".into(),
            ClientError::Context { .. } => unreachable!("root() never returns Context"),
        }
    }

    /// The human message of the root cause (the server's message for HTTP errors).
    pub fn message(&self) -> String {
        match self.root() {
            ClientError::Http { message, .. } => message.clone(),
            ClientError::Exec { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Build an HTTP error from a status and a response body.
    pub fn from_response(status: u16, body: &str) -> Self {
        let (error_type, message) = parse_error_body(body);
        ClientError::Http {
            status,
            error_type,
            message,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        // reqwest hides the useful part (connection refused, …) in the source chain.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        ClientError::Transport(text)
    }
}

/// Extract `(detail.error, message)` from an error body: the standard
/// `{"detail":{"error","message"}}`, a string `detail`, a FastAPI list `detail`, or a top-level
/// `error`/`message`; anything else is the trimmed raw body.
pub fn parse_error_body(body: &str) -> (Option<String>, String) {
    let raw = body.trim().to_string();
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return (None, raw);
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    match value.get("detail") {
        Some(Value::Object(detail)) => {
            let kind = text(detail.get("error"));
            let message = text(detail.get("message"))
                .or_else(|| kind.clone())
                .unwrap_or_else(|| Value::Object(detail.clone()).to_string());
            (kind, message)
        }
        Some(Value::String(s)) => (None, s.clone()),
        Some(Value::Array(items)) => {
            let messages: Vec<String> = items
                .iter()
                .map(|item| {
                    let msg = text(item.get("msg")).unwrap_or_else(|| item.to_string());
                    match item.get("loc").and_then(Value::as_array) {
                        Some(loc) => {
                            let path: Vec<String> = loc
                                .iter()
                                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                                .collect();
                            format!("{}: {msg}", path.join("."))
                        }
                        None => msg,
                    }
                })
                .collect();
            (Some(kind::VALIDATION_ERROR.into()), messages.join("; "))
        }
        _ => {
            let kind = text(value.get("error"));
            match text(value.get("message")) {
                Some(m) => (kind, m),
                None => (kind, raw),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_envelope_keeps_type_and_message() {
        let e = ClientError::from_response(
            404,
            r#"{"detail":{"error":"NotFound","message":"sandbox 'x' not found"}}"#,
        );
        assert_eq!(e.to_string(), "HTTP 404: sandbox 'x' not found");
        assert_eq!(e.error_type(), "NotFound");
        assert_eq!(e.status(), Some(404));
    }

    #[test]
    fn string_list_and_raw_bodies() {
        assert_eq!(
            parse_error_body(r#"{"detail":"nope"}"#),
            (None, "nope".into())
        );
        let (kind, msg) =
            parse_error_body(r#"{"detail":[{"loc":["body","name"],"msg":"field required"}]}"#);
        assert_eq!(kind.as_deref(), Some("ValidationError"));
        assert_eq!(msg, "body.name: field required");
        assert_eq!(
            parse_error_body(" bad gateway \n"),
            (None, "bad gateway".into())
        );
    }

    #[test]
    fn context_chains_display_and_keeps_root() {
        let e = ClientError::from_response(500, "boom").context("getting snapshot");
        assert_eq!(e.to_string(), "getting snapshot: HTTP 500: boom");
        assert_eq!(e.status(), Some(500));
        assert_eq!(e.message(), "boom");
    }
}
