//! Capturing a running sandbox into a snapshot, through the CLI.

use serde_json::json;

use crate::common::api::Api;
use crate::common::cli::Cli;
use crate::common::{TestServer, image};

#[test]
fn a_capture_carries_the_sandbox_files_into_new_sandboxes() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("base", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("origin", &snap, json!({}));
    assert_eq!(api.exec(&sb, "echo captured > /root/kept.txt").exit_code, 0);
    // A command keeps writing while the capture runs; the capture must still complete and
    // the sandbox must keep working afterwards.
    assert_eq!(
        api.exec(
            &sb,
            "(while true; do date >> /tmp/busy; done) >/dev/null 2>&1 &"
        )
        .exit_code,
        0
    );

    let out = Cli::new(&server)
        .args(&[
            "sandbox", "snapshot", "capture", "captured", "--box", "origin", "--wait",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let captured = out.json();
    assert_eq!(captured["status"], "ready", "{captured}");
    assert_eq!(captured["source_sandbox_id"], sb["id"]);
    let captured_id = captured["id"].as_str().unwrap();

    assert_eq!(
        api.exec(&sb, "cat /root/kept.txt").stdout,
        "captured\n",
        "the origin lives on"
    );
    let copy = api.ready_sandbox("copy", captured_id, json!({}));
    assert_eq!(api.exec(&copy, "cat /root/kept.txt").stdout, "captured\n");
    assert_eq!(
        api.exec(&copy, "cat /etc/hello").stdout,
        "hello from the tiny image\n"
    );

    // The snapshot is in use: deleting it is refused until its sandboxes are gone.
    let out = Cli::new(&server)
        .args(&["sandbox", "snapshot", "delete", captured_id])
        .run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("409"), "{}", out.stderr);
    api.delete_sandbox("copy");
    api.delete_sandbox("origin");
    let out = Cli::new(&server)
        .args(&["sandbox", "snapshot", "delete", captured_id])
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Snapshot deleted.\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn only_running_sandboxes_are_captured() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snap = api.ready_snapshot("base", image::tiny(), 64 << 20);
    api.ready_sandbox("sleepy", &snap, json!({}));
    let out = Cli::new(&server).args(&["sandbox", "stop", "sleepy"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = Cli::new(&server)
        .args(&["sandbox", "snapshot", "capture", "nope", "--box", "sleepy"])
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("capturing snapshot: HTTP 400"),
        "{}",
        out.stderr
    );
    let out = Cli::new(&server)
        .args(&["sandbox", "snapshot", "capture", "nope", "--box", "missing"])
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("capturing snapshot: HTTP 404"),
        "{}",
        out.stderr
    );
    api.delete_sandbox("sleepy");
}
