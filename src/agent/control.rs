//! Control messages of an attached socket (`input`, `close_stdin`, `kill`, `resize`).
//!
//! Stdin writes can block for as long as the command does not read its stdin, so they run
//! one at a time beside the socket reader instead of inside it: the socket keeps being read
//! (pings answered, `kill` honoured) while a few writes wait their turn. Only when that small
//! queue is full does reading pause, which back-pressures the client.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::SplitStream;

use axum::extract::ws::WebSocket;

use super::exec_ws::next_client_message;
use super::session::Session;
use crate::api::exec::ClientMessage;

/// Stdin operations allowed to wait behind a blocked write before the socket stops being read.
const MAX_QUEUED_STDIN_OPS: usize = 64;

enum StdinOp {
    Write(String),
    Close,
}

type Pending = Pin<Box<dyn Future<Output = ()> + Send>>;

fn apply(session: Arc<Session>, op: StdinOp) -> Pending {
    Box::pin(async move {
        match op {
            StdinOp::Write(data) => session.write_input(data.as_bytes()).await,
            StdinOp::Close => session.close_stdin().await,
        }
    })
}

/// Handles control messages until the socket ends; stdin operations still queued then are
/// finished in the background (in order), since the client sent them before leaving.
pub async fn run(session: Arc<Session>, mut stream: SplitStream<WebSocket>) {
    let mut queue: VecDeque<StdinOp> = VecDeque::new();
    let mut current: Option<Pending> = None;
    loop {
        if current.is_none() {
            current = queue.pop_front().map(|op| apply(Arc::clone(&session), op));
        }
        tokio::select! {
            message = next_client_message(&mut stream), if queue.len() < MAX_QUEUED_STDIN_OPS => {
                match message {
                    None => break,
                    Some(Some(ClientMessage::Input { data })) => queue.push_back(StdinOp::Write(data)),
                    Some(Some(ClientMessage::CloseStdin)) => queue.push_back(StdinOp::Close),
                    Some(Some(ClientMessage::Kill)) => session.kill(),
                    Some(Some(ClientMessage::Resize { cols, rows })) => session.resize(cols, rows),
                    Some(Some(agent @ (ClientMessage::SshAgentData { .. } | ClientMessage::SshAgentClose { .. }))) => {
                        super::ssh_agent_session::from_client(&session, agent)
                    }
                    Some(_) => {} // unknown or out-of-place messages are ignored
                }
            }
            () = async { current.as_mut().expect("guarded by is_some").await }, if current.is_some() => {
                current = None;
            }
        }
    }
    if current.is_some() || !queue.is_empty() {
        tokio::spawn(async move {
            if let Some(pending) = current {
                pending.await;
            }
            for op in queue {
                apply(Arc::clone(&session), op).await;
            }
        });
    }
}
