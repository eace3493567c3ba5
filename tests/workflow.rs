//! The user document's end-to-end workflow, through the CLI, against the local backend.

use crate::common::cli::Cli;
use crate::common::{TestServer, image};

#[test]
fn build_create_exec_delete_through_the_cli() {
    let server = TestServer::start();
    let image = image::tiny();

    let out = Cli::new(&server)
        .args(&[
            "sandbox",
            "snapshot",
            "build",
            "tiny",
            "--docker-image",
            image,
            "--capacity",
            "64mb",
            "--wait",
        ])
        .run();
    assert_eq!(out.code, 0, "build failed: {}", out.stderr);
    let snapshot = out.json();
    assert_eq!(snapshot["status"], "ready", "{snapshot}");
    assert_eq!(snapshot["fs_capacity_bytes"], 64 << 20);
    // The LangSmith CLI prints its own field order (id, name, docker_image, …), 2-space indented.
    assert!(out.stdout.starts_with("{\n  \"id\": "), "{}", out.stdout);
    let name_at = out.stdout.find("\"name\"").unwrap();
    assert!(
        name_at < out.stdout.find("\"docker_image\"").unwrap(),
        "{}",
        out.stdout
    );
    let snapshot_id = snapshot["id"].as_str().unwrap();

    let out = Cli::new(&server)
        .args(&[
            "sandbox",
            "create",
            "my-vm",
            "--snapshot-id",
            snapshot_id,
            "--vcpus",
            "2",
            "--memory",
            "1gb",
            "--wait",
        ])
        .run();
    assert_eq!(out.code, 0, "create failed: {}", out.stderr);
    let sandbox = out.json();
    assert_eq!(sandbox["name"], "my-vm");
    assert_eq!(sandbox["status"], "ready");
    assert_eq!(sandbox["vcpus"], 2);
    assert_eq!(sandbox["mem_bytes"], 1u64 << 30);

    let out = Cli::new(&server)
        .args(&[
            "sandbox",
            "exec",
            "my-vm",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ])
        .run();
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");

    let out = Cli::new(&server)
        .args(&["sandbox", "exec", "my-vm", "--", "cat", "/etc/hello"])
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hello from the tiny image\n")
    );

    let out = Cli::new(&server).args(&["sandbox", "list"]).run();
    assert_eq!(out.code, 0);
    assert_eq!(out.json()[0]["name"], "my-vm");

    let out = Cli::new(&server)
        .args(&["sandbox", "delete", "my-vm"])
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Sandbox deleted.\n"),
        "{}",
        out.stderr
    );

    let out = Cli::new(&server).args(&["sandbox", "get", "my-vm"]).run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("{\"error\": \"getting sandbox: HTTP 404"),
        "{}",
        out.stderr
    );
}

#[test]
fn cli_errors_are_one_json_line_with_exit_1() {
    let server = TestServer::start();
    let out = Cli::new(&server)
        .args(&[
            "sandbox",
            "create",
            "x",
            "--snapshot-id",
            "s",
            "--memory",
            "12qb",
        ])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim_end(),
        r#"{"error": "invalid --memory: invalid size \"12qb\": unknown unit \"qb\""}"#
    );
    let out = Cli::new(&server).args(&["sandbox", "create", "x"]).run();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim_end(),
        r#"{"error": "--snapshot-id is required"}"#
    );
}
