//! The scripting layer end to end: example scripts and the REPL against the real server.

use crate::common::api::Api;
use crate::common::{TestServer, cli, image};

#[test]
fn the_hello_example_runs_a_command_and_cleans_up() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("script-tiny", image::tiny(), 64 << 20);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/examples/hello.rhai");
    let out = cli::run(&server, &["run", example, &snapshot, "hello-box"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let result = out.json();
    assert_eq!(result["stdout"], "hello from a script\nLinux\n", "{result}");
    assert_eq!(result["exit_code"], 3);
    let r = api.call("GET", "/api/v2/sandboxes/boxes/hello-box", None);
    assert_eq!(r.status, 404, "the example must delete its sandbox");
}

#[test]
fn the_repl_evaluates_lines_with_the_bindings() {
    let server = TestServer::start();
    let api = Api::new(&server);
    api.ready_snapshot("repl-tiny", image::tiny(), 64 << 20);
    let input = b"let x = 40 + 2;\nx\nsnapshot_list()[0].name\nsandbox_get(\"nope\")\nx + 1\n";
    let out = cli::run_with_stdin(&server, &["shell"], Some(input));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        vec!["42", "repl-tiny", "43"],
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("404"),
        "the failed call is reported: {}",
        out.stderr
    );
}
