//! From parsed `sandbox …` arguments to the script to run and its `args` map: the walk down
//! the subcommand path, and one generic conversion of a header's declarations (ints as ints,
//! bools, lists as arrays, absent optional flags as `()`, the words after `--` as an array).

use clap::ArgMatches;
use rhai::{Array, Dynamic, Map};

use super::command_tree::{self, EntryKind};
use super::errors::{Arity, CliError};
use super::header::{Count, Interface, Kind};

/// What a `sandbox …` command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run the script (`sandbox/create`) with this `args` map.
    Script { name: String, args: Map },
    /// Print the help of the (sub)command at this path (a group without a subcommand, or an
    /// unknown subcommand, as in the LangSmith CLI).
    Help(Vec<String>),
}

/// Walk `matches` (those of the `parent` command, e.g. `sandbox`) to the script it names.
pub fn resolve(parent: &str, matches: &ArgMatches) -> Result<Invocation, CliError> {
    let path = || parent.split('/').map(String::from).collect::<Vec<_>>();
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(Invocation::Help(path()));
    };
    let entry = command_tree::entries(parent)
        .into_iter()
        .find(|entry| entry.name == name);
    let script = format!("{parent}/{name}");
    match entry.map(|e| e.kind) {
        Some(EntryKind::Declared(interface)) => Ok(Invocation::Script {
            args: script_args(&script, &interface, sub)?,
            name: script,
        }),
        Some(EntryKind::Broken { error, .. }) => Err(error.into()),
        _ if command_tree::is_group(&script) => resolve(&script, sub),
        _ => external(parent, name, sub),
    }
}

/// A subcommand no header declares: a plain user script gets its words as `args.argv`;
/// without one, help (exit 0) as in the LangSmith CLI. A name that is not plain (`../x`, `a/b`, `x.y`) never
/// names a script: it is unknown, with a note why.
fn external(parent: &str, name: &str, sub: &ArgMatches) -> Result<Invocation, CliError> {
    let path = parent.split('/').map(String::from).collect::<Vec<_>>();
    if !crate::script::builtins::is_plain_name(name) {
        eprintln!(
            "unknown command {name:?} for \"langsmith {}\": command names are letters, \
             digits, '-' and '_' (see the commands below)",
            parent.replace('/', " ")
        );
        return Ok(Invocation::Help(path));
    }
    let script = format!("{parent}/{name}");
    let exists = crate::script::builtins::find(&script).map_err(|error| CliError::ReadScript {
        name: script.clone(),
        error,
    })?;
    if exists.is_none() {
        return Ok(Invocation::Help(path));
    }
    let argv: Array = sub
        .get_many::<String>("")
        .into_iter()
        .flatten()
        .cloned()
        .map(Dynamic::from)
        .collect();
    let mut args = Map::new();
    args.insert("argv".into(), argv.into());
    Ok(Invocation::Script { name: script, args })
}

/// The `args` map of `script` (`sandbox/exec`) from its declared interface.
pub fn script_args(
    script: &str,
    interface: &Interface,
    matches: &ArgMatches,
) -> Result<Map, CliError> {
    let words = |key: &str| -> Vec<String> {
        matches
            .get_many::<String>(key)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    };
    let mut args = Map::new();
    for flag in &interface.flags {
        let value = match flag.kind {
            Kind::Int => matches
                .get_one::<i64>(&flag.key)
                .map_or(Dynamic::UNIT, |v| Dynamic::from(*v)),
            Kind::String => matches
                .get_one::<String>(&flag.key)
                .map_or(Dynamic::UNIT, |v| Dynamic::from(v.clone())),
            Kind::Bool => Dynamic::from(matches.get_one::<bool>(&flag.key).copied() == Some(true)),
            Kind::List => array(words(&flag.key)),
        };
        args.insert(flag.key.as_str().into(), value);
    }
    let trailing = interface.trailing.as_ref().map(|t| (t, words(&t.key)));
    if let Some(p) = &interface.positional {
        let mut given = words(&p.key);
        let value = match (p.count, &trailing) {
            // cobra counts the words after `--` with the others: `exec -- cmd` names `cmd`.
            (Count::One, Some((_, after))) => {
                given.extend(after.iter().cloned());
                match given.into_iter().next() {
                    Some(first) => Dynamic::from(first),
                    None => {
                        return Err(CliError::Arity(Arity::AtLeast {
                            wanted: 1,
                            received: 0,
                        }));
                    }
                }
            }
            (Count::One, None) => match <[String; 1]>::try_from(given) {
                Ok([one]) => Dynamic::from(one),
                Err(given) => {
                    return Err(CliError::Arity(Arity::Exact {
                        wanted: 1,
                        received: given.len(),
                    }));
                }
            },
            (Count::Optional, _) if given.len() > 1 => {
                return Err(CliError::Arity(Arity::AtMost {
                    wanted: 1,
                    received: given.len(),
                }));
            }
            (Count::Optional, _) => given.pop().map_or(Dynamic::UNIT, Dynamic::from),
            (Count::Many, _) => array(given),
        };
        args.insert(p.key.as_str().into(), value);
    }
    if let Some((t, after)) = trailing {
        if t.required && after.is_empty() {
            return Err(CliError::Usage {
                command: script.replace('/', " "),
                arg: interface
                    .positional
                    .as_ref()
                    .map_or_else(|| "args".to_string(), |p| p.key.clone()),
                trailing: t.key.clone(),
            });
        }
        args.insert(t.key.as_str().into(), array(after));
    }
    Ok(args)
}

fn array(words: Vec<String>) -> Dynamic {
    words
        .into_iter()
        .map(Dynamic::from)
        .collect::<Array>()
        .into()
}
