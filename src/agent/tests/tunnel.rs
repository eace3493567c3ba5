//! `/tunnel` end to end against the real agent on its socket: a yamux client over a real
//! WebSocket, streams to real TCP listeners on this host's loopback (in a sandbox, the
//! agent's loopback is the sandbox's own).

use std::future::poll_fn;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use super::TestAgent;
use crate::api::tunnel::{
    STATUS_DIAL_FAILED, STATUS_OK, STATUS_PORT_NOT_ALLOWED, STATUS_UNSUPPORTED_VERSION,
    encode_header,
};
use crate::ws_pipe::WsPipe;

type Stream = Compat<yamux::Stream>;

/// A yamux client session on the agent's `/tunnel`: one task drives the connection and
/// opens streams on request.
struct Session {
    open: mpsc::Sender<oneshot::Sender<yamux::Stream>>,
}

impl Session {
    async fn start(agent: &TestAgent) -> Session {
        let pipe = WsPipe::new(agent.ws_at("/tunnel").await);
        let mut connection =
            yamux::Connection::new(pipe.compat(), yamux::Config::default(), yamux::Mode::Client);
        let (open, mut requests) = mpsc::channel::<oneshot::Sender<yamux::Stream>>(16);
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            poll_fn(|cx| {
                while let Poll::Ready(Some(reply)) = requests.poll_recv(cx) {
                    waiting.push(reply);
                }
                while !waiting.is_empty() {
                    match connection.poll_new_outbound(cx) {
                        Poll::Ready(Ok(stream)) => {
                            let _ = waiting.remove(0).send(stream);
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Pending => break,
                    }
                }
                match connection.poll_next_inbound(cx) {
                    Poll::Ready(_) => Poll::Ready(()),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        });
        Session { open }
    }

    async fn stream(&self) -> Stream {
        let (reply, stream) = oneshot::channel();
        self.open.send(reply).await.unwrap();
        stream.await.unwrap().compat()
    }

    /// A stream to `port` past its header, with the status byte the agent answered.
    async fn connect(&self, port: u16) -> (Stream, u8) {
        let mut stream = self.stream().await;
        stream.write_all(&encode_header(port)).await.unwrap();
        stream.flush().await.unwrap();
        let status = stream.read_u8().await.unwrap();
        (stream, status)
    }
}

async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Echo every connection until its client half-closes, then close.
fn echo(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
}

/// Write `data`, half-close, read everything back.
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(stream);
    let send = async {
        w.write_all(data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let receive = r.read_to_end(&mut back);
    let (_, got) = tokio::join!(send, receive);
    got.unwrap();
    back
}

#[tokio::test]
async fn streams_carry_bytes_both_ways_with_half_close() {
    let agent = TestAgent::start().await;
    let (listener, port) = listener().await;
    echo(listener);
    let session = Session::start(&agent).await;
    let (mut stream, status) = session.connect(port).await;
    assert_eq!(status, STATUS_OK);
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
    let back = round_trip(&mut stream, &data).await;
    assert!(
        back == data,
        "{} of {} bytes came back",
        back.len(),
        data.len()
    );
}

#[tokio::test]
async fn refusals_answer_their_status_byte_and_end_the_stream() {
    let agent = TestAgent::start().await;
    let session = Session::start(&agent).await;
    let (mut stream, status) = session.connect(0).await;
    assert_eq!(status, STATUS_PORT_NOT_ALLOWED);
    assert_eq!(
        stream.read(&mut [0u8; 1]).await.unwrap(),
        0,
        "FIN after the status"
    );

    let (closed, port) = listener().await;
    drop(closed);
    let (_, status) = session.connect(port).await;
    assert_eq!(status, STATUS_DIAL_FAILED);

    let mut stream = session.stream().await;
    stream.write_all(&[2, 0, 22]).await.unwrap();
    assert_eq!(stream.read_u8().await.unwrap(), STATUS_UNSUPPORTED_VERSION);
}

#[tokio::test]
async fn a_header_split_across_frames_is_read_whole() {
    let agent = TestAgent::start().await;
    let (listener, port) = listener().await;
    echo(listener);
    let session = Session::start(&agent).await;
    let mut stream = session.stream().await;
    let header = encode_header(port);
    for byte in header {
        stream.write_all(&[byte]).await.unwrap();
        stream.flush().await.unwrap();
    }
    assert_eq!(stream.read_u8().await.unwrap(), STATUS_OK);
    assert_eq!(round_trip(&mut stream, b"split").await, b"split");
}

#[tokio::test]
async fn a_hundred_streams_share_one_session() {
    let agent = TestAgent::start().await;
    let (listener, port) = listener().await;
    echo(listener);
    let session = Session::start(&agent).await;
    let mut streams = Vec::new();
    for _ in 0..100 {
        let (stream, status) = session.connect(port).await;
        assert_eq!(status, STATUS_OK);
        streams.push(stream);
    }
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| {
            tokio::spawn(async move {
                let data = format!("stream {i} ").repeat(1000).into_bytes();
                assert_eq!(round_trip(&mut stream, &data).await, data);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn the_service_sees_the_end_when_the_client_vanishes() {
    let agent = TestAgent::start().await;
    let (listener, port) = listener().await;
    let session = Session::start(&agent).await;
    let (mut stream, status) = session.connect(port).await;
    assert_eq!(status, STATUS_OK);
    let (mut service, _) = listener.accept().await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    stream.flush().await.unwrap();
    let mut got = [0u8; 5];
    service.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
    // The whole session goes away mid-stream: the agent must close the service's socket.
    drop(stream);
    drop(session);
    let mut rest = Vec::new();
    service.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn the_client_sees_the_end_when_the_service_closes() {
    let agent = TestAgent::start().await;
    let (listener, port) = listener().await;
    let session = Session::start(&agent).await;
    let (mut stream, status) = session.connect(port).await;
    assert_eq!(status, STATUS_OK);
    let (mut service, _) = listener.accept().await.unwrap();
    service.write_all(b"bye").await.unwrap();
    drop(service);
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
}

#[tokio::test]
async fn a_plain_get_is_refused() {
    let agent = TestAgent::start().await;
    let (response, _) = agent.http(super::get("/tunnel")).await;
    assert_eq!(response.status(), 400);
}
