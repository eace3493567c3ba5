//! A command session: one process group, its stdin, two retained output streams, the
//! attachments reading them, and the final outcome. Sockets come and go; the session does not
//! depend on any of them.
//!
//! Flow control: a pump may drop retained bytes only below the slowest attached reader's cursor;
//! otherwise it waits for that reader (and the process blocks on its pipe). A reader with no
//! output to send waits for the next change. Both waits use `watch` channels subscribed *before*
//! the state is inspected, so no wake-up is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

pub use super::attachment::Attachment;
use super::leader::Leader;
use super::output::{Chunk, StreamBuffer};
use super::pty::PtyMaster;
use super::spawn::BoxedWriter;

/// The two output streams, used as an index into per-stream arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout = 0,
    Stderr = 1,
}

/// Output that follows other output of its stream within this time is *streaming*. Then the
/// pump lets a widened pipe fill this long between reads (`lifecycle`), and a binary
/// frame waits this long at most for a fuller chunk (`exec_ws`): a program that writes a
/// page at a time would otherwise cost a wake-up and a message per page at every hop. Output
/// after a pause still goes at once; streaming output is late by this much at most.
pub const STREAMING_GAP: std::time::Duration = std::time::Duration::from_millis(1);

impl From<StreamKind> for crate::api::exec_frames::OutputStream {
    fn from(kind: StreamKind) -> Self {
        match kind {
            StreamKind::Stdout => Self::Stdout,
            StreamKind::Stderr => Self::Stderr,
        }
    }
}

impl StreamKind {
    /// The stream's name on the wire (`stdout`, `stderr`).
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// How a finished session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Exit(i32),
    Error {
        /// One of the exec kinds of [`crate::api::error::kind`].
        error_type: &'static str,
        message: String,
    },
}

/// What an attachment delivers next: text chunks for the WebSocket, raw ones for SSE.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<C = Chunk> {
    Output(StreamKind, C),
    /// Every retained byte from the cursors was delivered; the session is over.
    Finished(Outcome),
}

/// Lifecycle knobs of `execute` (`None` = never).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub idle_timeout: Option<Duration>,
    pub kill_on_disconnect: bool,
    pub ttl: Option<Duration>,
}

pub struct Session {
    pub id: String,
    /// The leader, whose pid is also the process-group id.
    pub leader: Leader,
    pub policy: Policy,
    pub(super) state: Mutex<State>,
    /// Bumped on new output, end-of-file and finish: wakes attachments.
    pub(super) changed: watch::Sender<()>,
    /// Bumped when a reader advances or leaves: wakes pumps waiting for room.
    pub(super) progress: watch::Sender<()>,
    stdin: tokio::sync::Mutex<Option<BoxedWriter>>,
    /// Cancelled when the command has finished: an `input` still being written then is
    /// given up (see [`Session::release_input`]).
    input_released: tokio_util::sync::CancellationToken,
    /// Whether the command runs on a terminal (then stdin is the PTY master too).
    terminal: bool,
    /// The PTY master, for window-size changes; let go when the command finishes.
    pty: Mutex<Option<PtyMaster>>,
    /// The forwarded SSH agent (`ssh_agent_forward: true`), set right after the spawn.
    pub ssh_agent: std::sync::OnceLock<Arc<super::ssh_agent::AgentForward>>,
}

pub(super) struct State {
    pub(super) streams: [StreamBuffer; 2],
    /// Attachment id → cursors (stdout, stderr). Its length is the attachment count.
    pub(super) readers: HashMap<u64, [u64; 2]>,
    next_reader: u64,
    /// Bumped on every attach, so an idle timer can tell whether anyone came back meanwhile.
    attach_generation: u64,
    /// Offsets the SSE client last acknowledged: bytes from here on are kept
    /// even while no response is streaming, until the next attach replaces or releases them.
    pub(super) ack_hold: Option<[u64; 2]>,
    pub(super) outcome: Option<Outcome>,
}

impl Session {
    pub fn new(
        id: String,
        pid: u32,
        policy: Policy,
        retained_bytes: usize,
        stdin: Option<BoxedWriter>,
        pty: Option<PtyMaster>,
    ) -> Session {
        Session {
            id,
            leader: Leader::new(pid),
            policy,
            state: Mutex::new(State {
                streams: [
                    StreamBuffer::new(retained_bytes),
                    StreamBuffer::new(retained_bytes),
                ],
                readers: HashMap::new(),
                next_reader: 0,
                attach_generation: 0,
                ack_hold: None,
                outcome: None,
            }),
            changed: watch::Sender::new(()),
            progress: watch::Sender::new(()),
            stdin: tokio::sync::Mutex::new(stdin),
            input_released: tokio_util::sync::CancellationToken::new(),
            terminal: pty.is_some(),
            pty: Mutex::new(pty),
            ssh_agent: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pty(&self) -> MutexGuard<'_, Option<PtyMaster>> {
        self.pty
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_finished(&self) -> bool {
        self.lock().outcome.is_some()
    }

    pub fn attachment_count(&self) -> usize {
        self.lock().readers.len()
    }

    pub fn attach_generation(&self) -> u64 {
        self.lock().attach_generation
    }

    /// Attaches a reader at the requested offsets (clamped into the retained window). Any SSE
    /// acknowledgement hold is released: the newest reader decides what must be kept, and an
    /// SSE response re-establishes its hold right after attaching.
    pub fn attach(self: &Arc<Self>, stdout_offset: u64, stderr_offset: u64) -> Attachment {
        let mut state = self.lock();
        state.ack_hold = None;
        let cursors = [
            state.streams[0].clamp_cursor(stdout_offset),
            state.streams[1].clamp_cursor(stderr_offset),
        ];
        let id = state.next_reader;
        state.next_reader += 1;
        state.attach_generation += 1;
        state.readers.insert(id, cursors);
        drop(state);
        self.progress.send_replace(()); // a released hold may have made room
        Attachment::new(Arc::clone(self), id)
    }

    /// Appends process output, waiting while the retained window is full of bytes an attached
    /// reader still has to send.
    pub async fn push(&self, kind: StreamKind, mut data: &[u8]) {
        while !data.is_empty() {
            let mut room = self.progress.subscribe();
            let taken = {
                let mut state = self.lock();
                let keep_from = state
                    .readers
                    .values()
                    .chain(&state.ack_hold)
                    .map(|cursors| cursors[kind as usize])
                    .min()
                    .unwrap_or(u64::MAX);
                state.streams[kind as usize].append(data, keep_from)
            };
            if taken == 0 {
                let _ = room.changed().await;
                continue;
            }
            data = &data[taken..];
            self.changed.send_replace(());
        }
    }

    /// Keeps every byte from `cursors` on until the next acknowledgement (SSE `start` /
    /// `resume`). The latest acknowledgement wins, so it may also release held bytes.
    pub fn hold_for_ack(&self, cursors: [u64; 2]) {
        self.lock().ack_hold = Some(cursors);
        self.progress.send_replace(());
    }

    /// Lets go of the acknowledgement hold: what no reader still needs may be dropped.
    pub fn release_ack_hold(&self) {
        self.lock().ack_hold = None;
        self.progress.send_replace(());
    }

    pub fn ack_hold(&self) -> Option<[u64; 2]> {
        self.lock().ack_hold
    }

    /// Bytes retained per stream at most.
    pub fn retained_capacity(&self) -> usize {
        self.lock().streams[0].capacity()
    }

    pub fn mark_eof(&self, kind: StreamKind) {
        self.lock().streams[kind as usize].mark_eof();
        self.changed.send_replace(());
    }

    /// Records the outcome; called once both streams are at end-of-file. A forwarded SSH agent
    /// is removed first, under the lock [`super::ssh_agent_session::adopt`] checks, so whoever
    /// learns that the command ended knows its socket is gone.
    pub fn finish(&self, outcome: Outcome) {
        let mut state = self.lock();
        if let Some(forward) = self.ssh_agent.get() {
            forward.shutdown();
        }
        for stream in &mut state.streams {
            stream.mark_eof();
        }
        state.outcome.get_or_insert(outcome);
        drop(state);
        self.changed.send_replace(());
    }

    /// Waits until the session has finished (without attaching, so nothing is held back).
    pub async fn finished(&self) -> Outcome {
        loop {
            let mut changed = self.changed.subscribe();
            if let Some(outcome) = self.lock().outcome.clone() {
                return outcome;
            }
            let _ = changed.changed().await;
        }
    }

    /// The retained output of one stream, lossily decoded (the legacy one-shot answer).
    pub fn retained_text(&self, kind: StreamKind) -> String {
        let state = self.lock();
        let stream = &state.streams[kind as usize];
        let mut text = String::new();
        let mut cursor = stream.start();
        while let Some(chunk) = stream.chunk_at(cursor) {
            cursor = chunk.offset + chunk.raw_len as u64;
            text.push_str(&chunk.data);
        }
        text
    }

    /// The leader's pid, which is also the process-group id.
    pub fn pid(&self) -> u32 {
        self.leader.pid()
    }

    /// SIGKILLs the whole process group (no-op once the leader was reaped: the pid may be
    /// reused).
    pub fn kill(&self) {
        self.leader.kill_group();
    }

    /// Writes `input` to stdin or the PTY; silently ignored when stdin is closed. A write
    /// that waits for a reader when the command finishes is given up, and stdin closed.
    pub async fn write_input(&self, input: &[u8]) {
        let mut stdin = self.stdin.lock().await;
        if self.input_released.is_cancelled() {
            // The command has finished: what comes after is ignored, even queued before.
            *stdin = None;
        }
        let Some(writer) = stdin.as_mut() else {
            return;
        };
        let written = tokio::select! {
            biased;
            () = self.input_released.cancelled() => false,
            written = async {
                writer.write_all(input).await?;
                writer.flush().await
            } => written.is_ok(),
        };
        if !written {
            // The reader is gone, or the command: later input is ignored like after close.
            *stdin = None;
        }
    }

    /// Lets go of stdin and the terminal once the command has finished; `input` after that
    /// is ignored. For a pipe, only background children the command left can still read
    /// it, and they get end-of-file, as from a closed terminal. Kept for the session's whole
    /// TTL instead (ten minutes by default), each finished command's pipe counted against
    /// the sandbox user's pipe budget (`fs.pipe-user-pages-soft`, 1024 default pipes):
    /// after about a thousand commands in that time, every new pipe in the sandbox, its
    /// commands' output pipes included, got 8 KiB instead of 64 and could not be widened.
    /// After 1100 such commands, 200 MB of stdout through `exec` took 27.3 s instead of
    /// 0.29, and a 200 MB `head | cat` in the sandbox 0.75 s instead of 0.06. An `input`
    /// still being written (to a child that does not read) holds the lock: that write is
    /// given up, as what still holds stdin without reading it would keep it waiting for
    /// ever, and stdin goes right after.
    ///
    /// A PTY's master goes too, as when a terminal window closes: what still holds the
    /// terminal reads end-of-file. Pseudo-terminals are few and shared by every sandbox on
    /// the host (`kernel.pty.max`, 4096 by default, a quarter of them kept for the host
    /// itself), so one kept per finished console until its TTL would run them out.
    pub fn release_input(self: &Arc<Self>) {
        self.input_released.cancel();
        self.pty().take();
        match self.stdin.try_lock() {
            Ok(mut stdin) => {
                stdin.take();
            }
            Err(_) => {
                let session = Arc::clone(self);
                tokio::spawn(async move {
                    session.stdin.lock().await.take();
                });
            }
        }
    }

    /// Half-closes stdin; a PTY has no separate EOF (users send ^D), so it is left alone.
    pub async fn close_stdin(&self) {
        if !self.terminal {
            self.stdin.lock().await.take();
        }
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        if let Some(pty) = self.pty().as_ref()
            && cols > 0
            && rows > 0
        {
            let _ = pty.resize(cols, rows);
        }
    }

    /// Called when an attachment ends: applies `kill_on_disconnect` and the idle timer.
    pub(super) fn detach(self: &Arc<Self>, reader: u64) {
        let remaining = {
            let mut state = self.lock();
            state.readers.remove(&reader);
            state.readers.len()
        };
        self.progress.send_replace(());
        if remaining == 0 && !self.is_finished() {
            if self.policy.kill_on_disconnect {
                self.kill();
            } else if let Some(idle) = self.policy.idle_timeout {
                super::lifecycle::arm_idle_timer(Arc::clone(self), idle);
            }
        }
    }
}
