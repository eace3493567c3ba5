//! `langsmith sandbox exec` in a real terminal (a private tmux server, the console tests'
//! helper): `-t` lends the command the terminal like `ssh -t` (keystrokes, window size, exit
//! code, the terminal's mode restored), and a script's `forward_stdin` refuses a terminal.

use std::time::Duration;

use super::exec::sandbox;
use crate::common::api::{Api, Exec};
use crate::common::cli::Cli;
use crate::common::process::wait_for;
use crate::console::tmux::Tmux;

/// Remote prompt: `\u` makes the shown prompt differ from the typed command line.
const PROMPT_ARGS: [&str; 2] = ["--env", r"PS1=\u@box> "];
const PROMPT: &str = "root@box> ";

/// Types a line that records the terminal mode, runs `cli`, records the mode again and
/// prints `<tag>-exit=<status>`.
fn run_cli(tmux: &Tmux, tag: &str, cli: Cli) {
    let d = tmux.dir().display();
    let cli = cli.shell_line();
    tmux.type_line(&format!(
        "stty -g > {d}/{tag}.before; {cli}; rc=$?; stty -g > {d}/{tag}.after; \
         echo {tag}-exit=$rc"
    ));
}

fn assert_terminal_restored(tmux: &Tmux, tag: &str) {
    let read = |suffix: &str| std::fs::read_to_string(tmux.dir().join(format!("{tag}.{suffix}")));
    let (before, after) = (read("before").unwrap(), read("after").unwrap());
    assert_eq!(before, after, "{tag}: stty -g differs after exec");
}

#[test]
fn exec_t_on_a_terminal_is_interactive_and_exits_with_the_remote_code() {
    let (server, _api, _sb) = sandbox("box");
    let tmux = Tmux::start(100, 30, &[]);
    let shell = Cli::new(&server)
        .args(&["sandbox", "exec", "-t", "box"])
        .args(&PROMPT_ARGS)
        .args(&["--", "bash", "--norc", "--noprofile"]);
    run_cli(&tmux, "shell", shell);
    tmux.wait_for_count(PROMPT, 1);
    tmux.type_line("echo hi; exit 3");
    assert_eq!(tmux.wait_for_number("shell-exit="), 3, "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        screen.lines().any(|l| l.trim_end() == "hi"),
        "the typed command ran remotely: {screen}"
    );
    assert_terminal_restored(&tmux, "shell");
}

#[test]
fn forward_stdin_refuses_a_terminal() {
    let (server, _api, _sb) = sandbox("box");
    let tmux = Tmux::start(100, 30, &[]);
    let script = tmux.dir().join("forward.rhai");
    std::fs::write(
        &script,
        r#"sandbox_resolve("box").exec("cat", #{forward_stdin: true, stream: true})"#,
    )
    .unwrap();
    run_cli(
        &tmux,
        "forward",
        Cli::new(&server).args(&["run"]).arg(&script),
    );
    assert_eq!(
        tmux.wait_for_number("forward-exit="),
        1,
        "{}",
        tmux.screen()
    );
    let screen = tmux.screen();
    assert!(
        screen.contains("copies piped input, but stdin is a terminal"),
        "{screen}"
    );
    assert_terminal_restored(&tmux, "forward");
}

/// `rows cols` of the PTY `tty` as seen inside the sandbox.
fn size_of(api: &Api, sb: &serde_json::Value, tty: &str) -> String {
    let Exec { stdout, .. } = api.exec(sb, &format!("stty -F {tty} size"));
    stdout.trim().to_string()
}

#[test]
fn the_remote_pty_follows_the_local_window_size() {
    let (server, api, sb) = sandbox("x");
    let tmux = Tmux::start(120, 40, &[]);
    let (cols, rows) = tmux.pane_size();
    let sized = Cli::new(&server).args(&[
        "sandbox",
        "exec",
        "-t",
        "x",
        "--",
        "sh",
        "-c",
        "tty > /tmp/which; exec sleep 600",
    ]);
    run_cli(&tmux, "size", sized);
    let tty = wait_for("the command's tty", Duration::from_secs(30), || {
        let which = api.exec(&sb, "cat /tmp/which 2>/dev/null");
        which
            .stdout
            .starts_with("/dev/pts/")
            .then(|| which.stdout.trim().to_string())
    });
    // The size is sent right after the command started, so it may land a moment later.
    wait_for("the initial window size", Duration::from_secs(30), || {
        (size_of(&api, &sb, &tty) == format!("{rows} {cols}")).then_some(())
    });
    let (cols, rows) = tmux.resize(100, 30);
    wait_for("the resized window size", Duration::from_secs(30), || {
        (size_of(&api, &sb, &tty) == format!("{rows} {cols}")).then_some(())
    });
    // SIGTERM ends it cleanly: the remote command is killed, the terminal restored.
    // SAFETY: plain kill(2) of the CLI process this test started in its pane.
    assert_eq!(
        unsafe { libc::kill(tmux.foreground_child(), libc::SIGTERM) },
        0
    );
    assert_eq!(tmux.wait_for_number("size-exit="), 137, "{}", tmux.screen());
    assert_terminal_restored(&tmux, "size");
}
