//! `langsmith secrets list|set|delete` against the real server: the value comes from stdin
//! or a prompt without echo (never from the command line), and never comes back out.

use serde_json::json;

use crate::common::TestServer;
use crate::common::cli::Cli;
use crate::console::tmux::Tmux;

const VALUE: &str = "tok-9f83b1c2-local";

#[test]
fn secrets_are_set_from_stdin_listed_by_key_and_deleted() {
    let server = TestServer::start();
    let secrets = |args: &[&str]| Cli::new(&server).arg("secrets").args(args);

    let set = secrets(&["set", "MY_TOKEN", "--value-stdin"])
        .stdin(format!("{VALUE}\n"))
        .run();
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(set.stdout, "Secret MY_TOKEN set.\n");

    let list = secrets(&["list"]).run();
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.json(), json!([{"key": "MY_TOKEN"}]));
    let table = secrets(&["list", "--hosts", "--format", "pretty"]).run();
    assert!(table.stdout.starts_with("Secrets\n"), "{}", table.stdout);
    assert!(table.stdout.contains("MY_TOKEN"), "{}", table.stdout);
    for out in [&list, &table] {
        assert!(
            !out.stdout.contains(VALUE),
            "the value came back: {}",
            out.stdout
        );
    }

    // No value on the command line, and none without stdin or a terminal.
    let on_argv = secrets(&["set", "OTHER", VALUE]).run();
    assert_ne!(on_argv.code, 0);
    assert!(
        on_argv.stderr.contains("accepts 1 arg(s)"),
        "{}",
        on_argv.stderr
    );
    let no_value = secrets(&["set", "OTHER"]).run();
    assert_eq!(no_value.code, 1, "{}", no_value.stdout);
    assert!(
        no_value.stderr.contains("--value-stdin"),
        "{}",
        no_value.stderr
    );
    let bad_key = secrets(&["set", "1BAD", "--value-stdin"]).stdin("x").run();
    assert_eq!(bad_key.code, 1);
    assert!(bad_key.stderr.contains("422"), "{}", bad_key.stderr);
    assert!(
        bad_key.stderr.contains("invalid secret key"),
        "{}",
        bad_key.stderr
    );

    let help = Cli::new(&server).args(&["secrets", "--help"]).run();
    for command in ["list", "set", "delete"] {
        assert!(help.stdout.contains(command), "{}", help.stdout);
    }

    let deleted = secrets(&["delete", "MY_TOKEN"]).run();
    assert_eq!(
        deleted.stdout, "Secret MY_TOKEN deleted.\n",
        "{}",
        deleted.stderr
    );
    assert_eq!(secrets(&["list"]).run().json(), json!([]));
}

#[test]
fn on_a_terminal_the_value_is_asked_for_without_echo() {
    let server = TestServer::start();
    let tmux = Tmux::start(100, 20, &[]);
    let cli = Cli::new(&server)
        .args(&["secrets", "set", "TYPED_TOKEN"])
        .shell_line();
    tmux.type_line(&format!("{cli}; echo set-exit=$?"));
    tmux.wait_for("the prompt", |screen| {
        screen.contains("Value for TYPED_TOKEN: ")
    });
    tmux.type_line(VALUE);
    assert_eq!(tmux.wait_for_number("set-exit="), 0, "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(screen.contains("Secret TYPED_TOKEN set."), "{screen}");
    assert!(!screen.contains(VALUE), "the value was echoed: {screen}");
    let list = Cli::new(&server).args(&["secrets", "list"]).run();
    assert_eq!(list.json(), json!([{"key": "TYPED_TOKEN"}]));
}
