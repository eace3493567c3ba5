//! The scripting layer end to end: example scripts and the REPL against the real server.

use crate::common::api::Api;
use crate::common::cli::{BIN, Cli, CliOutput};
use crate::common::{TestServer, image};

#[test]
fn the_hello_example_runs_a_command_and_cleans_up() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("script-tiny", image::tiny(), 64 << 20);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/examples/hello.rhai");
    let out = Cli::new(&server)
        .args(&["run", example, &snapshot, "hello-box"])
        .run();
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
    let out = Cli::new(&server).args(&["shell"]).stdin(input).run();
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

/// Write `source` to a temporary `.rhai` file and `langsmith run` it with `args`.
fn run_source(server: &TestServer, source: &str, args: &[&str]) -> CliOutput {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.rhai");
    std::fs::write(&file, source).unwrap();
    let mut argv = vec!["run", file.to_str().unwrap()];
    argv.extend_from_slice(args);
    Cli::new(server).args(&argv).run()
}

#[test]
fn commands_stream_to_callbacks_take_input_and_can_be_killed() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("api-tiny", image::tiny(), 64 << 20);
    let source = r#"
        let sb = sandbox_create(#{ name: "api-box", snapshot_id: args.argv[0], wait_for_ready: true });
        let r = #{};
        // Synchronous exec with options.
        r.plain = sb.exec("echo $GREETING from $(pwd); echo oops >&2; exit 4",
                         #{ env: #{ GREETING: "hi" }, cwd: "/tmp" });
        // A callback per chunk, in order, with its kind.
        let chunks = [];
        let streamed = sb.exec("echo one; echo two >&2; echo three", |kind, data| chunks.push(`${kind}:${data}`));
        r.chunks = chunks;
        r.streamed_exit = streamed.exit_code;
        // The same on a background command, which a callback stops by returning false.
        let seen = [];
        let endless = sb.command("while true; do echo tick; sleep 0.1; done");
        r.each_exit = endless.each(|kind, data| { seen.push(data); seen.len() < 3 }).exit_code;
        r.each_seen_at_least = seen.len() >= 3;
        // A callback that throws ends the call with its error and kills the command.
        try {
            sb.exec("while true; do echo thrower-77; sleep 0.1; done", |kind, data| throw "enough");
        } catch (e) { r.thrown = e; }
        r.thrower_gone = false;
        for attempt in 0..300 {
            if !sb.exec("ps -o args").stdout.contains("thrower-77") { r.thrower_gone = true; break; }
            sleep(0.1);
        }
        // stdin: send, then close; the command sees both lines and EOF.
        let cat = sb.command("cat; echo end", #{ stdin: true });
        cat.send("line 1\n");
        cat.send("line 2\n");
        cat.close_stdin();
        r.cat = cat.wait();
        // kill: SIGKILL, reported as 128 + 9.
        let sleeper = sb.command("sleep 600");
        sleeper.kill();
        r.killed = sleeper.wait().exit_code;
        // Files, both ways, text and bytes.
        sb.write("/root/a/b.txt", "text\n");
        r.text = sb.read("/root/a/b.txt");
        sb.write("/root/bin.dat", blob(3, 0xff));
        r.bytes = sb.read_bytes("/root/bin.dat").len();
        // Catchable errors carry status, type and message.
        try { sandbox("no-such-box") } catch (e) { r.error = #{ status: e.status, type: e.type, message: e.message }; }
        try { sb.read("/no/such/file") } catch (e) { r.file_error = e.status; }
        // Lifecycle: stop and start keep the files.
        sb.stop();
        sb.start();
        sb.wait();
        r.after_restart = sb.exec("cat /root/a/b.txt").stdout;
        sb.delete();
        r
    "#;
    let out = run_source(&server, source, &[&snapshot]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["plain"]["stdout"], "hi from /tmp\n", "{r}");
    assert_eq!(r["plain"]["stderr"], "oops\n");
    assert_eq!(r["plain"]["exit_code"], 4);
    let chunks: Vec<String> = r["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let stdout: String = chunks
        .iter()
        .filter_map(|c| c.strip_prefix("stdout:"))
        .collect();
    let stderr: String = chunks
        .iter()
        .filter_map(|c| c.strip_prefix("stderr:"))
        .collect();
    assert_eq!(
        (stdout.as_str(), stderr.as_str()),
        ("one\nthree\n", "two\n")
    );
    assert_eq!(r["streamed_exit"], 0);
    assert_eq!(r["each_exit"], 137, "returning false kills: {r}");
    assert_eq!(r["each_seen_at_least"], true);
    assert_eq!(r["thrown"], "enough");
    assert_eq!(
        r["thrower_gone"], true,
        "the command outlived its callback's error"
    );
    assert_eq!(r["cat"]["stdout"], "line 1\nline 2\nend\n");
    assert_eq!(r["killed"], 137);
    assert_eq!(r["text"], "text\n");
    assert_eq!(r["bytes"], 3);
    assert_eq!(r["error"]["status"], 404, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(r["error"]["type"].as_str().is_some());
    assert_eq!(r["file_error"], 404, "{r}");
    assert_eq!(r["after_restart"], "text\n");
    let gone = api.call("GET", "/api/v2/sandboxes/boxes/api-box", None);
    assert_eq!(gone.status, 404);
}

/// `langsmith ARGS…` with its config directory at `config` (no server needed).
fn run_with_config(config: &std::path::Path, args: &[&str]) -> CliOutput {
    Cli::bare()
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env_remove("LANGSMITH_SCRIPTS_DIR")
        .run()
}

#[test]
fn a_user_script_in_the_config_folder_becomes_a_sandbox_subcommand() {
    let config = tempfile::tempdir().unwrap();
    let scripts = config.path().join("langsmith/scripts/sandbox");
    std::fs::create_dir_all(scripts.join("snapshot")).unwrap();
    std::fs::write(
        scripts.join("hello.rhai"),
        "// Greet whoever is named.\n#{ greeting: `hello ${args.argv[0]}`, rest: args.argv }\n",
    )
    .unwrap();
    std::fs::write(
        scripts.join("snapshot/tidy.rhai"),
        "// Tidy up snapshots.\n\"tidy\"\n",
    )
    .unwrap();
    // An override of a built-in: `sandbox list` now runs the user's script.
    std::fs::write(scripts.join("list.rhai"), "[\"overridden\"]\n").unwrap();

    let out = run_with_config(config.path(), &["sandbox", "hello", "world", "--loud"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["greeting"], "hello world");
    assert_eq!(r["rest"], serde_json::json!(["world", "--loud"]));

    let help = run_with_config(config.path(), &["sandbox", "--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("hello") && l.contains("Greet whoever is named.")),
        "{}",
        help.stdout
    );
    let help = run_with_config(config.path(), &["sandbox", "snapshot", "--help"]);
    assert!(
        help.stdout.contains("Tidy up snapshots."),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains("hello"), "{}", help.stdout);

    let out = run_with_config(config.path(), &["sandbox", "list"]);
    assert_eq!(
        out.json(),
        serde_json::json!(["overridden"]),
        "{}",
        out.stderr
    );

    // Without the folder the subcommand is unknown again (help, as in the LangSmith CLI).
    let empty = tempfile::tempdir().unwrap();
    let help = run_with_config(empty.path(), &["sandbox", "--help"]);
    assert!(!help.stdout.contains("hello"), "{}", help.stdout);
}

/// A config folder whose user scripts folder holds `sandbox/<name>.rhai` for each pair.
fn config_with_sandbox_scripts(scripts: &[(&str, &str)]) -> tempfile::TempDir {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("langsmith/scripts/sandbox");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, source) in scripts {
        std::fs::write(dir.join(format!("{name}.rhai")), source).unwrap();
    }
    config
}

/// `langsmith ARGS…` prints help (exit 0) containing every line of `lines`.
fn assert_help_says(config: &std::path::Path, args: &[&str], lines: &[&str]) {
    let help = run_with_config(config, args);
    assert_eq!(help.code, 0, "{}", help.stderr);
    for line in lines {
        assert!(help.stdout.contains(line), "{line:?} in {}", help.stdout);
    }
}

#[test]
fn a_user_script_with_a_header_gets_real_flags_and_help() {
    let config = config_with_sandbox_scripts(&[
        (
            "greet",
            "//! @about Greet someone\n\
             //! @arg name: Who to greet\n\
             //! @flag --times: int = 1  How often\n\
             //! @flag --loud: bool  Shout\n\
             //! @flag --tag <TAG>: list  A tag (repeatable)\n\
             #{ name: args.name, times: args.times, loud: args.loud, tags: args.tag }\n",
        ),
        ("broken", "//! @about Broken\n//! @flag --n: number\n42\n"),
    ]);

    let out = run_with_config(
        config.path(),
        &[
            "sandbox", "greet", "bob", "--times", "0x2", "--loud", "--tag", "a", "--tag", "b",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.json(),
        serde_json::json!({"name": "bob", "times": 2, "loud": true, "tags": ["a", "b"]})
    );

    assert_help_says(
        config.path(),
        &["sandbox", "greet", "--help"],
        &[
            "Greet someone",
            "Usage: langsmith sandbox greet [OPTIONS] [NAME]...",
            "[NAME]...  Who to greet",
            "--times <TIMES>",
            "How often [default: 1]",
            "--tag <TAG>",
        ],
    );
    let listing = run_with_config(config.path(), &["sandbox", "--help"]);
    assert!(
        listing
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("greet") && l.contains("Greet someone")),
        "{}",
        listing.stdout
    );

    let error = |args: &[&str]| {
        let out = run_with_config(config.path(), args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stdout);
        let line: serde_json::Value = serde_json::from_str(&out.stderr).unwrap();
        line["error"].as_str().unwrap().to_string()
    };
    assert_eq!(error(&["sandbox", "greet"]), "accepts 1 arg(s), received 0");
    assert_eq!(
        error(&["sandbox", "greet", "bob", "--times", "x"]),
        r#"invalid argument "x" for "--times" flag: strconv.ParseInt: parsing "x": invalid syntax"#
    );
    assert_eq!(
        error(&["sandbox", "greet", "bob", "--shout"]),
        "unknown flag: --shout"
    );
    let broken = error(&["sandbox", "broken"]);
    assert!(
        broken.ends_with(
            "broken.rhai line 2: unknown type \"number\" (expected int, string, \
             bool or list; help text follows two spaces)"
        ),
        "{broken}"
    );
}

/// A directory of the user scripts folder is a group: one file adds `sandbox greet hello`.
#[test]
fn a_user_script_in_a_new_group_directory_is_a_subcommand() {
    let config = config_with_sandbox_scripts(&[]);
    let group = config.path().join("langsmith/scripts/sandbox/greet");
    std::fs::create_dir_all(&group).unwrap();
    std::fs::write(
        group.join("hello.rhai"),
        "//! @about Say hello\n//! @arg name: Who\n//! @flag --times: int = 1  How often\n\
         #{ hello: args.name, times: args.times }\n",
    )
    .unwrap();

    let out = run_with_config(
        config.path(),
        &["sandbox", "greet", "hello", "bob", "--times", "3"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json(), serde_json::json!({"hello": "bob", "times": 3}));
    assert_help_says(
        config.path(),
        &["sandbox", "--help"],
        &["greet", "greet commands", "Manage snapshots"],
    );
    assert_help_says(
        config.path(),
        &["sandbox", "greet"],
        &["Usage: langsmith sandbox greet", "Say hello"],
    );
}

/// A FIFO where a script would be is not opened for reading (that would wait for a writer
/// forever): help lists it, running it says it is no regular file.
#[test]
fn a_fifo_in_the_user_scripts_folder_does_not_block() {
    let config = config_with_sandbox_scripts(&[]);
    let fifo = config.path().join("langsmith/scripts/sandbox/x.rhai");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let run = |args: &[&str]| {
        let child = Cli::bare()
            .args(args)
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("LANGSMITH_SCRIPTS_DIR")
            .spawn();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(child.wait_with_output().unwrap()));
        // A hang guard only: a blocked reader is released by a writer that opens and closes.
        match finished.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(out) => CliOutput::from(out),
            Err(_) => {
                drop(std::fs::OpenOptions::new().write(true).open(&fifo));
                panic!("langsmith {args:?} blocked on the FIFO");
            }
        }
    };
    let help = run(&["sandbox", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("create"), "{}", help.stdout);
    let out = run(&["sandbox", "x"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);

    // Nor is a script read past 1 MiB.
    let big = fifo.with_file_name("big.rhai");
    std::fs::write(&big, format!("//{}\n", " ".repeat(1 << 20))).unwrap();
    let out = run(&["sandbox", "big"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("larger than 1 MiB"), "{}", out.stderr);
}

/// The first ```` ```rhai ```` block of the README that starts with `opening`.
fn readme_rhai_block(opening: &str) -> &'static str {
    let readme = include_str!("../README.md");
    let start = readme
        .find(&format!("```rhai\n{opening}"))
        .unwrap_or_else(|| panic!("a rhai example starting {opening:?} in the README"))
        + 8;
    &readme[start..start + readme[start..].find("```").unwrap()]
}

/// The README's "Adding a subcommand" example, dropped into the user scripts folder, is a
/// subcommand with its flags in help.
#[test]
fn the_readme_subcommand_example_is_a_subcommand() {
    let source = readme_rhai_block("//! @about");
    let config = config_with_sandbox_scripts(&[("hello", source)]);
    assert_help_says(
        config.path(),
        &["sandbox", "hello", "--help"],
        &[
            "Say hello from inside a sandbox",
            "--times <TIMES>",
            "--loud [<LOUD>]",
        ],
    );
    let missing = run_with_config(config.path(), &["sandbox", "hello"]);
    assert_eq!(
        (missing.code, missing.stderr.as_str()),
        (1, "{\"error\": \"accepts 1 arg(s), received 0\"}\n")
    );
}

#[test]
fn a_subcommand_name_that_is_not_plain_never_reaches_a_script_outside_the_folder() {
    let config = tempfile::tempdir().unwrap();
    let scripts = config.path().join("langsmith/scripts");
    std::fs::create_dir_all(scripts.join("sandbox/snapshot")).unwrap();
    // Scripts a path could reach from `scripts/sandbox/` if names were joined as given.
    std::fs::write(scripts.join("escaped.rhai"), "\"escaped\"\n").unwrap();
    std::fs::write(scripts.join("sandbox/dotted.name.rhai"), "\"dotted\"\n").unwrap();
    let outside = config.path().join("outside.rhai");
    std::fs::write(&outside, "\"outside\"\n").unwrap();

    let absolute = outside.with_extension("").display().to_string();
    let cases: [&[&str]; 5] = [
        &["sandbox", "../escaped"],
        &["sandbox", "../../../outside"],
        &["sandbox", "snapshot", "../../escaped"],
        &["sandbox", "dotted.name"],
        &["sandbox", absolute.as_str()],
    ];
    for args in cases {
        let out = run_with_config(config.path(), args);
        assert_eq!(
            out.code, 0,
            "{args:?} is unknown, as in the LangSmith CLI: {}",
            out.stderr
        );
        assert!(
            !out.stdout.contains('"'),
            "{args:?} ran a script: {}",
            out.stdout
        );
        assert!(out.stdout.contains("Usage:"), "{args:?}: {}", out.stdout);
        assert!(
            out.stderr.starts_with("unknown command ")
                && out
                    .stderr
                    .contains("command names are letters, digits, '-' and '_'"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Files with such names are not listed as subcommands either.
    let help = run_with_config(config.path(), &["sandbox", "--help"]);
    assert!(!help.stdout.contains("dotted"), "{}", help.stdout);
}

#[test]
fn scripts_run_by_file_and_by_shebang_receive_their_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("args.rhai");
    std::fs::write(
        &script,
        "#!/usr/bin/env langsmith\n// Echo the arguments.\n#{ argv: args.argv, n: args.argv.len() }\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let expected = serde_json::json!({"argv": ["a", "b c", "--flag"], "n": 3});

    let by_run = run_with_config(
        dir.path(),
        &["run", script.to_str().unwrap(), "a", "b c", "--flag"],
    );
    assert_eq!(by_run.code, 0, "{}", by_run.stderr);
    assert_eq!(by_run.json(), expected);

    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(&script)
        .args(["a", "b c", "--flag"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value, expected);
}

#[test]
fn the_readme_scripting_example_runs() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("readme-tiny", image::tiny(), 64 << 20);
    let source = readme_rhai_block("");
    let out = run_source(&server, source, &[&snapshot]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("typed\n"), "{}", out.stdout);
    assert!(out.stdout.contains("stdout: 1\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("failed:"), "{}", out.stdout);
    let gone = api.call("GET", "/api/v2/sandboxes/boxes/demo", None);
    assert_eq!(gone.status, 404);
}

/// Ctrl-C is not a script error: a `try`/`catch` around the running call cannot swallow it,
/// the remote command is killed and `langsmith run` exits 130.
#[test]
fn ctrl_c_stops_a_script_even_inside_try() {
    use std::io::{BufRead, BufReader};
    let server = TestServer::start();
    let api = Api::new(&server);
    let snapshot = api.ready_snapshot("ctrl-c-tiny", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("ctrl-c-box", &snapshot, serde_json::json!({}));
    let marker = "ctrl-c-marker-91d2";
    let source = format!(
        r#"
        let sb = sandbox("ctrl-c-box");
        try {{
            sb.exec("echo ready; sleep 600; : {marker}", |kind, data| {{ if data.contains("ready") {{ print("ready"); }} }});
        }} catch (e) {{
            print("caught");
        }}
        print("carried on");
    "#
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.rhai");
    std::fs::write(&file, source).unwrap();
    let mut child = Cli::new(&server)
        .args(&["run", file.to_str().unwrap()])
        .spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");

    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "stdout after the interrupt: {rest}"
    );
    assert_eq!(rest, "", "the script went on after Ctrl-C");
    let ps = api.exec(&sb, "ps -o args");
    assert!(
        !ps.stdout.contains(marker),
        "the remote command survived: {}",
        ps.stdout
    );
    api.delete_sandbox("ctrl-c-box");
}

/// Every example in the script reference (`langsmith help-script`) runs.
#[test]
fn the_reference_examples_run() {
    let server = TestServer::start();
    let reference = include_str!("../src/script/reference.md");
    let blocks: Vec<&str> = reference
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|block| block.strip_prefix("rhai").unwrap_or(block))
        .collect();
    assert!(!blocks.is_empty(), "the reference has no examples");
    for block in blocks {
        let out = run_source(&server, block, &[]);
        assert_eq!(out.code, 0, "{block}\n{}", out.stderr);
        if block.contains("sandbox(\"nope\")") {
            assert!(out.stdout.starts_with("404 "), "{block}\n{}", out.stdout);
        }
    }
}
