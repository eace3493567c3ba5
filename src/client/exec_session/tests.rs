//! Offset bookkeeping of a session: chunks of one attachment are shown whole (invalid UTF-8
//! included), a replay after a re-attachment that overlaps what was delivered is trimmed by
//! raw offsets, and bytes the server skipped are counted as lost.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::*;

fn session() -> Session {
    let (events, _) = mpsc::channel(1);
    let (started, _) = oneshot::channel();
    Session::new(
        "ws://127.0.0.1:1/execute/ws".into(),
        "key".into(),
        ExecuteMessage::default(),
        events,
        started,
        LostBytes::default(),
    )
}

fn text(event: Option<ExecEvent>) -> Option<String> {
    match event {
        Some(ExecEvent::Stdout(s) | ExecEvent::Stderr(s)) => {
            Some(String::from_utf8(s.to_vec()).unwrap())
        }
        None => None,
        Some(other) => panic!("unexpected {other:?}"),
    }
}

fn stdout(s: &mut Session, data: &str, offset: u64) -> Option<String> {
    text(s.fresh(0, data.into(), offset))
}

#[test]
fn invalid_bytes_on_one_attachment_lose_nothing_that_follows() {
    let mut s = session();
    // The process wrote b"\xff" then b"abcd\xfe\xfd" then b"xyz\n": 1 + 6 + 4 raw bytes.
    assert_eq!(stdout(&mut s, "\u{FFFD}", 0).as_deref(), Some("\u{FFFD}"));
    assert_eq!(
        stdout(&mut s, "abcd\u{FFFD}\u{FFFD}", 1).as_deref(),
        Some("abcd\u{FFFD}\u{FFFD}")
    );
    assert_eq!(stdout(&mut s, "xyz\n", 7).as_deref(), Some("xyz\n"));
    assert_eq!(s.positions[0].resume(), 11);
    assert_eq!(s.lost[0].load(Ordering::Relaxed), 0);
}

#[test]
fn a_reconnect_after_invalid_bytes_resumes_from_that_chunk_and_shows_the_rest_once() {
    let mut s = session();
    assert_eq!(stdout(&mut s, "ab", 0).as_deref(), Some("ab"));
    assert_eq!(stdout(&mut s, "c\u{FFFD}", 2).as_deref(), Some("c\u{FFFD}"));
    // Its raw end is unknown (U+FFFD stood for 1–3 bytes): re-attach from its start.
    assert_eq!(s.positions[0].resume(), 2);
    assert_eq!(
        stdout(&mut s, "c\u{FFFD}de", 2).as_deref(),
        Some("de"),
        "the replay loses exactly what was shown"
    );
    assert_eq!(stdout(&mut s, "f", 6).as_deref(), Some("f"));
    assert_eq!(s.lost[0].load(Ordering::Relaxed), 0);
}

#[test]
fn after_a_reconnect_a_replay_from_an_older_offset_is_trimmed() {
    let mut s = session();
    assert_eq!(stdout(&mut s, "line1\n", 0).as_deref(), Some("line1\n"));
    assert_eq!(stdout(&mut s, "line2\n", 6).as_deref(), Some("line2\n"));
    assert_eq!(s.positions[0].resume(), 12);
    // A server that replays from before the requested offset: only new bytes are shown.
    assert_eq!(stdout(&mut s, "e1\n", 3), None);
    assert_eq!(
        stdout(&mut s, "line2\nline3\n", 6).as_deref(),
        Some("line3\n")
    );
    // Streams are counted apart.
    assert_eq!(
        text(s.fresh(1, "err\n".into(), 0)).as_deref(),
        Some("err\n")
    );
    assert_eq!(s.positions[1].resume(), 4);
    assert_eq!(s.lost[0].load(Ordering::Relaxed), 0);
}

#[test]
fn bytes_the_server_no_longer_held_are_counted_as_lost() {
    let mut s = session();
    assert_eq!(stdout(&mut s, "ab", 0).as_deref(), Some("ab"));
    assert_eq!(s.positions[0].resume(), 2);
    assert_eq!(stdout(&mut s, "yz", 100).as_deref(), Some("yz"));
    assert_eq!(s.lost[0].load(Ordering::Relaxed), 98);
    assert_eq!(s.positions[0].resume(), 102);
}

#[test]
fn raw_frames_are_cut_anywhere_and_a_replay_of_them_is_trimmed_by_offset() {
    use crate::api::exec_frames::{OutputStream, decode, encode};
    let raw = |offset, bytes: &[u8]| Bytes::from(encode(OutputStream::Stdout, offset, bytes));
    let fresh = |s: &mut Session, frame: &Bytes| s.fresh_raw(frame, decode(frame).unwrap());
    let bytes = |event: Option<ExecEvent>| match event {
        Some(ExecEvent::Stdout(b)) => Some(b.to_vec()),
        None => None,
        Some(other) => panic!("unexpected {other:?}"),
    };
    let mut s = session();
    // "€" is e2 82 ac: a frame may end inside it, and invalid bytes need no U+FFFD.
    assert_eq!(
        bytes(fresh(&mut s, &raw(0, b"\xff\xe2"))),
        Some(b"\xff\xe2".to_vec())
    );
    assert_eq!(
        bytes(fresh(&mut s, &raw(2, b"\x82\xac"))),
        Some(b"\x82\xac".to_vec())
    );
    assert_eq!(s.positions[0].resume(), 4, "raw offsets are exact");
    // A replay from before the resumed offset shows only what is new, even mid-character.
    assert_eq!(
        bytes(fresh(&mut s, &raw(1, b"\xe2\x82\xacz"))),
        Some(b"z".to_vec())
    );
    assert_eq!(s.lost[0].load(Ordering::Relaxed), 0);
}
