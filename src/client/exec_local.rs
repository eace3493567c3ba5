//! Connecting a remote [`Command`] to this process: copying a local reader (normally stdin)
//! into the command's stdin, and giving its PTY the local terminal's size, following resizes.
//!
//! The wire carries stdin as JSON text, so bytes are decoded as UTF-8 with sequences split
//! across reads re-assembled; bytes that are not UTF-8 arrive as U+FFFD. Stdin has no offsets
//! in the protocol: input in flight when a connection drops may be lost.

use std::io::Read;
use std::os::fd::AsRawFd;

use super::exec::{Command, StdinItem};

/// Size of one read from the local reader.
const READ_CHUNK: usize = 64 * 1024;
/// What a PTY's line discipline takes as end-of-file at the start of a line (Ctrl-D).
const PTY_EOF: &str = "\u{4}";

impl Command {
    /// Copy `reader` into the command's stdin from a plain thread until EOF, then close stdin
    /// (under a PTY, which has no half-close, send Ctrl-D instead). The copy waits while the
    /// command does not read and stops when the command ends. A thread (not a runtime task)
    /// because a blocked read must never hold up the runtime's shutdown.
    pub fn forward_stdin<R: Read + Send + 'static>(&self, mut reader: R, pty: bool) {
        let stdin = self.stdin.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut pending = Vec::new();
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => 0,
                };
                pending.extend_from_slice(&buf[..n]);
                let text = decode_utf8(&mut pending, n == 0);
                if !text.is_empty() && stdin.blocking_send(StdinItem::Data(text)).is_err() {
                    return; // the command ended
                }
                if n == 0 {
                    let end = if pty {
                        StdinItem::Data(PTY_EOF.into())
                    } else {
                        StdinItem::Close
                    };
                    let _ = stdin.blocking_send(end);
                    return;
                }
            }
        });
    }

    /// Give the PTY the local terminal's size now and after every SIGWINCH until the command
    /// ends. Does nothing when no standard stream is a terminal.
    pub fn follow_terminal_size(&self) {
        let Some((cols, rows)) = terminal_size() else {
            return;
        };
        self.resize(cols, rows);
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        let (command, killer) = (self.clone(), self.killer());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = winch.recv() => {
                        if got.is_none() { return }
                        if let Some((cols, rows)) = terminal_size() {
                            command.resize(cols, rows);
                        }
                    }
                    () = killer.finished() => return,
                }
            }
        });
    }
}

/// `(cols, rows)` of the first of stdout, stdin, stderr that is a terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    let fds = [
        std::io::stdout().as_raw_fd(),
        std::io::stdin().as_raw_fd(),
        std::io::stderr().as_raw_fd(),
    ];
    fds.into_iter().find_map(|fd| {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the pointer, which outlives the call.
        let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
        (ok && size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
    })
}

/// Take the decodable prefix of `pending` as text, leaving an incomplete trailing sequence for
/// the next read; invalid bytes (and, `at_eof`, a dangling partial sequence) become U+FFFD.
pub fn decode_utf8(pending: &mut Vec<u8>, at_eof: bool) -> String {
    let mut out = String::with_capacity(pending.len());
    let mut rest: &[u8] = pending;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(text);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).expect("checked valid"));
                match e.error_len() {
                    Some(bad) => {
                        out.push('\u{FFFD}');
                        rest = &after[bad..];
                    }
                    None if at_eof => {
                        out.push('\u{FFFD}');
                        rest = &[];
                        break;
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    *pending = rest.to_vec();
    out
}

#[cfg(test)]
mod tests {
    use super::decode_utf8;

    #[test]
    fn a_character_split_across_reads_is_reassembled() {
        let bytes = "é!".as_bytes();
        let mut pending = bytes[..1].to_vec();
        assert_eq!(decode_utf8(&mut pending, false), "");
        assert_eq!(pending, bytes[..1]);
        pending.extend_from_slice(&bytes[1..]);
        assert_eq!(decode_utf8(&mut pending, false), "é!");
        assert!(pending.is_empty());
    }

    #[test]
    fn invalid_bytes_and_a_dangling_tail_become_replacement_characters() {
        let mut pending = b"a\xffb\xc3".to_vec();
        assert_eq!(decode_utf8(&mut pending, false), "a\u{FFFD}b");
        assert_eq!(pending, b"\xc3");
        assert_eq!(decode_utf8(&mut pending, true), "\u{FFFD}");
        assert!(pending.is_empty());
    }
}
