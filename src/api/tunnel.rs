//! The port tunnel's per-stream handshake, shared by the agent (which dials the port inside
//! the sandbox), the client and the CLI's log lines.
//!
//! A tunnel is one WebSocket carrying a yamux session; the client opens one yamux stream per
//! TCP connection. The stream starts with a 3-byte connect header from the client —
//! `[version][port, u16 big-endian]` — and the server answers one status byte. After
//! [`STATUS_OK`] the stream is a transparent byte pipe to `127.0.0.1:PORT` inside the
//! sandbox; after any other status the server closes the stream.

/// The only connect-header version there is.
pub const PROTOCOL_VERSION: u8 = 1;
/// Length of the connect header.
pub const HEADER_LEN: usize = 3;

/// The port is open: bytes flow from here on.
pub const STATUS_OK: u8 = 0x00;
/// The port may not be tunnelled (port 0).
pub const STATUS_PORT_NOT_ALLOWED: u8 = 0x01;
/// Nothing accepted the connection inside the sandbox (refused or timed out).
pub const STATUS_DIAL_FAILED: u8 = 0x02;
/// The header's version is not [`PROTOCOL_VERSION`].
pub const STATUS_UNSUPPORTED_VERSION: u8 = 0x03;

/// The connect header for `port`.
pub fn encode_header(port: u16) -> [u8; HEADER_LEN] {
    let [hi, lo] = port.to_be_bytes();
    [PROTOCOL_VERSION, hi, lo]
}

/// The port a connect header asks for, or the status byte that refuses it.
///
/// Which ports are "not allowed" is the backend's policy (clients only log the status): only
/// port 0 is refused. Every other port is dialled inside the sandbox's own network namespace,
/// where nothing but that sandbox's own services can answer, so none needs refusing.
pub fn decode_header(header: [u8; HEADER_LEN]) -> Result<u16, u8> {
    if header[0] != PROTOCOL_VERSION {
        return Err(STATUS_UNSUPPORTED_VERSION);
    }
    match u16::from_be_bytes([header[1], header[2]]) {
        0 => Err(STATUS_PORT_NOT_ALLOWED),
        port => Ok(port),
    }
}

/// What a non-OK status means, in the words the LangSmith CLI logs (`reason=…`).
pub fn status_reason(status: u8) -> &'static str {
    match status {
        STATUS_OK => "ok",
        STATUS_PORT_NOT_ALLOWED => "port not allowed",
        STATUS_DIAL_FAILED => "dial failed (is the service running?)",
        STATUS_UNSUPPORTED_VERSION => "unsupported protocol version (client/server mismatch)",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_refuses_port_zero_and_other_versions() {
        assert_eq!(encode_header(8080), [1, 0x1f, 0x90]);
        assert_eq!(decode_header(encode_header(65535)), Ok(65535));
        assert_eq!(decode_header([1, 0, 0]), Err(STATUS_PORT_NOT_ALLOWED));
        assert_eq!(decode_header([2, 0, 22]), Err(STATUS_UNSUPPORTED_VERSION));
        assert_eq!(
            status_reason(STATUS_DIAL_FAILED),
            "dial failed (is the service running?)"
        );
        assert_eq!(status_reason(9), "unknown");
    }
}
