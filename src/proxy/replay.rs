//! A sandbox's connection with the bytes already read to judge it put back in front, so a
//! TLS server can start from the ClientHello the proxy peeked at; it counts the bytes that
//! pass each way for the egress log.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes from and to the sandbox.
#[derive(Debug, Default)]
pub struct Counters {
    pub from_sandbox: AtomicU64,
    pub to_sandbox: AtomicU64,
}

impl Counters {
    pub fn totals(&self) -> (u64, u64) {
        (
            self.from_sandbox.load(Ordering::Relaxed),
            self.to_sandbox.load(Ordering::Relaxed),
        )
    }
}

pub struct Replay {
    prefix: Vec<u8>,
    replayed: usize,
    inner: TcpStream,
    counters: Arc<Counters>,
}

impl Replay {
    /// `inner`, reading `prefix` first. The prefix counts as read from the sandbox.
    pub fn new(prefix: Vec<u8>, inner: TcpStream, counters: Arc<Counters>) -> Replay {
        counters
            .from_sandbox
            .fetch_add(prefix.len() as u64, Ordering::Relaxed);
        Replay {
            prefix,
            replayed: 0,
            inner,
            counters,
        }
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.replayed < this.prefix.len() {
            let rest = &this.prefix[this.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.replayed += n;
            if this.replayed == this.prefix.len() {
                this.prefix = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        this.counters
            .from_sandbox
            .fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            this.counters
                .to_sandbox
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_prefix_comes_first_and_both_ways_are_counted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let counters = Arc::new(Counters::default());
        let mut replay = Replay::new(b"hello ".to_vec(), accepted, counters.clone());
        peer.write_all(b"world").await.unwrap();
        peer.shutdown().await.unwrap();
        let mut read = String::new();
        replay.read_to_string(&mut read).await.unwrap();
        assert_eq!(read, "hello world");
        replay.write_all(b"answer").await.unwrap();
        let mut answer = [0u8; 6];
        peer.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
        assert_eq!(counters.totals(), (11, 6));
    }
}
