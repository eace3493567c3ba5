//! How far a command's output stream has been delivered, in the agent's raw byte offsets, so
//! that a re-attachment asks for the right offset and every byte is shown once.
//!
//! Offsets count the raw bytes the process wrote, but chunk text replaces invalid UTF-8 with
//! U+FFFD (3 bytes of text for 1–3 raw bytes, the exec protocol's rule): the raw end of
//! a chunk holding one is not known from its text. So chunk text never moves the position
//! forward by itself: on one attachment chunks are contiguous and each is delivered whole,
//! the offset of the next one says where the previous one ended. A re-attachment after a
//! chunk with U+FFFD resumes from that chunk's start (known exactly); the replay decodes the
//! same raw bytes the same way, so its first chunk drops the text already shown.

/// One stream's delivered output.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Position {
    /// Every raw byte before this offset was delivered.
    exact: u64,
    /// Text already shown for raw bytes from `exact` on: the last chunk held U+FFFD, so its
    /// raw length is unknown.
    shown_after: usize,
    /// The next chunk is the first of a new attachment and may repeat delivered output.
    resuming: bool,
}

impl Position {
    /// The offset to re-attach from; the first chunk after it is checked for overlap.
    pub fn resume(&mut self) -> u64 {
        self.resuming = true;
        self.exact
    }

    /// Raw bytes the server skipped before a chunk at `offset` (it no longer held them).
    pub fn lost_before(&self, offset: u64) -> u64 {
        offset
            .saturating_sub(self.exact)
            .saturating_sub(self.shown_after as u64)
    }

    /// Take a (non-empty) chunk of `len` bytes: how many of its leading bytes were delivered
    /// already. One session gets either text or raw chunks (every attachment asks the same
    /// way), so `shown_after` (text bytes) is never applied to a raw chunk's bytes. Only the
    /// first chunk after a re-attachment can overlap, and only as far as raw offsets say.
    /// `exact`: the chunk's length is its raw length (no U+FFFD in its text).
    pub fn take(&mut self, offset: u64, len: usize, exact: bool) -> usize {
        if self.resuming {
            let seen = match offset <= self.exact {
                true => (self.exact - offset) as usize + self.shown_after,
                false => 0,
            };
            if seen >= len {
                return len; // a replay of delivered output: wait for the rest
            }
            self.resuming = false;
            self.advance(offset, len, exact);
            return seen;
        }
        self.advance(offset, len, exact);
        0
    }

    fn advance(&mut self, offset: u64, len: usize, exact: bool) {
        if exact {
            self.exact = offset + len as u64;
            self.shown_after = 0;
        } else {
            self.exact = offset;
            self.shown_after = len;
        }
    }
}
