//! SSH-agent forwarding (`ssh_agent_forward: true`) as the agent alone sees it: the forwarded
//! socket is private to its command's user and is gone before the command's end is published.
//! The relay through the client's channel code to a real `ssh-agent` is tested from outside
//! the crate (`tests/agent_forwarding.rs`), since the agent does not depend on the client.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::TestAgent;
use crate::api::exec::ServerMessage;

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

/// The order the end-to-end forwarding tests rely on, without a race to hide behind: on a
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
