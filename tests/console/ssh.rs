//! `console --forward-ssh-agent`: a real `ssh-agent` with a generated key on the host, and
//! inside the sandbox the real `ssh-add` (copied in with its shared libraries and run through
//! their loader, since the tiny image has no libc) lists that key through the forwarded socket.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{
    PROMPT, PROMPT_ARGS, assert_terminal_restored, console, run_console, sandbox, start_tmux,
};
use crate::common::api::Api;
use crate::common::local_agent::LocalAgent;
use crate::common::process::run_ok;
use crate::common::server::API_KEY;

/// `(name in the sandbox, host path)` of `ssh-add`'s shared libraries and loader (`ldd`).
fn ssh_add_libraries() -> (Vec<(String, PathBuf)>, String) {
    let ldd = run_ok(Command::new("ldd").arg("/usr/bin/ssh-add"));
    let mut libraries = Vec::new();
    let mut loader = None;
    for line in ldd.lines().map(str::trim) {
        let (name, path) = match line.split_once(" => ") {
            Some((name, rest)) => (name, rest.split(" (").next().unwrap_or(rest)),
            None if line.starts_with('/') => {
                let path = line.split(" (").next().unwrap_or(line);
                let name = Path::new(path).file_name().unwrap().to_str().unwrap();
                loader = Some(name.to_string());
                (name, path)
            }
            None => continue, // linux-vdso
        };
        libraries.push((name.to_string(), PathBuf::from(path)));
    }
    (libraries, loader.expect("ldd names the dynamic loader"))
}

fn upload(api: &Api, dataplane: &str, path: &str, data: Vec<u8>) {
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(data).file_name("f"),
    );
    let resp = api
        .raw()
        .post(format!("{dataplane}/upload"))
        .query(&[("path", path)])
        .header("X-Api-Key", API_KEY)
        .multipart(form)
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "upload {path}: {}",
        resp.status()
    );
}

/// Copies `ssh-add` and its libraries to `/opt/ssh`; returns the command line running it.
fn install_ssh_add(api: &Api, sandbox: &Value) -> String {
    let dataplane = sandbox["dataplane_url"].as_str().unwrap();
    let (libraries, loader) = ssh_add_libraries();
    for (name, host_path) in libraries {
        upload(
            api,
            dataplane,
            &format!("/opt/ssh/{name}"),
            std::fs::read(host_path).unwrap(),
        );
    }
    let binary = std::fs::read("/usr/bin/ssh-add").unwrap();
    upload(api, dataplane, "/opt/ssh/ssh-add", binary);
    let chmod = api.exec(sandbox, &format!("chmod 755 /opt/ssh/{loader}"));
    assert_eq!(chmod.exit_code, 0, "{}", chmod.stderr);
    format!("/opt/ssh/{loader} --library-path /opt/ssh /opt/ssh/ssh-add -L")
}

#[test]
fn the_local_agent_answers_inside_the_console() {
    let local = LocalAgent::start();
    let (server, api) = sandbox("console-agent");
    let info = api.call("GET", "/api/v2/sandboxes/boxes/console-agent", None);
    let ssh_add = install_ssh_add(&api, &info.body);
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
