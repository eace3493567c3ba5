//! SSE exec responses proxied from an agent say goodbye when this server stops: the
//! response ends with an `error` event of type `ServerShuttingDown`, so the client
//! resumes from its cursors on the next server — the counterpart of the 1001 bridged
//! WebSockets get. The event is only ever put between two events, never inside one the agent
//! is still sending.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::watch;

use crate::api::error::kind;
use crate::server::activity::ActiveGuard;

/// Whether a response with these headers is an event stream.
pub fn is_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// `body` as the client's response body, ended with the goodbye once `going_away` turns true.
/// `active` is held until the body is done.
pub fn with_goodbye(
    body: hyper::body::Incoming,
    going_away: watch::Receiver<bool>,
    active: ActiveGuard,
) -> Body {
    let relay = Relay {
        upstream: body.into_data_stream(),
        going_away,
        tail: Tail::default(),
        stopping: false,
        done: false,
        _active: active,
    };
    Body::from_stream(futures_util::stream::unfold(relay, Relay::next))
}

struct Relay {
    upstream: http_body_util::BodyDataStream<hyper::body::Incoming>,
    going_away: watch::Receiver<bool>,
    tail: Tail,
    stopping: bool,
    done: bool,
    _active: ActiveGuard,
}

type Item = Result<Bytes, hyper::Error>;

impl Relay {
    async fn next(mut self) -> Option<(Item, Relay)> {
        if self.done {
            return None;
        }
        if !self.stopping {
            let frame = tokio::select! {
                frame = self.upstream.next() => Some(frame),
                Ok(_) = self.going_away.wait_for(|stopping| *stopping) => None,
            };
            match frame {
                Some(frame) => return self.forward(frame),
                None => self.stopping = true,
            }
        }
        if !self.tail.between_events() {
            // Finish the event in flight first; the agent sends each one whole.
            let frame = self.upstream.next().await;
            return self.forward(frame);
        }
        self.done = true;
        let goodbye = serde_json::json!({"error_type": kind::SERVER_SHUTTING_DOWN,
            "error": "the server is restarting; resume from your offsets"});
        let event = format!("event: error\ndata: {goodbye}\n\n");
        Some((Ok(Bytes::from(event)), self))
    }

    fn forward(mut self, frame: Option<Item>) -> Option<(Item, Relay)> {
        match frame {
            Some(Ok(bytes)) => {
                self.tail.push(&bytes);
                Some((Ok(bytes), self))
            }
            // The agent's error ends the response as it would have without this server.
            Some(Err(e)) => {
                self.done = true;
                Some((Err(e), self))
            }
            None => None,
        }
    }
}

/// The last two bytes relayed: an event (or a comment) ends with an empty line.
#[derive(Default)]
struct Tail {
    last: [u8; 2],
    any: bool,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        match bytes {
            [] => return,
            [only] => self.last = [self.last[1], *only],
            [.., a, b] => self.last = [*a, *b],
        }
        self.any = true;
    }

    fn between_events(&self) -> bool {
        !self.any || &self.last == b"\n\n"
    }
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn the_goodbye_waits_for_the_end_of_an_event_split_across_chunks() {
        let mut tail = Tail::default();
        assert!(tail.between_events(), "nothing sent yet");
        let mut seen = Vec::new();
        for chunk in [
            "event: stdout\ndata: {}\n",
            "\n",
            ": ping\n",
            "\n",
            "event: exit\n",
        ] {
            tail.push(chunk.as_bytes());
            tail.push(b"");
            seen.push(tail.between_events());
        }
        assert_eq!(seen, [false, true, false, true, false]);
    }
}
