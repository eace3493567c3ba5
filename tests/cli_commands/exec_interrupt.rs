//! `langsmith sandbox exec` when things go wrong mid-command: Ctrl-C kills the remote command
//! and exits 130, so does a reader closing the CLI's stdout (exit 141); a crash and restart of
//! the server is survived by re-attaching from byte offsets, so every byte arrives exactly once;
//! output the sandbox no longer holds by the time the client is back is reported, not skipped.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout};

use super::exec::sandbox;
use crate::common::cli::{self, Cli};

/// Whether a process whose argv holds `marker` runs in the sandbox.
fn running(api: &crate::common::api::Api, sb: &serde_json::Value, marker: &str) -> bool {
    let ps = api.exec(sb, "ps -o args");
    assert_eq!(ps.exit_code, 0, "{}", ps.stderr);
    ps.stdout.contains(marker)
}

/// Start `sh -c script` in sandbox `x` through the CLI and read its first line of output, so
/// the command is known to run; the rest of its stdout is left to the test.
fn exec_started(
    server: &crate::common::TestServer,
    script: &str,
) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = Cli::new(server)
        .args(&["sandbox", "exec", "x", "--", "sh", "-c", script])
        .spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    (child, stdout, first)
}

#[test]
fn ctrl_c_kills_the_remote_command_and_exits_130() {
    let (server, api, sb) = sandbox("x");
    let marker = "interrupt-marker-5b1f";
    let script = format!("echo ready; sleep 600; : {marker}");
    // `_stdout` stays open: closing it would end the CLI with SIGPIPE instead.
    let (mut child, _stdout, line) = exec_started(&server, &script);
    assert_eq!(line, "ready\n");
    assert!(running(&api, &sb, marker), "the command should be running");

    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let (status, stderr) = cli::finish(&mut child);
    assert_eq!(status.code(), Some(130), "{stderr}");
    // The CLI waits for the sandbox to confirm the kill before it exits.
    assert!(
        !running(&api, &sb, marker),
        "the remote command survived Ctrl-C"
    );
}

#[test]
fn a_server_crash_mid_command_is_survived_with_every_byte_once() {
    let (mut server, api, sb) = sandbox("x");
    assert_eq!(api.exec(&sb, "mkfifo /tmp/gate").exit_code, 0);
    // Part one (2 MB) is produced at once; part two only after the gate opens, which the test
    // does through the restarted server, so the command is certainly mid-way at the crash.
    let script = "seq 1 300000; cat /tmp/gate >/dev/null; seq 300001 600000";
    let (mut child, mut stdout, first) = exec_started(&server, script);
    assert_eq!(first, "1\n");
    // The test stops reading here, so part of the output is still on its way (pipe, client,
    // sockets) when the server dies.
    server.crash_and_restart();
    let api = crate::common::api::Api::new(&server);
    assert_eq!(api.exec(&sb, ": > /tmp/gate").exit_code, 0);

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let (status, stderr) = cli::finish(&mut child);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let got = first + rest.as_str();
    let expected: String = (1..=600_000).map(|i| format!("{i}\n")).collect();
    if got != expected {
        let at = got
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(expected.lines().count()));
        panic!(
            "output differs from line {} on ({} bytes instead of {}); stderr: {stderr}",
            at + 1,
            got.len(),
            expected.len()
        );
    }
}

#[test]
fn a_closed_stdout_kills_the_remote_command_like_sigpipe() {
    let (server, api, sb) = sandbox("x");
    let marker = "pipe-marker-9c2e";
    let script = format!("while :; do echo {marker}; done");
    let (mut child, stdout, line) = exec_started(&server, &script);
    assert_eq!(line.trim(), marker);
    drop(stdout); // as `… | head -1` would
    let (status, stderr) = cli::finish(&mut child);
    assert_eq!(status.code(), Some(141), "{stderr}");
    assert!(
        !running(&api, &sb, marker),
        "the remote command outlived its reader"
    );
}

#[test]
fn output_the_sandbox_no_longer_holds_is_reported_not_silently_skipped() {
    let (mut server, api, sb) = sandbox("x");
    assert_eq!(api.exec(&sb, "mkfifo /tmp/gate /tmp/done").exit_code, 0);
    // After the gate, ~39 MB (more than the agent's replay window of 16 MiB) is produced
    // while no client is attached, then `/tmp/done` tells the test it is all out.
    let script = "echo before; cat /tmp/gate >/dev/null; seq 1 5000000; : > /tmp/done";
    let (mut child, mut stdout, first) = exec_started(&server, script);
    assert_eq!(first, "before\n");
    let pid = child.id() as i32;
    // A stopped CLI cannot re-attach while the output runs past what the sandbox keeps.
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    server.crash_and_restart();
    let api = crate::common::api::Api::new(&server);
    assert_eq!(api.exec(&sb, ": > /tmp/gate; cat /tmp/done").exit_code, 0);
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let (status, stderr) = cli::finish(&mut child);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let produced: usize = "before\n".len()
        + (1..=5_000_000)
            .map(|i| format!("{i}\n").len())
            .sum::<usize>();
    let got = first.len() + rest.len();
    assert!(
        got < produced,
        "nothing was lost: the test did not outrun the replay window"
    );
    assert!(
        rest.ends_with("\n4999999\n5000000\n"),
        "the output must go on to its end"
    );
    assert_eq!(
        stderr.trim_end(),
        format!(
            "langsmith: {} bytes of stdout and 0 of stderr were lost while reconnecting \
             (the sandbox no longer held them)",
            produced - got
        )
    );
}
