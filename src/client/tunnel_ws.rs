//! A tunnel's WebSocket as a byte pipe, for the yamux session on top of it.
//!
//! Reading concatenates the payloads of Binary and Text messages (their boundaries mean
//! nothing) and ends at a Close message, the end of the socket or an error. Writing collects
//! bytes and sends them as one Binary message on flush, or as soon as a message would reach
//! [`MAX_MESSAGE`]: the official SDK refuses messages of 1 MiB or more. Pings are answered by
//! tungstenite itself while the socket is read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::exec_socket::Socket;

/// The largest Binary message written: below the 1 MiB the official SDK's socket accepts.
pub(super) const MAX_MESSAGE: usize = 1024 * 1024 - 1024;

pub(super) struct WsPipe {
    socket: Socket,
    /// Received bytes not yet read.
    incoming: Bytes,
    /// Bytes written but not yet sent.
    outgoing: Vec<u8>,
    ended: bool,
}

impl WsPipe {
    pub(super) fn new(socket: Socket) -> Self {
        WsPipe {
            socket,
            incoming: Bytes::new(),
            outgoing: Vec::new(),
            ended: false,
        }
    }

    /// Hand the collected bytes to the socket as one message (not yet flushed).
    fn poll_send_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.outgoing.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let mut socket = Pin::new(&mut self.socket);
        ready!(socket.as_mut().poll_ready(cx)).map_err(io::Error::other)?;
        let message = Message::Binary(std::mem::take(&mut self.outgoing).into());
        socket.start_send(message).map_err(io::Error::other)?;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for WsPipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.incoming.is_empty() && !this.ended {
            match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.incoming = data,
                Some(Ok(Message::Text(text))) => this.incoming = Bytes::from(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => this.ended = true,
            }
        }
        let n = buf.remaining().min(this.incoming.len());
        buf.put_slice(&this.incoming.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WsPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.outgoing.len() >= MAX_MESSAGE {
            ready!(this.poll_send_outgoing(cx))?;
        }
        let n = buf.len().min(MAX_MESSAGE - this.outgoing.len());
        this.outgoing.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_outgoing(cx))?;
        Pin::new(&mut this.socket)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_outgoing(cx))?;
        // Sends a Close (1000) and waits for it to leave, as the SDK's `close()` does.
        Pin::new(&mut this.socket)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}
