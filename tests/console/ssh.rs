//! `console --forward-ssh-agent`: a real `ssh-agent` with a generated key on the host, and
//! inside the sandbox the real `ssh-add` (copied in with its shared libraries and run through
//! their loader, since the tiny image has no libc) lists that key through the forwarded socket.

use super::{
    PROMPT, PROMPT_ARGS, assert_terminal_restored, console, run_console, sandbox, start_tmux,
};
use crate::common::host_tool;
use crate::common::local_agent::LocalAgent;

#[test]
fn the_local_agent_answers_inside_the_console() {
    let local = LocalAgent::start();
    let (server, api) = sandbox("console-agent");
    let info = api.call("GET", "/api/v2/sandboxes/boxes/console-agent", None);
    let ssh_add = format!(
        "{} -L",
        host_tool::install(&api, &info.body, "/usr/bin/ssh-add", "/opt/ssh")
    );
    let socket = local.socket.to_string_lossy().into_owned();
    let tmux = start_tmux(&[("SSH_AUTH_SOCK", &socket)]);

    let forwarding = console(&server, &["console-agent", "--forward-ssh-agent"]).args(&PROMPT_ARGS);
    run_console(&tmux, "agent", forwarding);
    tmux.wait_for_count(PROMPT, 1);
    tmux.type_line(&format!("{ssh_add}; echo listed-$?"));
    assert_eq!(tmux.wait_for_number("listed-"), 0, "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        screen.contains(&local.public_key),
        "the sandbox sees the local key {}:\n{screen}",
        local.public_key
    );

    tmux.type_line("exit");
    assert_eq!(tmux.wait_for_number("agent-exit="), 0, "{}", tmux.screen());
    assert_terminal_restored(&tmux, "agent");
}
