//! Output, input and request validation on `/execute/ws`.

use serde_json::json;

use super::{TestAgent, error_type, execute, exit};
use crate::api::exec::ServerMessage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_streams_and_the_exit_code_arrive_then_the_socket_closes() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    let message = execute("printf 'out\\n'; printf 'err\\n' >&2; exit 7");
    ws.send(message.clone()).await;
    let t = ws.transcript().await;
    assert_eq!(t.command_id, message["command_id"].as_str().unwrap());
    assert!(t.pid > 1);
    assert_eq!((t.stdout.as_str(), t.stderr.as_str()), ("out\n", "err\n"));
    assert_eq!(t.first_offsets, [Some(0), Some(0)]);
    assert_eq!(t.terminal, exit(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_is_generated_when_absent() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    ws.send(json!({"type": "execute", "command": "echo hi", "close_stdin": true}))
        .await;
    let t = ws.transcript().await;
    assert_eq!(t.command_id.len(), 32, "a dashless uuid: {}", t.command_id);
    assert_eq!((t.stdout.as_str(), t.terminal), ("hi\n", exit(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_megabytes_arrive_intact_in_bounded_chunks() {
    let agent = TestAgent::start().await;
    let size = 20_000_000;
    let mut ws = agent.ws().await;
    ws.send(execute(&format!("yes 0123456789 | head -c {size}")))
        .await;
    let t = ws.transcript().await;
    let expected: String = "0123456789\n".repeat(size / 11 + 1)[..size].to_string();
    assert_eq!(t.stdout.len(), size);
    assert!(t.stdout == expected, "the output was altered in transit");
    assert_eq!(t.terminal, exit(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multibyte_characters_are_never_split_across_chunks() {
    let agent = TestAgent::start().await;
    // One ASCII byte first so the chunk limits (a power of two) fall inside the 3-byte
    // characters.
    let text = format!("x{}", "€".repeat(200_000));
    let file = agent.path("euros.txt");
    std::fs::write(&file, &text).unwrap();
    let mut ws = agent.ws().await;
    ws.send(execute(&format!("cat '{file}'"))).await;
    let t = ws.transcript().await;
    assert!(!t.stdout.contains('\u{FFFD}'), "a character was split");
    assert!(t.stdout == text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_carry_the_raw_bytes_at_exact_offsets_when_asked_for() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    use crate::api::exec_frames::{self, OutputStream};

    let agent = TestAgent::start().await;
    // Bytes that are not UTF-8, then more than one frame's worth (every byte value).
    let mut data: Vec<u8> = b"\xff\xfe\x00a".to_vec();
    data.extend((0..3 * exec_frames::MAX_BINARY_CHUNK).map(|i| (i % 256) as u8));
    let file = agent.path("bytes.bin");
    std::fs::write(&file, &data).unwrap();
    let mut ws = agent.ws_binary_output().await;
    let command = format!("cat '{file}'; printf '\\377err' >&2");
    let text = execute(&command).to_string();
    ws.send(Message::Text(text.into())).await.unwrap();

    let (mut texts, mut streams) = (Vec::new(), [Vec::new(), Vec::new()]);
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Binary(frame) => {
                let frame = exec_frames::decode(&frame).expect("an output frame");
                assert!(frame.bytes.len() <= exec_frames::MAX_BINARY_CHUNK);
                let stream = &mut streams[(frame.stream == OutputStream::Stderr) as usize];
                assert_eq!(frame.offset, stream.len() as u64, "offsets are contiguous");
                stream.extend_from_slice(frame.bytes);
            }
            Message::Text(text) => {
                texts.push(serde_json::from_str::<ServerMessage>(&text).unwrap());
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(streams[0] == data, "stdout was altered in transit");
    assert_eq!(streams[1], b"\xfferr");
    assert!(
        matches!(texts[0], ServerMessage::Started { .. }),
        "{texts:?}"
    );
    assert_eq!(texts[1..], [ServerMessage::Exit { exit_code: 0 }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_reaches_stdin_and_close_stdin_ends_it() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    let mut message = execute("cat; echo end");
    message.as_object_mut().unwrap().remove("close_stdin");
    ws.send(message).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    ws.send(json!({"type": "input", "data": "héllo\n"})).await;
    ws.send(json!({"type": "future_extension", "x": 1})).await;
    ws.send(json!({"type": "close_stdin"})).await;
    let mut t = super::Transcript::default();
    ws.read_to_end(&mut t).await;
    assert_eq!((t.stdout.as_str(), t.terminal), ("héllo\nend\n", exit(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_session_is_a_terminal_and_applies_resize() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    let mut message = execute("test -t 0 && test -t 2 && echo on-a-tty; read line; stty size");
    message["pty"] = json!(true);
    message.as_object_mut().unwrap().remove("close_stdin");
    ws.send(message).await;
    assert!(matches!(
        ws.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    ws.send(json!({"type": "resize", "cols": 100, "rows": 30}))
        .await;
    ws.send(json!({"type": "input", "data": "go\n"})).await;
    let mut t = super::Transcript::default();
    ws.read_to_end(&mut t).await;
    assert!(t.stdout.contains("on-a-tty\r\n"), "{:?}", t.stdout);
    assert!(t.stdout.contains("30 100\r\n"), "{:?}", t.stdout);
    assert_eq!((t.stderr.as_str(), t.terminal), ("", exit(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_work_dir_apply() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    let mut message = execute("echo \"$GREETING $(pwd)\"");
    message["run_config"] = json!({"work_dir": agent.path(""), "env_vars": {"GREETING": "hi"}});
    ws.send(message).await;
    let t = ws.transcript().await;
    let dir = std::fs::canonicalize(agent.dir.path()).unwrap();
    assert_eq!(t.stdout, format!("hi {}\n", dir.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_end_with_a_clear_error_before_started() {
    let agent = TestAgent::start().await;
    let cases = [
        (json!({"type": "input", "data": "x"}), "InvalidRequest"),
        (
            json!({"type": "execute", "command": "true", "env": {"A": "1"},
                   "run_config": {"env_vars": {"B": "2"}}}),
            "InvalidRequest",
        ),
        (
            json!({"type": "execute", "command": "true", "shell": "/nonexistent"}),
            "SpawnFailed",
        ),
        (
            json!({"type": "execute", "command": "true", "cwd": "/no/such/dir"}),
            "SpawnFailed",
        ),
        (
            json!({"type": "execute", "command": "true", "run_config": {"user": "no-such-user"}}),
            "SpawnFailed",
        ),
    ];
    for (message, expected) in cases {
        let mut ws = agent.ws().await;
        ws.send(message.clone()).await;
        let reply = ws.recv().await;
        assert_eq!(error_type(&reply), expected, "for {message}");
        if let Some(ServerMessage::Error { error, .. }) = &reply {
            assert!(!error.is_empty());
        }
        assert!(ws.recv().await.is_none(), "closed after the error");
    }
}
