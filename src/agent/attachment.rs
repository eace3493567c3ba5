//! One socket's (or SSE response's) cursor pair on a session: it yields the session's output
//! from its own offsets, alternating between the streams, and the outcome once everything was
//! delivered. Dropping it detaches from the session (which may then arm the idle timer or
//! kill the command).

use std::sync::Arc;

use super::output::{Chunk, RawChunk, StreamBuffer};
use super::session::{Event, Session, State, StreamKind};

/// One reader's view of a session; detaches when dropped.
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

    /// Where this reader stands in (stdout, stderr): everything below was delivered.
    pub fn cursors(&self) -> [u64; 2] {
        let state = self.session.lock();
        state.readers.get(&self.id).copied().unwrap_or_default()
    }

    /// The next text chunk (split only at UTF-8 boundaries, alternating between streams that
    /// have output) or the final outcome.
    pub async fn next(&mut self) -> Event {
        self.next_with(|buffer, cursor| {
            let chunk: Chunk = buffer.chunk_at(cursor)?;
            let end = chunk.offset + chunk.raw_len as u64;
            Some((chunk, end))
        })
        .await
    }

    /// Like [`Attachment::next`], but raw bytes cut anywhere, at most `max` of them, after
    /// `headroom` bytes for the caller (the SSE variant's payloads, binary output frames).
    pub async fn next_raw(&mut self, max: usize, headroom: usize) -> Event<RawChunk> {
        self.next_with(|buffer, cursor| {
            let chunk = buffer.raw_at(cursor, max, headroom)?;
            let end = chunk.offset + (chunk.bytes.len() - headroom) as u64;
            Some((chunk, end))
        })
        .await
    }

    /// Waits until `bytes` of output are ready for this reader, or no more can come (both
    /// streams ended), or `deadline` passed, whichever comes first; returns at once if one
    /// already holds. Takes nothing: what is ready stays for [`Attachment::next_raw`]. (One
    /// stream's end is no reason to stop: a PTY's stderr ends as it starts, and a command
    /// may close either stream early, while the other still streams.)
    pub async fn gather(&self, bytes: u64, deadline: tokio::time::Instant) {
        let ready = || {
            let state = self.session.lock();
            let Some(cursors) = state.readers.get(&self.id) else {
                return true;
            };
            let pending: u64 = (0..2)
                .map(|k| state.streams[k].end().saturating_sub(cursors[k]))
                .sum();
            pending >= bytes || state.streams.iter().all(StreamBuffer::is_eof)
        };
        let gathered = async {
            loop {
                let mut changed = self.session.changed.subscribe();
                if ready() {
                    return;
                }
                let _ = changed.changed().await;
            }
        };
        let _ = tokio::time::timeout_at(deadline, gathered).await;
    }

    /// `take` cuts the next chunk at a cursor and says where it ends.
    async fn next_with<C>(
        &mut self,
        take: impl Fn(&StreamBuffer, u64) -> Option<(C, u64)>,
    ) -> Event<C> {
        loop {
            let mut changed = self.session.changed.subscribe();
            if let Some(event) = self.poll_event(&take) {
                return event;
            }
            let _ = changed.changed().await;
        }
    }

    fn poll_event<C>(
        &mut self,
        take: &impl Fn(&StreamBuffer, u64) -> Option<(C, u64)>,
    ) -> Option<Event<C>> {
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
            if let Some((chunk, end)) = take(&streams[kind as usize], cursors[kind as usize]) {
                cursors[kind as usize] = end;
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
