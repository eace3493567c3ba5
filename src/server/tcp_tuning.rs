//! Options every TCP connection the server accepts gets.
//!
//! * Nagle's algorithm off: tunnels and exec sessions carry small interactive frames, and a
//!   frame held back for the peer's delayed ACK costs 40 ms per round trip.
//! * Keepalive probes and a user timeout: a tunnel or a proxied WebSocket is spliced for as
//!   long as both ends stay, and it holds its sandbox active meanwhile. A client that
//!   vanishes without a FIN (a laptop closed, a network gone) would otherwise keep the
//!   splice, and the sandbox awake, forever. Probes start after [`KEEPALIVE_IDLE`] of
//!   silence; unanswered probes, or data left unacknowledged for [`USER_TIMEOUT`], end the
//!   connection, the splice ends and the sandbox may idle-stop.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Silence before the first keepalive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Between unanswered probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection is dropped.
const KEEPALIVE_PROBES: u32 = 6;
/// How long sent data may stay unacknowledged.
pub const USER_TIMEOUT: Duration = Duration::from_secs(120);

/// Apply the options; a failure leaves the connection as the kernel made it.
pub fn tune(tcp: &mut TcpStream) {
    let _ = tcp.set_nodelay(true);
    let sock = SockRef::from(&*tcp);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    let _ = sock.set_tcp_keepalive(&keepalive);
    let _ = sock.set_tcp_user_timeout(Some(USER_TIMEOUT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_probe_and_time_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        tune(&mut accepted);
        let sock = SockRef::from(&accepted);
        assert!(accepted.nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(sock.tcp_user_timeout().unwrap(), Some(USER_TIMEOUT));
        drop(client);
    }
}
