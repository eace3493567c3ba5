//! `langsmith sandbox console` in a real terminal (a private tmux server) against the real
//! server and a real sandbox: the remote prompt, typed commands, window resizes seen by
//! `stty size`, and the local terminal's mode (`stty -g`) restored after a normal exit, a
//! failure, SIGTERM and a sandbox deleted underneath. Refusals without a terminal or agent.
//! SSH-agent forwarding is in [`ssh`], Ctrl-C while a console opens in [`opening`].

mod opening;
mod ssh;
pub(crate) mod tmux;

use serde_json::json;

use crate::common::api::Api;
use crate::common::cli::Cli;
use crate::common::{TestServer, image};
use tmux::Tmux;

/// Remote prompt: `\u` makes the shown prompt differ from the typed command line.
const PROMPT_ARGS: [&str; 2] = ["--env", r"PS1=\u@box> "];
const PROMPT: &str = "root@box> ";

/// A server with a ready sandbox `name` built from the tiny image.
fn sandbox(name: &str) -> (TestServer, Api) {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot(&format!("{name}-snap"), image::tiny(), 64 << 20);
    api.ready_sandbox(name, &snapshot, json!({}));
    (server, api)
}

/// A terminal whose shell has a UTF-8 locale and `extra` in its environment.
fn start_tmux(extra: &[(&str, &str)]) -> Tmux {
    let mut env = vec![("LANG", "C.UTF-8")];
    env.extend_from_slice(extra);
    Tmux::start(100, 30, &env)
}

/// `langsmith sandbox console ARGS` against `server`.
fn console(server: &TestServer, args: &[&str]) -> Cli {
    Cli::new(server).args(&["sandbox", "console"]).args(args)
}

/// Types a line that records the terminal mode, runs `console`, records the mode again and
/// prints `<tag>-exit=<status>`.
fn run_console(tmux: &Tmux, tag: &str, console: Cli) {
    let d = tmux.dir().display();
    let console = console.shell_line();
    tmux.type_line(&format!(
        "stty -g > {d}/{tag}.before; {console}; rc=$?; \
         stty -g > {d}/{tag}.after; stty -a > {d}/{tag}.after-a; echo {tag}-exit=$rc"
    ));
}

/// The terminal mode after the console equals the mode before, and is a cooked, echoing one.
fn assert_terminal_restored(tmux: &Tmux, tag: &str) {
    let read = |suffix: &str| std::fs::read_to_string(tmux.dir().join(format!("{tag}.{suffix}")));
    let (before, after) = (read("before").unwrap(), read("after").unwrap());
    assert_eq!(before, after, "{tag}: stty -g differs after the console");
    let modes = read("after-a").unwrap();
    let flags: Vec<&str> = modes.split([' ', ';', '\n']).collect();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(
            flags.contains(&flag),
            "{tag}: {flag} is off after the console:\n{modes}"
        );
    }
}

#[test]
fn a_console_runs_commands_follows_resizes_and_restores_the_terminal() {
    let (server, _api) = sandbox("console-main");
    let tmux = start_tmux(&[]);
    let main = console(&server, &["console-main"]).args(&PROMPT_ARGS);
    run_console(&tmux, "main", main);
    tmux.wait_for_count(PROMPT, 1);

    tmux.type_line("echo marker-$((6*7)) ünïcødé");
    tmux.wait_for("the command's output", |s| s.contains("marker-42 ünïcødé"));
    // The terminal's type and the locale travel with the console.
    tmux.type_line(r#"echo "lang=$LANG term=$TERM""#);
    let forwarded = "lang=C.UTF-8 term=";
    tmux.wait_for("the forwarded environment", |s| {
        s.lines()
            .any(|l| l.starts_with(forwarded) && l.trim_end().len() > forwarded.len())
    });

    let (cols, rows) = tmux.pane_size();
    tmux.type_line("stty size");
    tmux.wait_for("the initial size", |s| {
        s.contains(&format!("{rows} {cols}"))
    });
    let (cols, rows) = tmux.resize(120, 40);
    assert_eq!((cols, rows), (120, 40), "tmux applied the new size");
    tmux.type_line("stty size");
    tmux.wait_for("the new size", |s| s.contains(&format!("{rows} {cols}")));

    tmux.type_line("exit");
    assert_eq!(tmux.wait_for_number("main-exit="), 0, "{}", tmux.screen());
    assert_terminal_restored(&tmux, "main");
}

#[test]
fn the_terminal_is_restored_after_a_failure_sigterm_or_a_deleted_sandbox() {
    let (server, api) = sandbox("console-fail");
    let tmux = start_tmux(&[]);

    let missing_shell = console(&server, &["console-fail", "--shell", "/nonexistent"]);
    run_console(&tmux, "shell", missing_shell);
    assert_eq!(tmux.wait_for_number("shell-exit="), 1);
    let screen = tmux.screen();
    assert!(
        screen.contains(r#"{"error": "server error: shell /nonexistent does not exist"#),
        "{screen}"
    );
    assert_terminal_restored(&tmux, "shell");

    let term = console(&server, &["console-fail"]).args(&PROMPT_ARGS);
    run_console(&tmux, "term", term);
    tmux.wait_for_count(PROMPT, 1);
    let cli = tmux.foreground_child();
    // SAFETY: plain kill(2) of the CLI process this test started in its pane.
    assert_eq!(unsafe { libc::kill(cli, libc::SIGTERM) }, 0);
    assert_eq!(tmux.wait_for_number("term-exit="), 0, "{}", tmux.screen());
    assert_terminal_restored(&tmux, "term");

    let deleted = console(&server, &["console-fail"]).args(&PROMPT_ARGS);
    run_console(&tmux, "deleted", deleted);
    tmux.wait_for_count(PROMPT, 2);
    api.delete_sandbox("console-fail");
    assert_eq!(tmux.wait_for_number("deleted-exit="), 1);
    let screen = tmux.screen();
    let reported = screen
        .lines()
        .any(|l| l.starts_with(r#"{"error": "websocket closed before the shell exited"#));
    assert!(
        reported,
        "the failure is reported on its own line: {screen}"
    );
    assert_terminal_restored(&tmux, "deleted");
}

#[test]
fn a_console_is_refused_without_a_terminal_or_an_agent() {
    let (server, _api) = sandbox("console-refused");
    let out = Cli::new(&server)
        .args(&["sandbox", "console", "console-refused"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            r#"{"error": "stdin is not a terminal; console needs an interactive terminal"#
        ),
        "{}",
        out.stderr
    );

    let no_agent = console(&server, &["console-refused", "--forward-ssh-agent"])
        .env("LANG", "C.UTF-8")
        .env_remove("SSH_AUTH_SOCK")
        .run();
    assert_eq!(no_agent.code, 1);
    assert_eq!(
        no_agent.stderr,
        "{\"error\": \"--forward-ssh-agent requires SSH_AUTH_SOCK to be set (is ssh-agent running?)\"}\n"
    );

    let missing = Cli::new(&server)
        .args(&["sandbox", "console", "no-such-box"])
        .run();
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("getting sandbox: HTTP 404"),
        "{}",
        missing.stderr
    );
    let arity = Cli::new(&server).args(&["sandbox", "console"]).run();
    assert_eq!(
        arity.stderr,
        "{\"error\": \"accepts 1 arg(s), received 0\"}\n"
    );
}

#[test]
fn a_console_opened_from_the_repl_hands_the_terminal_back() {
    let (server, _api) = sandbox("console-repl");
    let tmux = start_tmux(&[]);
    let repl = Cli::new(&server).args(&["shell"]).shell_line();
    tmux.type_line(&format!("{repl}; echo repl-exit=$?"));
    tmux.wait_for("the REPL's prompt", |s| s.contains("langsmith> "));
    tmux.type_line(r#"console("console-repl", #{env: ["PS1=\\u@box> "]})"#);
    tmux.wait_for_count(PROMPT, 1);
    tmux.type_line("exit");
    tmux.wait_for_count("langsmith> ", 2);
    // The REPL reads the keyboard again: nothing left over from the console swallows keys.
    tmux.type_line("6 * 7 + 1000");
    tmux.wait_for("the REPL's answer", |s| {
        s.lines().any(|l| l.trim() == "1042")
    });
    // The console's signal handlers are gone: SIGTERM ends the REPL as before.
    let repl = tmux.foreground_child();
    // SAFETY: plain kill(2) of the REPL this test started in its pane.
    assert_eq!(unsafe { libc::kill(repl, libc::SIGTERM) }, 0);
    assert_eq!(
        tmux.wait_for_number("repl-exit="),
        128 + libc::SIGTERM as i64
    );
}
