//! The rustyline helper of `langsmith shell`: Tab completion of functions, keywords,
//! variables, methods and properties after `.`, and sandbox names / snapshot ids inside the
//! string argument of calls like `sandbox("`; hints (the matching history line, or the
//! signatures of the function whose `(` was just typed), shown dimmed.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hint, Hinter, HistoryHinter};
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::catalog::Catalog;
use super::context::{Spot, spot};
use super::names::NameCache;

pub struct ReplHelper {
    pub catalog: Catalog,
    names: NameCache,
    /// Variables of the REPL's scope → their type as scripts name it (`Sandbox`, `map`, …),
    /// refreshed after every evaluation.
    variables: BTreeMap<String, String>,
    history: HistoryHinter,
}

impl ReplHelper {
    pub fn new(catalog: Catalog, names: NameCache) -> Self {
        ReplHelper {
            catalog,
            names,
            variables: BTreeMap::new(),
            history: HistoryHinter::new(),
        }
    }

    pub fn set_variables(&mut self, variables: BTreeMap<String, String>) {
        self.variables = variables;
    }

    /// The candidates at the cursor and the byte where the replaced text starts.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        match spot(line, pos) {
            Spot::Nothing => (pos, Vec::new()),
            Spot::Name {
                start,
                prefix,
                kind,
            } => {
                let pairs = self
                    .names
                    .matching(kind, prefix)
                    .into_iter()
                    .map(|n| Pair {
                        display: n.label,
                        replacement: format!("{}\"", n.value),
                    })
                    .collect();
                (start, pairs)
            }
            Spot::Word {
                start,
                prefix,
                receiver: Some(receiver),
            } => {
                let ty = receiver
                    .and_then(|v| self.variables.get(v))
                    .map(String::as_str);
                (start, words(self.catalog.members(ty).iter(), prefix))
            }
            Spot::Word {
                start,
                prefix,
                receiver: None,
            } => {
                if prefix.is_empty() {
                    return (pos, Vec::new());
                }
                let names = self
                    .catalog
                    .top_level()
                    .chain(self.variables.keys().map(String::as_str));
                (start, words(names, prefix))
            }
        }
    }

    /// `name(` just typed: the signatures of `name` (a method when preceded by `.`).
    fn signature_hint(&self, line: &str, pos: usize) -> Option<String> {
        let head = line[..pos].strip_suffix('(')?;
        let Spot::Word {
            prefix, receiver, ..
        } = spot(head, head.len())
        else {
            return None;
        };
        let ty = receiver
            .flatten()
            .and_then(|v| self.variables.get(v))
            .map(String::as_str);
        self.catalog.signature(ty, prefix, receiver.is_some())
    }
}

/// Sorted, de-duplicated names starting with `prefix`.
fn words<'a>(names: impl Iterator<Item = impl AsRef<str> + 'a>, prefix: &str) -> Vec<Pair> {
    let mut found: Vec<String> = names
        .map(|n| n.as_ref().to_string())
        .filter(|n| n.starts_with(prefix))
        .collect();
    found.sort();
    found.dedup();
    found
        .into_iter()
        .map(|n| Pair {
            display: n.clone(),
            replacement: n,
        })
        .collect()
}

/// A hint: history text that Right-arrow accepts, or a signature that is only shown.
pub enum ReplHint {
    History(String),
    Signature(String),
}

impl Hint for ReplHint {
    fn display(&self) -> &str {
        match self {
            ReplHint::History(s) | ReplHint::Signature(s) => s,
        }
    }

    fn completion(&self) -> Option<&str> {
        match self {
            ReplHint::History(s) => Some(s),
            ReplHint::Signature(_) => None,
        }
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for ReplHelper {
    type Hint = ReplHint;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<ReplHint> {
        if pos < line.len() {
            return None;
        }
        if let Some(sig) = self.signature_hint(line, pos) {
            return Some(ReplHint::Signature(format!("  {sig}")));
        }
        self.history.hint(line, pos, ctx).map(ReplHint::History)
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        false
    }
}

/// Multi-line input is decided by the REPL loop (it compiles the buffer), not here.
impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ConfigInputs;
    use crate::script::ScriptHost;

    fn replacements(pairs: &[Pair]) -> Vec<&str> {
        pairs.iter().map(|p| p.replacement.as_str()).collect()
    }

    #[test]
    fn completion_follows_the_variable_types_of_the_scope() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let host = ScriptHost::new(rt.handle().clone(), ConfigInputs::default());
        let mut helper = ReplHelper::new(
            Catalog::from_engine(&host.engine),
            NameCache::new(host.bridge.clone()),
        );
        helper.set_variables(BTreeMap::from([
            ("sb".to_string(), "Sandbox".to_string()),
            ("cmd".to_string(), "Command".to_string()),
            ("sandboxes".to_string(), "array".to_string()),
        ]));
        let (start, pairs) = helper.candidates("let r = sb.ex", 13);
        assert_eq!((start, replacements(&pairs)), (11, vec!["exec"]));
        let (_, pairs) = helper.candidates("cmd.k", 5);
        assert_eq!(replacements(&pairs), vec!["kill"]);
        let (_, pairs) = helper.candidates("sandboxes.pu", 12);
        assert_eq!(replacements(&pairs), vec!["push"]);
        let (_, pairs) = helper.candidates("sandbox_c", 9);
        assert_eq!(replacements(&pairs), vec!["sandbox_create"]);
        let (_, pairs) = helper.candidates("sandb", 5);
        assert!(replacements(&pairs).contains(&"sandboxes"), "variables too");
        assert_eq!(
            helper.signature_hint("cmd.send(", 9).as_deref(),
            Some("send(string)")
        );
        assert_eq!(helper.signature_hint("nothing(", 8), None);
    }
}
