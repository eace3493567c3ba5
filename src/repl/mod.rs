//! `langsmith shell`: a rustyline REPL evaluating Rhai with the same bindings as scripts.
//!
//! Variables and functions persist between lines; a line whose parse is incomplete (an open
//! block, bracket or string) continues on the next, and an empty line forces evaluation.
//! Results go through the script layer's renderer (`script::render`); errors are printed and the REPL continues.
//! Tab completes (see `helper`), hints appear dimmed, history lives in
//! `<data dir>/langsmith/history`. Ctrl-C at the prompt clears the line, Ctrl-D (or `quit`)
//! exits, Ctrl-C during an evaluation cancels it and kills the remote commands it started.
//!
//! Module map: `helper` the rustyline helper (completion, hints, highlighting) · `catalog`
//! what the engine offers to complete · `context` where the cursor is · `names` sandbox
//! names and snapshot ids, fetched once under a time budget · `interrupt` Ctrl-C during an
//! evaluation.

mod catalog;
mod context;
mod helper;
mod interrupt;
mod names;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rhai::{Dynamic, Scope};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use self::catalog::Catalog;
use self::helper::ReplHelper;
use self::interrupt::SigintRoute;
use self::names::NameCache;
use crate::script::ScriptHost;
use crate::script::render::{self as output, Format};

/// Whether a compile error only means "more input needed" (an unclosed block, bracket or
/// string). An empty line forces evaluation, so a real syntax error is still reported.
fn incomplete(err: &rhai::ParseError) -> bool {
    use rhai::ParseErrorType as P;
    matches!(*err.0, P::UnexpectedEOF | P::MissingToken(..))
}

/// The scope's variables with their type names, for completion after `name.`.
fn variable_types(host: &ScriptHost, scope: &Scope) -> BTreeMap<String, String> {
    scope
        .iter_raw()
        .map(|(name, _, value)| {
            let ty = host.engine.map_type_name(value.type_name());
            (name.to_string(), ty.to_string())
        })
        .collect()
}

fn save_history(editor: &mut Editor<ReplHelper, DefaultHistory>, path: &Option<PathBuf>) {
    if let Some(path) = path {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
}

/// Run the REPL until EOF (Ctrl-D) or `quit`.
pub fn run(host: ScriptHost, format: Format) -> Result<u8, String> {
    // Before the editor: rustyline installs its own SIGINT handler when it is created.
    let sigint = SigintRoute::new(&host.bridge);
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> =
        Editor::with_config(config).map_err(|e| format!("starting the shell: {e}"))?;
    let helper = ReplHelper::new(
        Catalog::from_engine(&host.engine),
        NameCache::new(host.bridge.clone()),
    );
    editor.set_helper(Some(helper));
    let history = crate::paths::history_file();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!(
        "langsmith shell — Rhai with sandbox bindings. Tab completes; `langsmith help-script` \
         documents them; Ctrl-C cancels, Ctrl-D quits."
    );
    let mut scope = Scope::new();
    // Functions defined on earlier lines; statements are evaluated once, functions kept.
    let mut functions = rhai::AST::empty();
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "langsmith> "
        } else {
            "......... "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && matches!(line.trim(), "quit" | "exit") {
                    break;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                match host.engine.compile_with_scope(&scope, &buffer) {
                    Err(e) if incomplete(&e) && !line.trim().is_empty() => continue,
                    Err(e) => eprintln!("{e}"),
                    Ok(ast) => {
                        let _ = editor.add_history_entry(buffer.trim_end());
                        save_history(&mut editor, &history);
                        let ast = functions.merge(&ast);
                        functions = ast.clone_functions_only();
                        host.bridge.clear_interrupt();
                        let result = {
                            let _ctrl_c = sigint.arm();
                            host.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
                        };
                        // A Ctrl-C must not linger into the completions of the next prompt.
                        host.bridge.clear_interrupt();
                        match crate::script::finish(result) {
                            Ok(value) => print!("{}", output::render(&value, format).0),
                            Err(message) => eprintln!("error: {message}"),
                        }
                        let variables = variable_types(&host, &scope);
                        if let Some(h) = editor.helper_mut() {
                            h.set_variables(variables);
                        }
                    }
                }
                buffer.clear();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("reading input: {e}")),
        }
    }
    save_history(&mut editor, &history);
    Ok(0)
}
