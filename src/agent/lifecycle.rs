//! What happens to a session over time: pumping the pipes into the retained buffers, waiting
//! for the leader (reaping it only once the output is in), the wall-clock timeout, the
//! end-of-output grace for background children, the idle timer, and expiry of finished
//! sessions after their TTL.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::leader::{Leader, exited};
use super::session::{Outcome, Policy, STREAMING_GAP, Session, StreamKind};
use super::spawn::{BoxedReader, Spawned, exit_code};
use crate::api::error::kind;

/// After the leader exits, how long background children may keep the pipes open.
pub const EOF_GRACE: Duration = Duration::from_secs(1);

/// Starts supervising `spawned` as session `id`. `on_expired` runs when a finished session's
/// TTL elapses (the registry forgets it then). `keep_for_first_reader`: every byte is kept
/// (the command waiting on its pipe once the window is full) until a reader attaches.
pub fn start(
    id: String,
    spawned: Spawned,
    policy: Policy,
    timeout: Option<Duration>,
    retained_bytes: usize,
    keep_for_first_reader: bool,
    on_expired: impl FnOnce(&Arc<Session>) + Send + 'static,
) -> Arc<Session> {
    let Spawned {
        mut child,
        pid,
        stdin,
        stdout,
        stdout_wide,
        stderr,
        pty,
    } = spawned;
    let session = Arc::new(Session::new(id, pid, policy, retained_bytes, stdin, pty));
    if keep_for_first_reader {
        // Before the pumps start: a command that writes more than the window at once
        // (`seq`, `cat` of a file) could otherwise have its first bytes dropped before its
        // client attaches a moment later. The first attach lets go of this hold.
        session.hold_for_ack([0, 0]);
    }
    // `None` until the leader exits, then the instant after which pipes are no longer awaited.
    let (deadline_tx, deadline_rx) = watch::channel(None::<Instant>);
    let mut pumps = vec![tokio::spawn(pump(
        Arc::clone(&session),
        StreamKind::Stdout,
        stdout,
        stdout_wide,
        deadline_rx.clone(),
    ))];
    match stderr {
        Some(stderr) => pumps.push(tokio::spawn(pump(
            Arc::clone(&session),
            StreamKind::Stderr,
            stderr,
            false,
            deadline_rx,
        ))),
        None => session.mark_eof(StreamKind::Stderr),
    }

    let supervised = Arc::clone(&session);
    tokio::spawn(async move {
        let session = supervised;
        let timed_out = leader_exit(&session.leader, timeout).await;
        deadline_tx.send_replace(Some(Instant::now() + EOF_GRACE));
        for pump in pumps {
            let _ = pump.await;
        }
        // Reaped only now: until here a kill still reaches background children that hold the
        // pipes, through a group id the unreaped leader keeps from being reused.
        let status = session.leader.reap(&mut child).await;
        let outcome = match (timed_out, status) {
            (true, _) => Outcome::Error {
                error_type: kind::COMMAND_TIMEOUT,
                message: format!(
                    "Command timed out after {} seconds",
                    timeout.unwrap_or_default().as_secs()
                ),
            },
            (false, Ok(status)) => Outcome::Exit(exit_code(status)),
            (false, Err(e)) => Outcome::Error {
                error_type: kind::COMMAND_ERROR,
                message: format!("could not wait for the command: {e}"),
            },
        };
        // Before `finish`: a client that reads `exit` finds stdin and the terminal gone.
        session.release_input();
        session.finish(outcome);
        if let Some(ttl) = session.policy.ttl {
            tokio::time::sleep(ttl).await;
            on_expired(&session);
        }
    });
    session
}

/// Waits until the leader has exited (left unreaped), killing its group when `timeout` runs
/// out first. Answers whether it timed out.
async fn leader_exit(leader: &Leader, timeout: Option<Duration>) -> bool {
    let Some(limit) = timeout else {
        exited(leader.pid()).await;
        return false;
    };
    let exit = exited(leader.pid());
    tokio::pin!(exit);
    tokio::select! {
        () = &mut exit => false,
        () = tokio::time::sleep(limit) => {
            leader.kill_group();
            exit.await;
            // Members forked between the first kill and the leader's death are caught here.
            leader.kill_group();
            true
        }
    }
}

/// Copies one pipe into the session until EOF, or until the grace deadline after the leader's
/// exit passes while waiting for bytes (a background child still holds the pipe). A `wide`
/// pipe (1 MiB) is let fill between reads while output streams; any other waits for
/// nothing, as a pause would cap it at its size per pause: 64 KiB a millisecond for
/// stderr, which took 4 s for 200 MB against 0.3 s on stdout, and 8 KiB for a pipe made
/// past the sandbox user's pipe budget, 200 MB in 27 s.
async fn pump(
    session: Arc<Session>,
    kind: StreamKind,
    mut pipe: BoxedReader,
    wide: bool,
    mut deadline: watch::Receiver<Option<Instant>>,
) {
    // As large as a binary output frame, so a busy stream moves in few reads.
    let mut buf = vec![0u8; crate::api::exec_frames::MAX_BINARY_CHUNK];
    let mut last_read = None;
    let mut streaming = false;
    loop {
        if streaming {
            // A writer that gives a page at a time (busybox `head`, `cat`) would wake this
            // task for every page, and pay for each wake-up itself: let its pipe fill a moment.
            tokio::select! {
                () = tokio::time::sleep(STREAMING_GAP) => {}
                () = grace_elapsed(&mut deadline) => break,
            }
        }
        let read = tokio::select! {
            read = pipe.read(&mut buf) => read,
            () = grace_elapsed(&mut deadline) => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Output streams when a short read follows the last one within STREAMING_GAP:
                // the next read then waits that long. A full buffer means this task is behind
                // anyway. The wait follows a push, so it delays only output written meanwhile;
                // as it counts into the next gap, reads alternate between waiting and not.
                let now = Instant::now();
                streaming = wide
                    && n < buf.len()
                    && last_read.is_some_and(|at: Instant| now.duration_since(at) < STREAMING_GAP);
                last_read = Some(now);
                session.push(kind, &buf[..n]).await
            }
        }
    }
    session.mark_eof(kind);
}

async fn grace_elapsed(deadline: &mut watch::Receiver<Option<Instant>>) {
    let Ok(at) = deadline.wait_for(Option::is_some).await.map(|d| *d) else {
        return std::future::pending().await; // supervisor gone: only EOF ends the pump
    };
    tokio::time::sleep_until(at.expect("waited for Some")).await;
}

/// Kills `session` if nobody attaches within `idle` from now.
pub fn arm_idle_timer(session: Arc<Session>, idle: Duration) {
    let generation = session.attach_generation();
    tokio::spawn(async move {
        tokio::time::sleep(idle).await;
        if session.attach_generation() == generation && session.attachment_count() == 0 {
            session.kill();
            // Nobody came back for the output an SSE client left unacknowledged: let it go,
            // or the pumps would wait for room for ever, and the session never finish nor
            // expire (keeping up to two windows of output in memory).
            session.release_ack_hold();
        }
    });
}
