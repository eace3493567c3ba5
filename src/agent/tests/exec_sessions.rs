//! Session semantics on `/execute/ws`: idempotent start, reconnect with offsets, timeouts,
//! kill, and kill-on-disconnect.

use std::sync::Arc;

use serde_json::json;

use super::process_groups::terminates;
use super::{TestAgent, Transcript, error_type, execute, exit, release_fifo};
use crate::api::exec::ServerMessage;

fn reconnect(command_id: &str, stdout_offset: u64, stderr_offset: u64) -> serde_json::Value {
    json!({"type": "reconnect", "command_id": command_id,
           "stdout_offset": stdout_offset, "stderr_offset": stderr_offset})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_an_execute_attaches_instead_of_spawning_again() {
    let agent = TestAgent::start().await;
    let log = agent.path("runs.log");
    let message = execute(&format!("echo run >> '{log}'; echo done"));
    let mut first = agent.ws().await;
    first.send(message.clone()).await;
    let a = first.transcript().await;
    let mut second = agent.ws().await;
    second.send(message).await;
    let b = second.transcript().await;
    assert_eq!((a.command_id, a.pid), (b.command_id, b.pid));
    assert_eq!((b.stdout.as_str(), b.first_offsets[0]), ("done\n", Some(0)));
    assert_eq!(b.terminal, exit(0));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "run\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_replays_from_the_requested_offsets_clamped() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    ws.send(execute("printf 'line1\\nline2\\n'; printf 'e' >&2; exit 4"))
        .await;
    let id = ws.transcript().await.command_id;

    let mut again = agent.ws().await;
    again.send(reconnect(&id, 6, 0)).await;
    let t = again.transcript().await;
    assert_eq!(
        (t.stdout.as_str(), t.first_offsets[0]),
        ("line2\n", Some(6))
    );
    assert_eq!((t.stderr.as_str(), t.terminal), ("e", exit(4)));

    let mut beyond = agent.ws().await;
    beyond.send(reconnect(&id, 1_000, 1_000)).await;
    let t = beyond.transcript().await;
    assert_eq!((t.stdout.as_str(), t.stderr.as_str()), ("", ""));
    assert_eq!(t.terminal, exit(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_session_resumes_on_a_new_socket_without_duplicates() {
    let agent = TestAgent::start().await;
    let mut message = execute("echo first; read x; echo second");
    message.as_object_mut().unwrap().remove("close_stdin");
    let id = message["command_id"].as_str().unwrap().to_string();
    let mut ws = agent.ws().await;
    ws.send(message).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    let first = ws.recv().await;
    assert_eq!(
        first,
        Some(ServerMessage::Stdout {
            data: "first\n".into(),
            offset: 0
        })
    );
    drop(ws); // abrupt loss, as after a network failure

    let mut resumed = agent.ws().await;
    resumed.send(reconnect(&id, 6, 0)).await;
    assert!(
        matches!(resumed.recv().await, Some(ServerMessage::Started { command_id, .. }) if command_id == id)
    );
    resumed.send(json!({"type": "input", "data": "\n"})).await;
    let mut t = Transcript::default();
    resumed.read_to_end(&mut t).await;
    assert_eq!(
        (t.stdout.as_str(), t.first_offsets[0]),
        ("second\n", Some(6))
    );
    assert_eq!(t.terminal, exit(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_to_an_unknown_id_is_command_not_found() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    ws.send(reconnect("deadbeef", 0, 0)).await;
    assert_eq!(error_type(&ws.recv().await), "CommandNotFound");
    assert!(ws.recv().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_group_and_ends_with_command_timeout() {
    let agent = TestAgent::start().await;
    let mut message = execute("sleep 300 & echo $!; wait");
    message["timeout_seconds"] = json!(1);
    let mut ws = agent.ws().await;
    ws.send(message).await;
    let t = ws.transcript().await;
    assert_eq!(error_type(&t.terminal), "CommandTimeout");
    let background: u32 = t.stdout.trim().parse().unwrap();
    assert!(terminates(t.pid), "the leader survived");
    assert!(terminates(background), "the background child survived");

    let mut again = agent.ws().await; // a timed-out session replays its output and the error
    again.send(reconnect(&t.command_id, 0, 0)).await;
    let replay = again.transcript().await;
    assert_eq!(replay.stdout, t.stdout);
    assert_eq!(error_type(&replay.terminal), "CommandTimeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_the_command_with_137() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    ws.send(execute("sleep 300")).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    ws.send(json!({"type": "kill"})).await;
    let mut t = Transcript::default();
    ws.read_to_end(&mut t).await;
    assert_eq!(t.terminal, exit(137));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_on_disconnect_kills_when_the_last_socket_leaves() {
    let agent = TestAgent::start().await;
    let mut message = execute("sleep 300");
    message["kill_on_disconnect"] = json!(true);
    let id = message["command_id"].as_str().unwrap().to_string();
    let mut ws = agent.ws().await;
    ws.send(message).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    ws.close().await; // returns once the server has detached and answered the close

    let mut again = agent.ws().await;
    again.send(reconnect(&id, 0, 0)).await;
    assert_eq!(again.transcript().await.terminal, exit(137));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_is_honoured_while_stdin_writes_are_blocked() {
    let agent = TestAgent::start().await;
    let mut message = execute("sleep 300"); // never reads its stdin
    message.as_object_mut().unwrap().remove("close_stdin");
    let mut ws = agent.ws().await;
    ws.send(message).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    let block = "x".repeat(256 * 1024); // far more than a pipe holds
    ws.send(json!({"type": "input", "data": block})).await;
    ws.send(json!({"type": "kill"})).await;
    let mut t = Transcript::default();
    ws.read_to_end(&mut t).await;
    assert_eq!(t.terminal, exit(137));
}

/// A finished command's stdin is let go at once: a background child still reading it gets
/// end-of-file, rather than when the finished session expires (`ttl_seconds`, here ten
/// minutes). Each pipe held until then counted against the sandbox's pipe budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_commands_stdin_ends_for_what_still_reads_it() {
    let agent = TestAgent::start().await;
    let fifo = agent.fifo("stdin-ended");
    // The background reader takes a copy of stdin as descriptor 3 (an asynchronous list's own
    // stdin is /dev/null) and no copy of stdout or stderr, so the command finishes as soon
    // as the shell exits; it says so through the FIFO once its copy of stdin ends.
    let mut message = execute(&format!(
        "exec 3<&0; (cat <&3 >/dev/null; echo ended > '{fifo}') >/dev/null 2>&1 & exit 0"
    ));
    message["close_stdin"] = json!(false);
    expect_input_to_end_after(&agent, message, &fifo, "stdin").await;
}

/// A finished console's terminal closes at once, as a terminal window does: a background
/// child still reading it gets end-of-file, rather than when the finished session expires
/// (here ten minutes). Each PTY held until then counted against the host's few, which every
/// sandbox shares (`kernel.pty.max`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_commands_terminal_closes_for_what_still_reads_it() {
    let agent = TestAgent::start().await;
    let fifo = agent.fifo("terminal-closed");
    // Without job control the background child is in the shell's (foreground) group, which
    // the shell's exit hangs up: it inherits the shell's ignoring that, set before it
    // starts. It keeps a copy of the terminal as descriptor 3 only.
    let mut message = execute(&format!(
        "trap '' HUP; exec 3<&0; (cat <&3 >/dev/null; echo ended > '{fifo}') >/dev/null 2>&1 & exit 0"
    ));
    message["pty"] = json!(true);
    message.as_object_mut().unwrap().remove("close_stdin");
    expect_input_to_end_after(&agent, message, &fifo, "terminal").await;
}

/// An `input` still waiting for a reader when the command ends is given up, and stdin goes.
/// A client that left with its input waiting had the write go on in the background, and a
/// background child that holds stdin without reading it kept that write waiting, and the
/// pipe (or a terminal) open, for as long as it lived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_still_waiting_when_the_command_ends_is_given_up() {
    let agent = TestAgent::start().await;
    let (go, done) = (agent.fifo("go"), agent.fifo("done"));
    // Whatever happens, the shell and the background child are let go at the end.
    let _release = ReleaseFifos(vec![go.clone(), done.clone()]);
    let named = agent.path("stdin-pipe");
    // The background child keeps a copy of stdin as descriptor 3, names that pipe, never
    // reads it and waits to be told to end; the shell ends when told.
    let mut message = execute(&format!(
        "exec 3<&0; (readlink /proc/self/fd/3 > '{named}.part' && mv '{named}.part' '{named}'; \
          read x < '{done}') >/dev/null 2>&1 & read x < '{go}'; exit 0"
    ));
    message["close_stdin"] = json!(false);
    let mut ws = agent.ws().await;
    ws.send(message).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    // The agent runs in this process: its end of the pipe is one of our descriptors.
    let (pipe, writer) = tokio::task::spawn_blocking(move || {
        let pipe = wait_until("the child names its stdin", || {
            std::fs::read_to_string(&named).ok()
        });
        let pipe = pipe.trim().to_string();
        let writer = wait_until("the agent's end of stdin", || descriptor_of(&pipe));
        (pipe, writer)
    })
    .await
    .unwrap();
    // SAFETY: an fcntl query on a descriptor the agent keeps open meanwhile.
    let capacity = unsafe { libc::fcntl(writer, libc::F_GETPIPE_SZ) };
    assert!(capacity > 0, "{}", std::io::Error::last_os_error());
    let input = "x".repeat(4 * capacity as usize);
    ws.send(json!({"type": "input", "data": input})).await;
    let named_pipe = pipe.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "the input to fill the pipe, so that its write waits",
            || {
                let mut queued: libc::c_int = 0;
                // SAFETY: an ioctl query on a descriptor the agent keeps open meanwhile
                // (checked by name after it, as the number could otherwise have been reused).
                unsafe { libc::ioctl(writer, libc::FIONREAD, &mut queued) };
                (queued >= capacity && descriptor_of(&named_pipe) == Some(writer)).then_some(())
            },
        )
    })
    .await
    .unwrap();
    // The client leaves: its input still waiting goes on in the background.
    drop(ws);
    let shell = go.clone();
    tokio::task::spawn_blocking(move || std::fs::write(shell, "\n"))
        .await
        .unwrap()
        .unwrap();
    let released = tokio::task::spawn_blocking(move || {
        wait_until("the agent to let go of stdin", || {
            descriptor_of(&pipe).is_none().then_some(())
        })
    });
    released.await.unwrap();
}

/// Lets go of whatever waits on these FIFOs when dropped (see [`release_fifo`]).
struct ReleaseFifos(Vec<String>);

impl Drop for ReleaseFifos {
    fn drop(&mut self) {
        for fifo in &self.0 {
            release_fifo(std::path::Path::new(fifo));
        }
    }
}

/// Polls `check` until it answers, for a minute at most (a bound on what must be prompt).
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited a minute for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The descriptor of this process that is `target` (as `/proc/self/fd` shows it, e.g.
/// `pipe:[1234]`), if one is.
fn descriptor_of(target: &str) -> Option<i32> {
    std::fs::read_dir("/proc/self/fd")
        .expect("this process's descriptors can be listed")
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path()).is_ok_and(|link| link.as_os_str() == target)
        })
        .find_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// A session started for a client keeps every byte until that client attaches, even when
/// the command writes more than the retained window first: here the client attaches only
/// once the window is full. Before, the pump dropped what nobody was attached to, and a
/// client that attached a moment late (a busy machine) lost the start of the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_session_keeps_its_output_for_its_first_reader() {
    use crate::agent::session::Event;
    let window = crate::api::exec::MAX_OUTPUT_CHUNK;
    let registry = crate::agent::registry::Registry::new(window);
    let request = shell_request("seq 1 120000", Default::default());
    let session = registry.get_or_start("first-reader", request).unwrap();
    let expected: String = (1..=120000).map(|n| format!("{n}\n")).collect();
    assert!(expected.len() > 4 * window);
    let filled = Arc::clone(&session);
    tokio::task::spawn_blocking(move || {
        wait_until("the window to fill", || {
            (filled.lock().streams[0].end() >= window as u64).then_some(())
        })
    })
    .await
    .unwrap();
    let mut attachment = session.attach(0, 0);
    let mut stdout = Vec::new();
    loop {
        match attachment.next_raw(window, 0).await {
            Event::Output(_, chunk) => stdout.extend_from_slice(&chunk.bytes),
            Event::Finished(outcome) => {
                assert_eq!(outcome, crate::agent::session::Outcome::Exit(0));
                break;
            }
        }
    }
    assert_eq!(String::from_utf8(stdout).unwrap(), expected);
}

/// A session an SSE client left with output unacknowledged is killed by its idle timer and
/// then finishes (and can expire): the hold on that output goes with the kill. Before, its
/// pumps waited for room for ever, and the session stayed, with its output, for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_left_unacknowledged_finishes_once_its_idle_timer_kills_it() {
    use crate::agent::session::{Outcome, Policy};
    let registry = crate::agent::registry::Registry::new(crate::api::exec::MAX_OUTPUT_CHUNK);
    let policy = Policy {
        idle_timeout: Some(std::time::Duration::from_secs(1)),
        ..Policy::default()
    };
    let request = shell_request("seq 1 1000000", policy);
    let session = registry.get_or_start("left", request).unwrap();
    // More output than the pipe and the window hold, so the command waits to be read; as an
    // SSE response does, attach, hold what was not acknowledged, then leave.
    let attachment = session.attach(0, 0);
    session.hold_for_ack(attachment.cursors());
    drop(attachment);
    let finished = tokio::time::timeout(std::time::Duration::from_secs(60), session.finished())
        .await
        .expect("the session finishes once its idle timer has killed it");
    assert!(
        matches!(finished, Outcome::Exit(code) if code != 0),
        "killed: {finished:?}"
    );
}

/// What a registered start of `/bin/sh -c <command>` asks for, with `policy`.
fn shell_request(
    command: &str,
    policy: crate::agent::session::Policy,
) -> crate::agent::registry::StartRequest {
    crate::agent::registry::StartRequest {
        spawn: super::sh(command),
        policy,
        timeout: None,
    }
}

/// Runs `message`, whose command exits at once leaving a background child that writes
/// `ended` to `fifo` when its copy of the command's `input` (stdin or terminal) ends, and
/// expects that to happen now that the command has finished.
async fn expect_input_to_end_after(
    agent: &TestAgent,
    message: serde_json::Value,
    fifo: &str,
    input: &str,
) {
    let mut ws = agent.ws().await;
    ws.send(message).await;
    assert_eq!(ws.transcript().await.terminal, exit(0));
    let reader = fifo.to_string();
    let ended = tokio::task::spawn_blocking(move || std::fs::read_to_string(reader));
    // A generous bound on what must be immediate: before, the reader waited ten minutes.
    match tokio::time::timeout(std::time::Duration::from_secs(60), ended).await {
        Ok(read) => assert_eq!(read.unwrap().unwrap(), "ended\n"),
        Err(_) => {
            release_fifo(std::path::Path::new(fifo));
            panic!("the finished command's {input} stayed open");
        }
    }
}
