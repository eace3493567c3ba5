//! Binary output frames on `/execute/ws`: this project's own extension of the exec protocol,
//! which a client asks for with a request header and which any other server ignores.
//!
//! The protocol's `stdout`/`stderr` messages carry output as JSON text. That costs twice
//! where output is raw bytes: bytes that are not UTF-8 become U+FFFD (a binary file piped
//! through `exec` arrives damaged), and control bytes are escaped (`\u0000` is six bytes for
//! one), which is most of what limits a large transfer. A client that only copies output to a
//! file descriptor (`langsmith sandbox exec`, the console) asks for output as binary
//! WebSocket messages instead:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0 | stream: 1 stdout, 2 stderr |
//! | 1–8 | offset of the first byte in that stream, big-endian `u64` |
//! | 9… | the raw bytes, cut anywhere |
//!
//! Every other message (`started`, `exit`, `error`) stays JSON text. The official SDKs never
//! send the header, so they get the protocol as specified. A server that does not know the
//! header (LangSmith itself) sends JSON text as always, and the client reads both.

/// The request header of the upgrade that asks for binary output frames.
pub const OUTPUT_FRAMES_HEADER: &str = "x-langsmith-output-frames";
/// Its one value.
pub const BINARY: &str = "binary";

/// Raw output bytes put in one binary frame: larger than a JSON message's share, as nothing
/// is escaped and only this project's clients (with a 64 MiB message limit) read them.
pub const MAX_BINARY_CHUNK: usize = 256 * 1024;

/// Bytes before the output in a frame.
pub const HEADER_LEN: usize = 9;

/// Which output stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout = 1,
    Stderr = 2,
}

/// One decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFrame<'a> {
    pub stream: OutputStream,
    pub offset: u64,
    pub bytes: &'a [u8],
}

/// The frame for `bytes` of `stream` starting at `offset`.
pub fn encode(stream: OutputStream, offset: u64, bytes: &[u8]) -> Vec<u8> {
    let mut frame = vec![0; HEADER_LEN];
    frame.extend_from_slice(bytes);
    write_header(&mut frame, stream, offset);
    frame
}

/// Fills in the header of `frame`, whose output already follows its first [`HEADER_LEN`]
/// bytes (so a sender copies the output once).
pub fn write_header(frame: &mut [u8], stream: OutputStream, offset: u64) {
    frame[0] = stream as u8;
    frame[1..HEADER_LEN].copy_from_slice(&offset.to_be_bytes());
}

/// The frame in `message`, or `None` when it is not one (too short, unknown stream). A JSON
/// message in a binary frame (which the protocol allows) is never taken for one: JSON text
/// starts with `{` or white space, never with byte 1 or 2.
pub fn decode(message: &[u8]) -> Option<OutputFrame<'_>> {
    let (header, bytes) = message.split_at_checked(HEADER_LEN)?;
    let stream = match header[0] {
        1 => OutputStream::Stdout,
        2 => OutputStream::Stderr,
        _ => return None,
    };
    let offset = u64::from_be_bytes(header[1..].try_into().ok()?);
    Some(OutputFrame {
        stream,
        offset,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_decodes_to_what_was_encoded_and_garbage_to_nothing() {
        let bytes = [0u8, 0xff, b'a', 0x80];
        let frame = encode(OutputStream::Stderr, 1 << 40, &bytes);
        assert_eq!(
            decode(&frame),
            Some(OutputFrame {
                stream: OutputStream::Stderr,
                offset: 1 << 40,
                bytes: &bytes,
            })
        );
        let empty = encode(OutputStream::Stdout, 7, b"");
        assert_eq!(
            decode(&empty).map(|f| (f.offset, f.bytes.len())),
            Some((7, 0))
        );
        assert_eq!(decode(&frame[..8]), None, "shorter than the header");
        let mut unknown = frame.clone();
        unknown[0] = 3;
        assert_eq!(decode(&unknown), None, "no such stream");
        assert_eq!(decode(b"{\"type\":\"exit\"}"), None);
    }
}
