//! One socket's cursor pair on a session: it yields the session's output from its own offsets,
//! alternating between the streams, and the outcome once everything was delivered. Dropping
//! it detaches from the session (which may then arm the idle timer or kill the command).

use std::sync::Arc;

use super::session::{Event, Session, State, StreamKind};

/// One socket's view of a session; detaches when dropped.
pub struct Attachment {
    session: Arc<Session>,
    id: u64,
    last_sent: StreamKind,
}

impl Attachment {
    pub(super) fn new(session: Arc<Session>, id: u64) -> Attachment {
        Attachment {
            session,
            id,
            last_sent: StreamKind::Stderr,
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The next chunk (alternating between streams that have output) or the final outcome.
    pub async fn next(&mut self) -> Event {
        loop {
            let mut changed = self.session.changed.subscribe();
            if let Some(event) = self.poll_event() {
                return event;
            }
            let _ = changed.changed().await;
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        let mut state = self.session.lock();
        let State {
            streams,
            readers,
            outcome,
            ..
        } = &mut *state;
        let cursors = readers.get_mut(&self.id)?;
        let order = match self.last_sent {
            StreamKind::Stdout => [StreamKind::Stderr, StreamKind::Stdout],
            StreamKind::Stderr => [StreamKind::Stdout, StreamKind::Stderr],
        };
        for kind in order {
            if let Some(chunk) = streams[kind as usize].chunk_at(cursors[kind as usize]) {
                cursors[kind as usize] = chunk.offset + chunk.raw_len as u64;
                self.last_sent = kind;
                drop(state);
                self.session.progress.send_replace(());
                return Some(Event::Output(kind, chunk));
            }
        }
        outcome.clone().map(Event::Finished)
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.session.detach(self.id);
    }
}
