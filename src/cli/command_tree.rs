//! The script subtrees of the command line (`sandbox`, `secrets`: [`SCRIPT_ROOTS`]), built at
//! run time from the interface headers ([`super::header`]) of the subcommand scripts: the
//! built-ins (`scripts/sandbox/**.rhai`, `scripts/secrets/*.rhai`) and the user's scripts. A subcommand's path is its script's path: `sandbox snapshot build`
//! runs `sandbox/snapshot/build`, and every directory (built-in or the user's) is a group.
//! A subtree is built only for a command line of its root ([`with_scripts`]): every other one
//! (`agent`, PID 1 of each sandbox, above all) never reads the user scripts folder.
//!
//! A user script with a header gets real flags and `--help`; one without keeps the plain form
//! (an external subcommand whose words arrive as `args.argv`) and is only listed in help. An
//! override of a built-in without a header takes the built-in's interface.

use clap::{Arg, ArgAction, value_parser};

use super::header::{self, HeaderError, Interface, Kind};
use crate::script::builtins::{self, BUILTINS, UserScript};

/// Descriptions of groups that say more than the generated "<name> commands".
const GROUP_ABOUT: &[(&str, &str)] = &[("sandbox/snapshot", "Manage snapshots")];

/// The groups of subcommands directly under `parent` (`sandbox`), by name: the directories
/// of the built-ins and of the user scripts folder. A directory named like a built-in command
/// is no group (the command wins). A group is listed after the commands beside it.
pub fn groups(parent: &str) -> Vec<String> {
    let builtin = BUILTINS.iter().filter_map(|(script, _)| {
        let (group, _) = script
            .strip_prefix(parent)?
            .strip_prefix('/')?
            .split_once('/')?;
        Some(group.to_string())
    });
    let mut names: Vec<String> = builtin.chain(builtins::user_groups(parent)).collect();
    names.sort();
    names.dedup();
    names.retain(|name| {
        let script = format!("{parent}/{name}");
        !BUILTINS.iter().any(|(s, _)| *s == script)
    });
    names
}

/// Whether `script` (`sandbox/snapshot`) names a group of subcommands.
pub fn is_group(script: &str) -> bool {
    script
        .rsplit_once('/')
        .is_some_and(|(parent, name)| groups(parent).iter().any(|g| g == name))
}

/// The help text of the group `script` (`sandbox/greet` → "greet commands").
fn group_about(script: &str) -> String {
    match GROUP_ABOUT.iter().find(|(group, _)| *group == script) {
        Some((_, about)) => about.to_string(),
        None => format!("{} commands", script.rsplit('/').next().unwrap_or(script)),
    }
}

/// One subcommand script as the command line sees it.
#[derive(Debug)]
pub struct Entry {
    /// The subcommand name (`create`).
    pub name: String,
    /// The script path (`sandbox/create`).
    pub script: String,
    pub kind: EntryKind,
}

#[derive(Debug)]
pub enum EntryKind {
    /// Parsed by clap as its header declares.
    Declared(Interface),
    /// A user script without a header: its words pass through as `args.argv`.
    Plain { about: String },
    /// A user script whose header does not parse: running it reports the error.
    Broken { about: String, error: HeaderError },
}

/// The scripts under `parent` (`sandbox`, `sandbox/snapshot`) in help order: built-ins by
/// `@order` (then name), then the user's additions by name.
pub fn entries(parent: &str) -> Vec<Entry> {
    let users = builtins::user_scripts(parent);
    let mut builtin: Vec<(Option<u32>, Entry)> = BUILTINS
        .iter()
        .filter_map(|(script, source)| {
            let name = script.strip_prefix(parent)?.strip_prefix('/')?;
            if name.contains('/') {
                return None;
            }
            let declared = header::parse(&format!("built-in {script}.rhai"), source)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("built-in {script}.rhai has no header"));
            let kind = match users.iter().find(|u| u.name == name) {
                Some(user) => override_kind(user, declared.clone()),
                None => EntryKind::Declared(declared.clone()),
            };
            let entry = Entry {
                name: name.to_string(),
                script: script.to_string(),
                kind,
            };
            Some((declared.order, entry))
        })
        .collect();
    builtin.sort_by(|a, b| (a.0.is_none(), a.0, &a.1.name).cmp(&(b.0.is_none(), b.0, &b.1.name)));
    let groups = groups(parent);
    let taken = |name: &str| {
        builtin.iter().any(|(_, e)| e.name == name) || groups.iter().any(|g| g == name)
    };
    let added: Vec<Entry> = users
        .iter()
        .filter(|user| !taken(&user.name))
        .map(|user| Entry {
            name: user.name.clone(),
            script: format!("{parent}/{}", user.name),
            kind: user_kind(user),
        })
        .collect();
    builtin.into_iter().map(|(_, e)| e).chain(added).collect()
}

fn user_kind(user: &UserScript) -> EntryKind {
    match header::parse(&user.path.display().to_string(), &user.source) {
        Ok(Some(interface)) => EntryKind::Declared(interface),
        Ok(None) => EntryKind::Plain {
            about: builtins::first_comment(user),
        },
        Err(error) => EntryKind::Broken {
            about: format!("User script {}", user.path.display()),
            error,
        },
    }
}

/// An override keeps the built-in's interface unless it declares its own.
fn override_kind(user: &UserScript, builtin: Interface) -> EntryKind {
    match user_kind(user) {
        EntryKind::Plain { .. } => EntryKind::Declared(builtin),
        EntryKind::Broken { error, .. } => EntryKind::Broken {
            about: builtin.about,
            error,
        },
        declared => declared,
    }
}

/// Whether to register plain user scripts: only for help, where they are listed; parsing
/// reaches them as external subcommands, so every word after the name is theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Parse,
    Help,
}

/// Add the subcommands of `parent` (and its groups) to `cmd`.
pub fn subcommands(mut cmd: clap::Command, parent: &str, purpose: Purpose) -> clap::Command {
    cmd = cmd
        .allow_external_subcommands(true)
        .external_subcommand_value_parser(value_parser!(String));
    let mut groups_added = false;
    for entry in entries(parent) {
        if !groups_added && !BUILTINS.iter().any(|(s, _)| *s == entry.script) {
            cmd = add_groups(cmd, parent, purpose);
            groups_added = true;
        }
        let sub = match entry.kind {
            EntryKind::Declared(interface) => command(&entry.name, &interface),
            EntryKind::Plain { about } if purpose == Purpose::Help => {
                passthrough(&entry.name, about)
            }
            EntryKind::Plain { .. } => continue,
            EntryKind::Broken { about, .. } => passthrough(&entry.name, about),
        };
        cmd = cmd.subcommand(sub);
    }
    if !groups_added {
        cmd = add_groups(cmd, parent, purpose);
    }
    cmd
}

fn add_groups(mut cmd: clap::Command, parent: &str, purpose: Purpose) -> clap::Command {
    for name in groups(parent) {
        let group = format!("{parent}/{name}");
        let sub = clap::Command::new(name).about(group_about(&group));
        cmd = cmd.subcommand(subcommands(sub, &group, purpose));
    }
    cmd
}

/// A subcommand that takes any words (help listing of plain scripts; broken headers).
fn passthrough(name: &str, about: String) -> clap::Command {
    clap::Command::new(name.to_string())
        .about(about)
        .disable_help_flag(true)
        .arg(
            Arg::new("argv")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_parser(value_parser!(String)),
        )
}

/// The clap subcommand a header declares. Arguments are added in the order clap's derive
/// would add them, so help lists them the same way.
pub fn command(name: &str, interface: &Interface) -> clap::Command {
    let mut cmd = clap::Command::new(name.to_string()).about(interface.about.clone());
    if let Some(p) = &interface.positional {
        // Collected as a list and counted later, so the arity messages are cobra's.
        let arg = Arg::new(p.key.clone())
            .value_name(p.value_name.clone())
            .num_args(1..)
            .action(ArgAction::Append)
            .value_parser(value_parser!(String));
        cmd = cmd.arg(with_help(arg, &p.help));
    }
    for flag in &interface.flags {
        let mut arg = Arg::new(flag.key.clone())
            .long(flag.long.clone())
            .value_name(flag.value_name.clone());
        if let Some(short) = flag.short {
            arg = arg.short(short);
        }
        arg = match flag.kind {
            Kind::Int => arg.action(ArgAction::Set).value_parser(super::args::go_int),
            Kind::String => arg
                .action(ArgAction::Set)
                .value_parser(value_parser!(String)),
            Kind::List => arg
                .action(ArgAction::Append)
                .value_parser(value_parser!(String)),
            // `--wait`, `--wait=false` and `--wait false`, as pflag's bools.
            Kind::Bool => arg
                .num_args(0..=1)
                .require_equals(flag.equals_only)
                .default_value("false")
                .default_missing_value("true")
                .action(ArgAction::Set)
                .value_parser(value_parser!(bool)),
        };
        if let Some(default) = &flag.default {
            arg = arg
                .default_value(default.clone())
                .hide_default_value(default.is_empty());
        }
        arg = arg.hide(flag.hidden);
        cmd = cmd.arg(with_help(arg, &flag.help));
    }
    if let Some(t) = &interface.trailing {
        let arg = Arg::new(t.key.clone())
            .last(true)
            .value_name(t.value_name.clone())
            .num_args(1..)
            .action(ArgAction::Append)
            .value_parser(value_parser!(String));
        cmd = cmd.arg(with_help(arg, &t.help));
    }
    cmd
}

fn with_help(arg: Arg, help: &str) -> Arg {
    if help.is_empty() {
        arg
    } else {
        arg.help(help.to_string())
    }
}

/// The top-level commands whose subcommands are scripts.
pub const SCRIPT_ROOTS: [&str; 2] = ["sandbox", "secrets"];

/// A script root's parsed command line: its matches, walked by
/// [`super::script_args::resolve`].
#[derive(Debug, Clone)]
pub struct ScriptCmd {
    pub matches: clap::ArgMatches,
}

impl clap::FromArgMatches for ScriptCmd {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(ScriptCmd {
            matches: matches.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.matches = matches.clone();
        Ok(())
    }
}

/// What the derived tree holds for a script root: a stand-in that takes any words, so telling
/// its command lines from the others reads no script; [`with_scripts`] puts the real subtree
/// in its place.
impl clap::Args for ScriptCmd {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.disable_help_flag(true).arg(
            Arg::new("words")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_parser(value_parser!(String)),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The whole tree `cmd` with the real subtree of `root` (`sandbox`) built from the scripts in
/// place of the stand-in; for help (`Purpose::Help`) plain user scripts are listed too, in
/// their sorted places among the user's additions.
pub fn with_scripts(cmd: clap::Command, root: &str, purpose: Purpose) -> clap::Command {
    cmd.mut_subcommand(root, |stand_in| {
        let rebuilt = subcommands(clap::Command::new(root.to_string()), root, purpose)
            .display_order(stand_in.get_display_order());
        match stand_in.get_about() {
            Some(about) => rebuilt.about(about.clone()),
            None => rebuilt,
        }
    })
}
