//! One tunnel session: a `/tunnel` WebSocket carrying a yamux session in client mode, and
//! the reconnect policy of the official SDK on top.
//!
//! A single task owns the `yamux::Connection` and drives it (reads frames, answers pings,
//! moves window updates) while streams are asked for through a channel; the session is
//! closed once that task ends. [`Dialer`] holds the current session and replaces a closed
//! one lazily, when the next stream is wanted: up to [`DIAL_ATTEMPTS`] dials with the SDK's
//! back-off between them. Streams of a lost session are lost with it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use super::ClientError;
use super::exec_socket::{connect_with, ws_url};
use super::tunnel_ws::WsPipe;
use crate::api::tunnel::{STATUS_OK, encode_header};

/// Dials of one reconnect, as the official SDK makes them.
pub(super) const DIAL_ATTEMPTS: u32 = 3;
/// The SDK's back-off: 0.5 s doubling (0.5 s, 1 s, …) between dials.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Largest yamux data frame we send: big frames cost fewer headers and WebSocket messages;
/// the peer's window still bounds what is in flight.
const SPLIT_SEND_SIZE: usize = 256 * 1024;

/// A yamux stream as tokio I/O.
pub type TunnelStream = Compat<yamux::Stream>;

/// Why a stream to the remote port could not be had, in the steps the LangSmith CLI logs.
#[derive(Debug)]
pub enum OpenError {
    /// No session (the dial failed) or yamux refused a new stream.
    Open(ClientError),
    WriteHeader(std::io::Error),
    ReadStatus(std::io::Error),
    /// The server answered this non-OK status byte.
    Rejected(u8),
}

enum Request {
    Open(oneshot::Sender<Result<yamux::Stream, yamux::ConnectionError>>),
    Close(oneshot::Sender<()>),
}

/// A live (or ended) session; dropping it closes the connection.
pub(super) struct Session {
    requests: mpsc::Sender<Request>,
    closed: Arc<AtomicBool>,
}

impl Session {
    /// Dial `{dataplane}/tunnel` and start the yamux client on it.
    pub(super) async fn dial(dataplane: &str, api_key: &str) -> Result<Session, ClientError> {
        let url = ws_url(dataplane, "/tunnel");
        let socket = connect_with(&url, api_key, &[])
            .await
            .map_err(|(e, _)| dial_error(e))?;
        let mut config = yamux::Config::default();
        config.set_split_send_size(SPLIT_SEND_SIZE);
        let connection =
            yamux::Connection::new(WsPipe::new(socket).compat(), config, yamux::Mode::Client);
        let (requests, received) = mpsc::channel(64);
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(drive(connection, received, closed.clone()));
        Ok(Session { requests, closed })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A new stream to `port` inside the sandbox, past its connect header and status byte.
    pub(super) async fn open(&self, port: u16) -> Result<TunnelStream, OpenError> {
        let (reply, answer) = oneshot::channel();
        let lost = || OpenError::Open(ClientError::Transport("tunnel session closed".into()));
        self.requests
            .send(Request::Open(reply))
            .await
            .map_err(|_| lost())?;
        let stream = answer
            .await
            .map_err(|_| lost())?
            .map_err(|e| OpenError::Open(ClientError::Transport(e.to_string())))?;
        let mut stream = stream.compat();
        stream
            .write_all(&encode_header(port))
            .await
            .map_err(OpenError::WriteHeader)?;
        stream.flush().await.map_err(OpenError::WriteHeader)?;
        let status = stream.read_u8().await.map_err(OpenError::ReadStatus)?;
        match status {
            STATUS_OK => Ok(stream),
            refused => Err(OpenError::Rejected(refused)),
        }
    }

    /// Say goodbye (yamux GoAway, then the WebSocket close) and wait until it is sent.
    pub(super) async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.requests.send(Request::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// `connect: websocket dial (<status>): <cause>`, the LangSmith CLI's wording.
fn dial_error(e: ClientError) -> ClientError {
    let status = match e.root() {
        ClientError::Http { status, .. } => http::StatusCode::from_u16(*status)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| status.to_string()),
        _ => "no response".to_string(),
    };
    e.context(format!("connect: websocket dial ({status})"))
}

/// Own the connection: hand out streams, drop the ones the server might open (it never
/// should), close on request or when every [`Session`] handle is gone.
async fn drive(
    mut connection: yamux::Connection<Compat<WsPipe>>,
    mut requests: mpsc::Receiver<Request>,
    closed: Arc<AtomicBool>,
) {
    let mut waiting = VecDeque::new();
    let mut closing: Vec<oneshot::Sender<()>> = Vec::new();
    let mut hung_up = false;
    poll_fn(|cx| {
        while !hung_up {
            match requests.poll_recv(cx) {
                Poll::Ready(Some(Request::Open(reply))) => waiting.push_back(reply),
                Poll::Ready(Some(Request::Close(done))) => closing.push(done),
                Poll::Ready(None) => hung_up = true,
                Poll::Pending => break,
            }
        }
        if hung_up || !closing.is_empty() {
            return connection.poll_close(cx).map(|_| ());
        }
        while !waiting.is_empty() {
            match connection.poll_new_outbound(cx) {
                Poll::Ready(opened) => {
                    let failed = opened.is_err();
                    let reply: oneshot::Sender<_> = waiting.pop_front().expect("not empty");
                    let _ = reply.send(opened);
                    if failed {
                        return Poll::Ready(());
                    }
                }
                Poll::Pending => break,
            }
        }
        loop {
            match connection.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(unexpected))) => drop(unexpected),
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    closed.store(true, Ordering::Release);
    for done in closing {
        let _ = done.send(());
    }
}

/// The current session of a tunnel and how to get a new one.
pub(super) struct Dialer {
    dataplane: String,
    api_key: String,
    current: Mutex<Option<Arc<Session>>>,
}

impl Dialer {
    /// Dial once: the first session of a tunnel is not retried.
    pub(super) async fn connect(dataplane: &str, api_key: &str) -> Result<Dialer, ClientError> {
        let session = Session::dial(dataplane, api_key).await?;
        Ok(Dialer {
            dataplane: dataplane.to_string(),
            api_key: api_key.to_string(),
            current: Mutex::new(Some(Arc::new(session))),
        })
    }

    /// A live session: the current one, or a new one after up to [`DIAL_ATTEMPTS`] dials
    /// (the error of the last one when all fail). Concurrent callers share one reconnect.
    pub(super) async fn session(&self) -> Result<Arc<Session>, ClientError> {
        let mut current = self.current.lock().await;
        if let Some(session) = current.as_ref().filter(|s| !s.is_closed()) {
            return Ok(session.clone());
        }
        let mut attempt = 0;
        loop {
            match Session::dial(&self.dataplane, &self.api_key).await {
                Ok(session) => {
                    let session = Arc::new(session);
                    *current = Some(session.clone());
                    return Ok(session);
                }
                Err(e) if attempt + 1 >= DIAL_ATTEMPTS => {
                    return Err(e.context(format!(
                        "tunnel: reconnect failed after {DIAL_ATTEMPTS} attempts"
                    )));
                }
                Err(_) => {
                    tokio::time::sleep(BACKOFF_BASE * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Close the current session (if any) and forget it.
    pub(super) async fn close(&self) {
        let session = self.current.lock().await.take();
        if let Some(session) = session {
            session.close().await;
        }
    }
}
