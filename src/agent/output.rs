//! Retained output of one stream (stdout or stderr): a bounded byte window addressed by absolute
//! byte offsets, and the rule that cuts it into `stdout`/`stderr` chunks only at UTF-8 boundaries.
//!
//! The buffer never grows past its capacity: bytes below `start` are gone, and a reader asking
//! for them is moved up to `start` ([`StreamBuffer::clamp_cursor`]): the client sees a gap in
//! offsets, never a byte twice, which is what the official SDK tolerates (it appends every
//! chunk and does not look for gaps). Whether old bytes may
//! be dropped (nobody needs them) or the producer must wait (an attached reader has not sent them
//! yet) is decided by the session, which knows the readers; this type only does the arithmetic.

use std::collections::VecDeque;

use crate::api::exec::MAX_OUTPUT_CHUNK;

/// Bytes retained per stream by default. Several MiB: enough to replay what a reconnecting client missed.
pub const DEFAULT_RETAINED_BYTES: usize = 16 * 1024 * 1024;

/// One output stream's retained bytes, `start..end` in absolute offsets.
#[derive(Debug)]
pub struct StreamBuffer {
    bytes: VecDeque<u8>,
    /// Absolute offset of `bytes[0]`.
    start: u64,
    capacity: usize,
    /// The producer reached end-of-file; no byte will ever follow `end()`.
    eof: bool,
}

/// A chunk ready to be sent: `data` decodes the raw bytes `offset..offset + raw_len`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub offset: u64,
    pub raw_len: usize,
    pub data: String,
}

impl StreamBuffer {
    pub fn new(capacity: usize) -> Self {
        StreamBuffer {
            bytes: VecDeque::new(),
            start: 0,
            capacity: capacity.max(MAX_OUTPUT_CHUNK),
            eof: false,
        }
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Most bytes ever retained at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn mark_eof(&mut self) {
        self.eof = true;
    }

    /// No byte will follow [`StreamBuffer::end`].
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Where a reader asking for `requested` starts: never below it, but clamped into the
    /// retained window (older → oldest retained byte; beyond the end → the end).
    pub fn clamp_cursor(&self, requested: u64) -> u64 {
        requested.clamp(self.start, self.end())
    }

    /// Appends as much of `data` as fits without dropping a byte at or above `keep_from`
    /// (the lowest cursor of an attached reader, or `u64::MAX` when nobody is attached).
    /// Returns how many bytes were taken; the caller waits for readers before retrying the rest.
    pub fn append(&mut self, data: &[u8], keep_from: u64) -> usize {
        let droppable = keep_from.clamp(self.start, self.end()) - self.start;
        let free = self.capacity - self.bytes.len() + droppable as usize;
        let taken = data.len().min(free);
        let overflow = (self.bytes.len() + taken).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.start += overflow as u64;
        self.bytes.extend(&data[..taken]);
        taken
    }

    /// The next chunk for a reader at `cursor`, or `None` when nothing sendable is retained yet
    /// (no bytes, or only an incomplete UTF-8 sequence that may still be completed).
    pub fn chunk_at(&self, cursor: u64) -> Option<Chunk> {
        let cursor = self.clamp_cursor(cursor);
        let from = (cursor - self.start) as usize;
        let until = self.bytes.len().min(from + MAX_OUTPUT_CHUNK);
        if from == until {
            return None;
        }
        let mut raw = Vec::with_capacity(until - from);
        let (a, b) = self.bytes.as_slices();
        copy_range(a, b, from, until, &mut raw);
        let at_end = until == self.bytes.len();
        if !(at_end && self.eof) {
            raw.truncate(utf8_safe_len(&raw));
        }
        if raw.is_empty() {
            return None;
        }
        let raw_len = raw.len();
        // Valid UTF-8 (nearly all output) becomes the text without a copy; `from_utf8` also
        // checks far faster than the lossy decoder, which walks the bytes one by one.
        let data = String::from_utf8(raw)
            .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
        Some(Chunk {
            offset: cursor,
            raw_len,
            data,
        })
    }
}

/// Raw bytes ready to be sent where no text is needed (the SSE variant's base64 payloads,
/// binary frames): after the headroom asked for, `bytes` are the stream's bytes from `offset`
/// on, cut anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct RawChunk {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

impl StreamBuffer {
    /// The next raw chunk (at most `max` bytes) for a reader at `cursor`, after `headroom`
    /// zero bytes that the caller fills in (a frame header: the bytes are copied once).
    pub fn raw_at(&self, cursor: u64, max: usize, headroom: usize) -> Option<RawChunk> {
        let cursor = self.clamp_cursor(cursor);
        let from = (cursor - self.start) as usize;
        let until = self.bytes.len().min(from + max);
        if from == until {
            return None;
        }
        let mut bytes = Vec::with_capacity(headroom + until - from);
        bytes.resize(headroom, 0);
        let (a, b) = self.bytes.as_slices();
        copy_range(a, b, from, until, &mut bytes);
        Some(RawChunk {
            offset: cursor,
            bytes,
        })
    }
}

/// Copies `from..until` of the logical concatenation `a ++ b` into `out`.
fn copy_range(a: &[u8], b: &[u8], from: usize, until: usize, out: &mut Vec<u8>) {
    if from < a.len() {
        out.extend_from_slice(&a[from..until.min(a.len())]);
    }
    if until > a.len() {
        out.extend_from_slice(&b[from.saturating_sub(a.len())..until - a.len()]);
    }
}

/// Length of the longest prefix of `raw` that does not end inside a UTF-8 sequence that could
/// still be completed by later bytes. Invalid bytes are not held back (they can never become
/// valid), so a stream of garbage still flows.
pub fn utf8_safe_len(raw: &[u8]) -> usize {
    // A sequence is at most 4 bytes, so only the last 3 bytes can be an incomplete start.
    let tail_from = raw.len().saturating_sub(3);
    for i in (tail_from..raw.len()).rev() {
        let byte = raw[i];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: keep looking for its lead byte
        }
        let needed = match byte {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return raw.len(), // ASCII or invalid lead: nothing to wait for
        };
        return if raw.len() - i < needed { i } else { raw.len() };
    }
    raw.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_multibyte_tail_is_held_back_until_eof() {
        let euro = "€".as_bytes(); // 3 bytes
        let mut buf = StreamBuffer::new(DEFAULT_RETAINED_BYTES);
        buf.append(b"ab", u64::MAX);
        buf.append(&euro[..2], u64::MAX);
        let first = buf.chunk_at(0).unwrap();
        assert_eq!((first.data.as_str(), first.raw_len), ("ab", 2));
        assert_eq!(buf.chunk_at(2), None);
        buf.append(&euro[2..], u64::MAX);
        assert_eq!(buf.chunk_at(2).unwrap().data, "€");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters_and_keep_their_length() {
        let mut buf = StreamBuffer::new(DEFAULT_RETAINED_BYTES);
        buf.append(b"a\xffb\xfe", u64::MAX);
        buf.mark_eof();
        let chunk = buf.chunk_at(0).unwrap();
        assert_eq!(
            (chunk.data.as_str(), chunk.raw_len),
            ("a\u{FFFD}b\u{FFFD}", 4)
        );
    }

    #[test]
    fn chunks_never_exceed_the_limit_and_never_split_a_char() {
        // Two bytes each, after one: every chunk's limit falls inside a character.
        let text = format!("x{}", "é".repeat(MAX_OUTPUT_CHUNK));
        let mut buf = StreamBuffer::new(DEFAULT_RETAINED_BYTES);
        buf.append(text.as_bytes(), u64::MAX);
        buf.mark_eof();
        let (mut cursor, mut out) = (0, String::new());
        while let Some(chunk) = buf.chunk_at(cursor) {
            assert!(chunk.raw_len <= MAX_OUTPUT_CHUNK);
            assert_eq!(chunk.offset, cursor);
            cursor += chunk.raw_len as u64;
            out.push_str(&chunk.data);
        }
        assert_eq!(out, text);
    }

    #[test]
    fn full_buffer_drops_only_bytes_below_the_slowest_reader() {
        let mut buf = StreamBuffer::new(MAX_OUTPUT_CHUNK);
        let block = vec![b'x'; MAX_OUTPUT_CHUNK];
        assert_eq!(buf.append(&block, u64::MAX), MAX_OUTPUT_CHUNK);
        assert_eq!(buf.append(b"yz", 1), 1, "only byte 0 may be dropped");
        assert_eq!((buf.start(), buf.end()), (1, MAX_OUTPUT_CHUNK as u64 + 1));
        assert_eq!(buf.append(b"z", u64::MAX), 1);
        assert_eq!(
            buf.clamp_cursor(0),
            2,
            "dropped bytes: start at the oldest retained"
        );
        assert_eq!(buf.clamp_cursor(u64::MAX), buf.end());
    }
}
