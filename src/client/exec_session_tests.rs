//! Offset bookkeeping of a session: a replay that overlaps what was delivered is trimmed, a
//! repeated chunk is dropped, and bytes the server skipped are counted as lost.

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
        Some(ExecEvent::Stdout(s) | ExecEvent::Stderr(s)) => Some(s),
        None => None,
        Some(other) => panic!("unexpected {other:?}"),
    }
}

#[test]
fn replays_are_trimmed_to_the_bytes_not_yet_delivered() {
    let mut s = session();
    assert_eq!(
        text(s.fresh(0, "line1\n".into(), 0)).as_deref(),
        Some("line1\n")
    );
    // A reconnect from an older offset replays part of what we have: only the rest is new.
    assert_eq!(
        text(s.fresh(0, "e1\nline2\n".into(), 3)).as_deref(),
        Some("line2\n")
    );
    assert_eq!(text(s.fresh(0, "line2\n".into(), 6)), None);
    // Streams are counted apart.
    assert_eq!(
        text(s.fresh(1, "err\n".into(), 0)).as_deref(),
        Some("err\n")
    );
    assert_eq!(s.offsets, [12, 4]);
    assert_eq!(s.lost[0].load(Ordering::Relaxed), 0);
}

#[test]
fn bytes_the_server_no_longer_held_are_counted_as_lost() {
    let mut s = session();
    assert_eq!(text(s.fresh(0, "ab".into(), 0)).as_deref(), Some("ab"));
    assert_eq!(text(s.fresh(0, "yz".into(), 100)).as_deref(), Some("yz"));
    assert_eq!(s.lost[0].load(Ordering::Relaxed), 98);
    assert_eq!(s.offsets[0], 102);
}

#[test]
fn a_cut_inside_a_character_keeps_the_rest_of_the_chunk() {
    let mut s = session();
    assert_eq!(text(s.fresh(0, "ab".into(), 0)).as_deref(), Some("ab"));
    // Offsets drifted (a U+FFFD stood for one raw byte): the cut lands inside "é".
    assert_eq!(text(s.fresh(0, "aé!".into(), 0)).as_deref(), Some("!"));
}
