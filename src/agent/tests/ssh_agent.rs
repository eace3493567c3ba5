//! SSH-agent forwarding (`ssh_agent_forward: true`): a real `ssh-agent` holding a generated key
//! on the client's side, the client's real channel code relaying frames, and the real `ssh-add`
//! inside the session asking the forwarded socket for identities.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::local_agent::LocalAgent;
use super::{TestAgent, Ws};
use crate::api::exec::{ServerMessage, SshAgentMessage};
use crate::client::console_agent::AgentChannels;

/// Reads one attachment to its end, serving agent channels; returns stdout and the terminal
/// message.
async fn relay(ws: &mut Ws, agent: &mut AgentChannels) -> (String, ServerMessage) {
    let mut stdout = String::new();
    loop {
        tokio::select! {
            frame = ws.socket.next() => {
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
                ws.socket.send(Message::Text(text.into())).await.unwrap();
            }
        }
    }
}

/// The forward's directory is removed before the command's end is published, so once `exit`
/// has arrived it must already be gone.
fn assert_gone(path: &Path) {
    assert!(
        !path.exists(),
        "{} outlived its command's exit",
        path.display()
    );
}

#[tokio::test]
async fn the_command_reaches_the_clients_agent_through_a_private_socket() {
    let local = LocalAgent::start();
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    let script = r#"ssh-add -L; d=$(dirname "$SSH_AUTH_SOCK"); stat -c 'mode=%a uid=%u' "$d"; echo "sock=$SSH_AUTH_SOCK""#;
    let mut execute = super::execute(script);
    execute["shell"] = json!("/bin/sh");
    execute["ssh_agent_forward"] = json!(true);
    ws.send(execute).await;
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
    assert_gone(Path::new(socket).parent().unwrap());
}

#[tokio::test]
async fn another_user_cannot_reach_a_forwarded_socket() {
    let agent = TestAgent::start().await;
    let mut owner = agent.ws().await;
    let mut execute = super::execute(r#"echo "$SSH_AUTH_SOCK"; read line"#);
    execute["shell"] = json!("/bin/sh");
    execute["ssh_agent_forward"] = json!(true);
    execute["close_stdin"] = json!(false);
    owner.send(execute).await;
    assert!(matches!(
        owner.recv().await,
        Some(ServerMessage::Started { .. })
    ));
    let socket = match owner.recv().await {
        Some(ServerMessage::Stdout { data, .. }) => data.trim().to_string(),
        other => panic!("expected the socket path, got {other:?}"),
    };

    let mut intruder = agent.ws().await;
    let mut probe = super::execute(r#"ssh-add -L; echo "rc=$?""#);
    probe["shell"] = json!("/bin/sh");
    probe["run_config"] = json!({"user": "65534:65534", "env_vars": {"SSH_AUTH_SOCK": socket}});
    intruder.send(probe).await;
    // Had it connected, ssh-add would wait for an answer nobody relays: bound that failure.
    let transcript = tokio::time::timeout(Duration::from_secs(60), intruder.transcript())
        .await
        .expect("ssh-add as another user must fail to connect, not wait for the agent");
    assert!(
        transcript.stdout.contains("rc=2"),
        "ssh-add cannot connect: {transcript:?}"
    );

    owner.send(json!({"type": "input", "data": "done\n"})).await;
    let mut rest = super::Transcript::default();
    owner.read_to_end(&mut rest).await;
    assert_eq!(rest.terminal, super::exit(0));
    assert_gone(Path::new(&socket).parent().unwrap());
}

#[tokio::test]
async fn without_a_local_agent_the_channel_is_closed_instead_of_left_waiting() {
    let agent = TestAgent::start().await;
    let mut ws = agent.ws().await;
    let mut execute = super::execute(r#"ssh-add -L; echo "rc=$?""#);
    execute["shell"] = json!("/bin/sh");
    execute["ssh_agent_forward"] = json!(true);
    ws.send(execute).await;
    let mut channels = AgentChannels::new(agent.dir.path().join("no-agent-here.sock"));
    let relayed = tokio::time::timeout(Duration::from_secs(60), relay(&mut ws, &mut channels));
    let (stdout, terminal) = relayed
        .await
        .expect("ssh-add must see the channel closed, not wait for an answer");
    assert_eq!(terminal, ServerMessage::Exit { exit_code: 0 });
    let rc = stdout.lines().find_map(|l| l.strip_prefix("rc=")).unwrap();
    assert_ne!(rc, "0", "{stdout}");
}

/// The order the end-to-end tests above rely on, without a race to hide behind: on a
/// single-threaded runtime nothing else runs between recording the end and the check, so a
/// removal left to some later task is caught. Also when the command ended before the forward
/// was tied to it.
#[tokio::test(flavor = "current_thread")]
async fn the_forward_is_removed_before_the_end_is_recorded() {
    use std::sync::Arc;

    use crate::agent::session::{Outcome, Policy, Session};
    use crate::agent::ssh_agent::AgentForward;
    use crate::agent::ssh_agent_session::adopt;

    let new_session = || {
        Arc::new(Session::new(
            "s".into(),
            0,
            Policy::default(),
            64,
            None,
            None,
        ))
    };
    let session = new_session();
    let forward = AgentForward::create(None).unwrap();
    let dir = forward.socket_path().parent().unwrap().to_path_buf();
    adopt(&session, forward);
    assert!(dir.exists(), "the forward lives while its command runs");
    session.finish(Outcome::Exit(0));
    assert_gone(&dir);

    let session = new_session();
    session.finish(Outcome::Exit(0));
    let forward = AgentForward::create(None).unwrap();
    let dir = forward.socket_path().parent().unwrap().to_path_buf();
    adopt(&session, forward);
    assert_gone(&dir);
}
