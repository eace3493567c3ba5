//! Tests of the cli module: the interface header parser, the command tree built from it and
//! the dispatch of parsed arguments to scripts.

use super::header::{Count, Flag, Kind, parse};

fn flags(header: &str) -> Vec<Flag> {
    parse("t.rhai", header).unwrap().unwrap().flags
}

fn error(header: &str) -> String {
    parse("t.rhai", header).unwrap_err().to_string()
}

#[test]
fn a_script_without_doc_lines_has_no_header() {
    assert_eq!(parse("t.rhai", "// A comment.\nargs\n").unwrap(), None);
    assert_eq!(
        parse("t.rhai", "#!/usr/bin/env langsmith\nargs\n").unwrap(),
        None
    );
}

#[test]
fn every_declaration_parses() {
    let source = "#!/usr/bin/env langsmith\n\
        //! @about Say hello\n\
        //! @order 3\n\
        //!\n\
        //! @arg name: Who to greet\n\
        //! @flag -l, --loud[=<LOUD>]: bool  Shout\n\
        //! @flag --times <N>: int = 2  How often\n\
        //! @flag --wait-secs: int = SANDBOX_WAIT_SECS\n\
        //! @flag --greeting: string = \"\"  The word\n\
        //! @flag --tag <KEY=VALUE>: list  Repeatable\n\
        //! @flag --note: string\n\
        //! @trailing command <COMMAND>: After --\n\
        args\n";
    let i = parse("hello.rhai", source).unwrap().unwrap();
    assert_eq!((i.about.as_str(), i.order), ("Say hello", Some(3)));
    let p = i.positional.unwrap();
    assert_eq!(
        (
            p.key.as_str(),
            p.value_name.as_str(),
            p.help.as_str(),
            p.count
        ),
        ("name", "NAME", "Who to greet", Count::One)
    );
    let f = &i.flags;
    assert_eq!(
        (f[0].short, f[0].key.as_str(), f[0].kind, f[0].equals_only),
        (Some('l'), "loud", Kind::Bool, true)
    );
    assert_eq!(f[0].value_name, "LOUD");
    assert_eq!(
        (
            f[1].value_name.as_str(),
            f[1].default.as_deref(),
            f[1].help.as_str()
        ),
        ("N", Some("2"), "How often")
    );
    assert_eq!(f[2].key, "wait_secs");
    assert_eq!(
        f[2].default,
        Some(crate::script::sandbox::DEFAULT_WAIT_SECS.to_string())
    );
    assert_eq!(f[3].default.as_deref(), Some(""));
    assert_eq!(
        (f[4].kind, f[4].value_name.as_str()),
        (Kind::List, "KEY=VALUE")
    );
    assert_eq!((f[5].kind, f[5].default.as_deref()), (Kind::String, None));
    let t = i.trailing.unwrap();
    assert_eq!((t.key.as_str(), t.required), ("command", true));
}

#[test]
fn positional_counts() {
    let count = |arg: &str| {
        let source = format!("//! @about x\n//! @arg {arg}\n");
        parse("t.rhai", &source)
            .unwrap()
            .unwrap()
            .positional
            .unwrap()
    };
    assert_eq!(count("[name]").count, Count::Optional);
    assert_eq!(count("names...").count, Count::Many);
    let id = count("snapshot_id <NAME>");
    assert_eq!(
        (id.key.as_str(), id.value_name.as_str()),
        ("snapshot_id", "NAME")
    );
    assert_eq!(
        flags("//! @about x\n//! @flag --wait: bool\n")[0].value_name,
        "WAIT"
    );
}

#[test]
fn malformed_headers_name_the_script_and_line() {
    let cases = [
        (
            "//! @arg name\n",
            "t.rhai line 1: the header has no @about line",
        ),
        (
            "//! @about x\n//! @about y\n",
            "t.rhai line 2: a second @about",
        ),
        (
            "//! @about x\n//! @option --v: int\n",
            "t.rhai line 2: unknown declaration \"@option\" (expected @about, @order, @arg, \
             @flag or @trailing)",
        ),
        (
            "//! @about x\n//! @flag --vcpus: integer\n",
            "t.rhai line 2: unknown type \"integer\" (expected int, string, bool or list; help \
             text follows two spaces)",
        ),
        (
            "//! @about x\n//! @flag --vcpus: int Number of vCPUs\n",
            "t.rhai line 2: unknown type \"int Number of vCPUs\" (expected int, string, bool or \
             list; help text follows two spaces)",
        ),
        (
            "//! @about x\n//! @flag --vcpus: int = two\n",
            "t.rhai line 2: default \"two\" is not an int or a named default",
        ),
        (
            "//! @about x\n//! @flag --Vcpus: int\n",
            "t.rhai line 2: --Vcpus: flag names are lowercase letters, digits and '-'",
        ),
        (
            "//! @about x\n//! @flag --format: string\n",
            "t.rhai line 2: --format is a flag of every command already",
        ),
        (
            "//! @about x\n//! @flag -h, --hi: bool\n",
            "t.rhai line 2: -h is not a usable short flag",
        ),
        (
            "//! @about x\n//! @flag --a: int\n//! @flag --a: int\n",
            "t.rhai line 3: --a is declared twice",
        ),
        (
            "//! @about x\n//! @flag --wait [<W>]: bool\n",
            "t.rhai line 2: a bool flag is written --wait or --wait[=<VALUE>], not \"[<W>]\"",
        ),
        (
            "//! @about x\n//! @flag --env: list = a\n",
            "t.rhai line 2: a list has no default (it is empty)",
        ),
        (
            "//! @about x\n//! @arg Name\n",
            "t.rhai line 2: \"Name\": argument names are lowercase letters, digits and '_'",
        ),
        (
            "//! @about x\n//! @arg names...\n//! @trailing cmd\n",
            "t.rhai line 3: with @trailing, @arg takes exactly one name",
        ),
        (
            "//! @about x\n//! @arg box\n//! @flag --box: string\n",
            "t.rhai line 3: args.box is declared twice",
        ),
        (
            "//! @about x\n//! @order first\n",
            "t.rhai line 2: @order takes a number, not \"first\"",
        ),
    ];
    for (header, message) in cases {
        assert_eq!(error(header), message, "{header}");
    }
}

#[test]
fn every_builtin_header_parses_and_builds_a_valid_tree() {
    for (name, source) in crate::script::builtins::BUILTINS {
        let interface = parse(name, source).unwrap();
        assert!(interface.is_some(), "{name} has no header");
    }
    full_tree().debug_assert();
}

/// The whole command tree, every script subtree built from the scripts (unit tests have no
/// user scripts folder, so only the built-ins).
pub(super) fn full_tree() -> clap::Command {
    use clap::CommandFactory;
    super::command_tree::SCRIPT_ROOTS
        .into_iter()
        .fold(super::args::Cli::command(), |tree, root| {
            super::command_tree::with_scripts(tree, root, super::command_tree::Purpose::Parse)
        })
}

#[test]
fn every_builtin_is_a_leaf_of_the_tree() {
    let mut tree = full_tree();
    tree.build();
    for (script, _) in crate::script::builtins::BUILTINS {
        let mut node = &tree;
        for name in script.split('/') {
            node = node
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("{script}: no subcommand {name:?}"));
        }
        assert!(
            node.get_subcommands().next().is_none(),
            "{script} is no leaf"
        );
    }
    let snapshot = tree.find_subcommand("sandbox").unwrap();
    let snapshot = snapshot.find_subcommand("snapshot").unwrap();
    assert_eq!(
        snapshot.get_about().unwrap().to_string(),
        "Manage snapshots"
    );
}

#[test]
fn keys_that_clap_or_the_global_flags_use_are_rejected() {
    use clap::CommandFactory;
    let globals = super::args::Cli::command();
    for arg in globals.get_arguments() {
        let id = arg.get_id().as_str();
        assert!(
            super::header::RESERVED_KEYS.contains(&id),
            "{id} is not reserved"
        );
    }
    let cases = [
        (
            "//! @about x\n//! @arg format\n",
            "t.rhai line 2: args.format is reserved",
        ),
        (
            "//! @about x\n//! @arg [api_key]\n",
            "t.rhai line 2: args.api_key is reserved",
        ),
        (
            "//! @about x\n//! @arg api_url...\n",
            "t.rhai line 2: args.api_url is reserved",
        ),
        (
            "//! @about x\n//! @arg help\n",
            "t.rhai line 2: args.help is reserved",
        ),
        (
            "//! @about x\n//! @arg a\n//! @trailing format\n",
            "t.rhai line 3: args.format is reserved",
        ),
        (
            "//! @about x\n//! @trailing [version]\n",
            "t.rhai line 2: args.version is reserved",
        ),
        (
            "//! @about x\n//! @flag --version: bool\n",
            "t.rhai line 2: args.version is reserved",
        ),
    ];
    for (header, message) in cases {
        assert_eq!(
            error(header),
            format!("{message} (help, version and the global flags' names)"),
            "{header}"
        );
    }
}

/// The script and `args` of a `sandbox …` command line, or its error message.
fn invoke(argv: &[&str]) -> Result<(String, rhai::Map), String> {
    use clap::FromArgMatches;
    let matches = full_tree()
        .try_get_matches_from(argv)
        .map_err(|e| e.to_string())?;
    let cli = super::args::Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let Some(super::args::Command::Sandbox(sb)) = cli.command else {
        panic!("not a sandbox command")
    };
    match super::script_args::resolve("sandbox", &sb.matches) {
        Ok(super::script_args::Invocation::Script { name, args }) => Ok((name, args)),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn parsed_flags_become_typed_args() {
    let (name, args) = invoke(&[
        "langsmith",
        "sandbox",
        "create",
        "a",
        "--vcpus",
        "0x10",
        "--wait=false",
    ])
    .unwrap();
    assert_eq!(name, "sandbox/create");
    assert_eq!(args["vcpus"].as_int(), Ok(16));
    assert_eq!(args["wait"].as_bool(), Ok(false));
    assert_eq!(args["memory"].clone().into_string().unwrap(), "512mb");
    assert_eq!(args["name"].clone().into_string().unwrap(), "a");

    let (_, args) = invoke(&["langsmith", "sandbox", "update", "a", "--vcpus", "3"]).unwrap();
    assert_eq!(args["vcpus"].as_int(), Ok(3));
    assert!(args["memory"].is_unit());

    let (_, args) = invoke(&[
        "langsmith",
        "sandbox",
        "exec",
        "vm",
        "-t",
        "--env",
        "A=1",
        "--env",
        "B=2",
        "--",
        "ls",
        "-l",
    ])
    .unwrap();
    assert_eq!(args["tty"].as_bool(), Ok(true));
    let words =
        |key: &str| -> Vec<String> { args[key].clone().into_typed_array::<String>().unwrap() };
    assert_eq!(words("env"), ["A=1", "B=2"]);
    assert_eq!(words("command"), ["ls", "-l"]);
}

#[test]
fn positional_counts_and_usage_speak_cobra() {
    let err = |argv: &[&str]| invoke(argv).unwrap_err();
    assert_eq!(
        err(&["langsmith", "sandbox", "get"]),
        "accepts 1 arg(s), received 0"
    );
    assert_eq!(
        err(&["langsmith", "sandbox", "exec"]),
        "requires at least 1 arg(s), only received 0"
    );
    assert_eq!(
        err(&["langsmith", "sandbox", "exec", "vm"]),
        "usage: langsmith sandbox exec <name> -- <command>"
    );
    let (_, args) = invoke(&["langsmith", "sandbox", "exec", "--", "echo", "hi"]).unwrap();
    assert_eq!(args["name"].clone().into_string().unwrap(), "echo");
}

#[test]
fn wait_defaults_are_the_script_apis() {
    let timeout = |argv: &[&str]| invoke(argv).unwrap().1["timeout"].as_int().unwrap();
    let sandbox = crate::script::sandbox::DEFAULT_WAIT_SECS;
    let snapshot = crate::script::snapshot::DEFAULT_WAIT_SECS;
    assert_eq!(timeout(&["langsmith", "sandbox", "wait", "a"]), sandbox);
    assert_eq!(timeout(&["langsmith", "sandbox", "start", "a"]), sandbox);
    assert_eq!(timeout(&["langsmith", "sandbox", "create", "a"]), sandbox);
    let snapshot_wait = ["langsmith", "sandbox", "snapshot", "wait", "id"];
    assert_eq!(timeout(&snapshot_wait), snapshot);
    assert_eq!(
        timeout(&["langsmith", "sandbox", "snapshot", "build", "a"]),
        snapshot
    );
    assert_eq!(
        timeout(&["langsmith", "sandbox", "snapshot", "capture", "a"]),
        snapshot
    );
}

#[test]
fn hidden_flags_parse_and_stay_out_of_help() {
    let f = flags(
        "//! @about X\n//! @flag --name: string = \"\" hidden  Alias\n//! @flag --url: string\n",
    );
    assert_eq!(
        (f[0].hidden, f[0].default.as_deref(), f[0].help.as_str()),
        (true, Some(""), "Alias")
    );
    assert!(!f[1].hidden);
    let mut tree = full_tree();
    let tunnel = tree
        .find_subcommand_mut("sandbox")
        .and_then(|s| s.find_subcommand_mut("tunnel"))
        .expect("sandbox tunnel exists");
    let help = tunnel.render_long_help().to_string();
    assert!(
        help.contains("--remote-port") && !help.contains("--name"),
        "{help}"
    );
}
