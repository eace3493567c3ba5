//! Dialling a TCP port inside the sandbox. The agent runs in the sandbox's own network
//! namespace, so `127.0.0.1` here is the sandbox's loopback: a tunnel or a service URL can
//! reach what the sandbox's own programs listen on and nothing else — not the host, not
//! another sandbox.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

/// How long one dial may take before it counts as failed. Bounded so a peer that waits for
/// the stream's answer (OpenSSH's yamux gives up after 75 s) hears "dial failed" first.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Connect to `port` on the sandbox's loopback: IPv4 first, then IPv6 (a service may listen
/// on `::1` only). `Err` carries the last failure, for logs.
pub async fn dial(port: u16) -> std::io::Result<TcpStream> {
    let candidates = [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ];
    let mut last = None;
    for addr in candidates {
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Interactive protocols (ssh, language servers) send small writes.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connecting to {addr} timed out"),
                ))
            }
        }
    }
    Err(last.expect("at least one candidate address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dials_a_listening_port_and_reports_a_closed_one() {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (dialled, accepted) = tokio::join!(dial(port), listener.accept());
        assert_eq!(
            dialled.unwrap().peer_addr().unwrap(),
            accepted.unwrap().0.local_addr().unwrap()
        );
        drop(listener);
        assert!(dial(port).await.is_err());
    }
}
