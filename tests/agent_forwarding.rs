//! SSH-agent forwarding between the two ends the CLI and the sandbox really run: the agent
//! (served on a temporary unix socket, as inside a sandbox) and the client's channel code
//! ([`AgentChannels`]) relaying its frames to a real `ssh-agent` holding a generated key, while
//! the real `ssh-add` inside the session asks the forwarded socket for identities.
//!
//! These live outside the crate because they join two modules that never depend on each
//! other: the agent knows nothing of the client.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use langsmith::api::exec::ServerMessage;
use langsmith::api::ssh_agent::SshAgentMessage;
use langsmith::client::AgentChannels;
use serde_json::json;
use tokio::net::UnixStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::common::local_agent::LocalAgent;

/// The agent serving on `DIR/agent.sock` for as long as the test runs.
struct Agent {
    dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::UnixListener::bind(dir.path().join("agent.sock")).unwrap();
        tokio::spawn(langsmith::agent::serve(listener, std::future::pending()));
        Agent { dir }
    }

    /// A WebSocket on `/execute/ws` that has sent `execute` for `script` with forwarding on.
    async fn execute_forwarding(&self, script: &str) -> WebSocketStream<UnixStream> {
        let stream = UnixStream::connect(self.dir.path().join("agent.sock"))
            .await
            .unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async("ws://agent/execute/ws", stream)
            .await
            .unwrap();
        let execute = json!({
            "type": "execute",
            "command": script,
            "shell": "/bin/sh",
            "timeout_seconds": 60,
            "close_stdin": true,
            "ssh_agent_forward": true,
        });
        ws.send(Message::Text(execute.to_string().into()))
            .await
            .unwrap();
        ws
    }
}

/// Reads one attachment to its end, serving agent channels; returns stdout and the terminal
/// message.
async fn relay(
    ws: &mut WebSocketStream<UnixStream>,
    agent: &mut AgentChannels,
) -> (String, ServerMessage) {
    let mut stdout = String::new();
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    other => panic!("socket ended without a terminal message: {other:?}"),
                };
                if let Ok(message) = serde_json::from_str::<ServerMessage>(&text) {
                    match message {
                        ServerMessage::Stdout { data, .. } | ServerMessage::Stderr { data, .. } => {
                            stdout.push_str(&data)
                        }
                        ServerMessage::Started { .. } => {}
                        terminal => return (stdout, terminal),
                    }
                } else {
                    let message: SshAgentMessage = serde_json::from_str(&text).unwrap();
                    agent.handle(message).await;
                }
            }
            message = agent.next_outbound() => {
                let text = serde_json::to_string(&message).unwrap();
                ws.send(Message::Text(text.into())).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn the_command_reaches_the_clients_agent_through_a_private_socket() {
    let local = LocalAgent::start();
    let agent = Agent::start();
    let script = r#"ssh-add -L; d=$(dirname "$SSH_AUTH_SOCK"); stat -c 'mode=%a uid=%u' "$d"; echo "sock=$SSH_AUTH_SOCK""#;
    let mut ws = agent.execute_forwarding(script).await;
    let mut channels = AgentChannels::new(local.socket.clone());
    let (stdout, terminal) = relay(&mut ws, &mut channels).await;
    assert_eq!(terminal, ServerMessage::Exit { exit_code: 0 }, "{stdout}");
    assert!(
        stdout.contains(&local.public_key),
        "ssh-add -L lists the local key: {stdout}"
    );
    assert!(stdout.contains("mode=700 uid=0"), "{stdout}");
    let socket = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sock="))
        .expect("the socket path is printed");
    assert!(
        socket.ends_with("/agent.sock"),
        "SSH_AUTH_SOCK is the forward, not the caller's: {socket}"
    );
    // Removed before the end is published, so already gone once `exit` has arrived.
    let forward_dir = Path::new(socket).parent().unwrap();
    assert!(
        !forward_dir.exists(),
        "{} outlived its command's exit",
        forward_dir.display()
    );
}

#[tokio::test]
async fn without_a_local_agent_the_channel_is_closed_instead_of_left_waiting() {
    let agent = Agent::start();
    let mut ws = agent
        .execute_forwarding(r#"ssh-add -L; echo "rc=$?""#)
        .await;
    let mut channels = AgentChannels::new(agent.dir.path().join("no-agent-here.sock"));
    let relayed = tokio::time::timeout(Duration::from_secs(60), relay(&mut ws, &mut channels));
    let (stdout, terminal) = relayed
        .await
        .expect("ssh-add must see the channel closed, not wait for an answer");
    assert_eq!(terminal, ServerMessage::Exit { exit_code: 0 });
    let rc = stdout.lines().find_map(|l| l.strip_prefix("rc=")).unwrap();
    assert_ne!(rc, "0", "{stdout}");
}
