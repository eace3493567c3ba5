//! Interrupts of the bridge: a blocked call ends with an error no script can catch, and a second
//! interrupt ends the wait for kills to be confirmed.

use super::*;

fn bridge() -> (tokio::runtime::Runtime, Arc<Bridge>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bridge = Bridge::new(rt.handle().clone(), ConfigInputs::default());
    (rt, bridge)
}

#[test]
fn an_interrupt_ends_a_blocked_call_with_an_uncatchable_error() {
    let (_rt, bridge) = bridge();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let blocked = {
        let bridge = bridge.clone();
        std::thread::spawn(move || {
            bridge.block_on(async move {
                entered_tx.send(()).unwrap();
                std::future::pending::<()>().await
            })
        })
    };
    entered_rx.recv().unwrap();
    assert!(!bridge.interrupted());
    bridge.interrupt();
    let err = blocked.join().unwrap().unwrap_err();
    assert!(
        matches!(*err, EvalAltResult::ErrorTerminated(..)),
        "{err:?}"
    );
    assert_eq!(error_text(&err), "interrupted");
    assert!(bridge.interrupted());
    // Sticky until cleared: a later call fails at once, then works again after clearing.
    assert!(bridge.block_on(async { 1 }).is_err());
    bridge.clear_interrupt();
    assert_eq!(bridge.block_on(async { 1 }).unwrap(), 1);
}

#[test]
fn a_second_interrupt_ends_the_wait_for_kills() {
    let (rt, bridge) = bridge();
    let client = Client::new(crate::client::Endpoint {
        base: "http://127.0.0.1:1".into(),
        api_key: "key".into(),
        workspace_id: None,
    })
    .unwrap();
    // Nobody listens on port 1: the session keeps retrying for seconds, so the kill it
    // was asked for cannot be confirmed soon.
    let killer = {
        let _context = rt.enter();
        let starting =
            client.start_exec("http://127.0.0.1:1/dp/x", "true", &ExecOptions::default());
        starting.killer()
    };
    bridge.commands.lock().unwrap().push(killer.clone());
    bridge.interrupt();
    let settling = {
        let bridge = bridge.clone();
        std::thread::spawn(move || bridge.settle(Duration::from_secs(600)))
    };
    // Keep pressing Ctrl-C until the wait gives up; it must not wait for the session.
    while !settling.is_finished() {
        bridge.interrupt();
        std::thread::yield_now();
    }
    settling.join().unwrap();
    assert!(
        !killer.is_finished(),
        "the wait ended only because the session did"
    );
}
