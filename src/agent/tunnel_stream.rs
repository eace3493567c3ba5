//! One tunnelled connection: read the client's 3-byte connect header, dial the port inside
//! the sandbox, answer one status byte, then copy bytes both ways until both directions end.
//!
//! Half-closes carry through: the client's FIN on the stream shuts down the TCP connection's
//! write side, and the service's EOF closes the stream's write side, so request/response
//! protocols that signal "done" with a half-close (e.g. `nc -N`) work. An error on either
//! side drops both. The task owns the stream and the socket, so nothing outlives it.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::port_dial;
use crate::api::tunnel::{HEADER_LEN, STATUS_DIAL_FAILED, STATUS_OK, decode_header};

/// Copy buffers per direction: large enough that one stream can fill a fast link.
const COPY_BUFFER: usize = 256 * 1024;

pub async fn serve(stream: yamux::Stream) {
    let mut stream = stream.compat();
    let mut header = [0u8; HEADER_LEN];
    if stream.read_exact(&mut header).await.is_err() {
        return;
    }
    let port = match decode_header(header) {
        Ok(port) => port,
        Err(status) => return refuse(stream, status).await,
    };
    let mut service = match port_dial::dial(port).await {
        Ok(service) => service,
        Err(_) => return refuse(stream, STATUS_DIAL_FAILED).await,
    };
    if stream.write_all(&[STATUS_OK]).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional_with_sizes(
        &mut stream,
        &mut service,
        COPY_BUFFER,
        COPY_BUFFER,
    )
    .await;
}

/// Answer a non-OK status and end the stream (FIN after the byte).
async fn refuse<S: tokio::io::AsyncWrite + Unpin>(mut stream: S, status: u8) {
    if stream.write_all(&[status]).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}
