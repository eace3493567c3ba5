//! User scripts as subcommands in help: `<scripts dir>/sandbox/hello.rhai` is listed by
//! `langsmith sandbox --help` as `hello` with its first comment line. Parsing does not need
//! this: unknown subcommands reach [`super::dispatch`] as external ones and run the script.

/// The command tree plus the subcommands that user scripts add (`sandbox/hello.rhai` →
/// `sandbox hello`), for help output. Parsing itself reaches them as external subcommands.
pub fn with_user_scripts(cmd: clap::Command) -> clap::Command {
    let add = |mut parent: clap::Command, dir: &str| {
        for (name, about) in crate::script::builtins::user_commands(dir) {
            // Names are plain (`user_commands` lists no others); one taken by a built-in
            // subcommand (such as `snapshot.rhai` next to the `snapshot` group) is not listed.
            if parent.find_subcommand(&name).is_some() {
                continue;
            }
            // clap names are `&'static str` without its `string` feature; this runs once,
            // only to print help, so leaking a few short strings is harmless.
            let name: &'static str = Box::leak(name.into_boxed_str());
            parent = parent.subcommand(
                clap::Command::new(name).about(about).arg(
                    clap::Arg::new("args")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                ),
            );
        }
        parent
    };
    cmd.mut_subcommand("sandbox", |sandbox| {
        add(sandbox, "sandbox")
            .mut_subcommand("snapshot", |snapshot| add(snapshot, "sandbox/snapshot"))
    })
}
