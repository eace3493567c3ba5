//! `langsmith shell`: a rustyline REPL evaluating Rhai with the same bindings as scripts.
//! Variables persist between lines; a line whose parse is incomplete continues on the next;
//! results go through the CLI's output layer; errors are printed and the REPL continues.
//! History lives in `<data dir>/langsmith/history`.

use rhai::{Dynamic, Scope};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::cli::output::{self, Format};
use crate::script::ScriptHost;

fn history_path() -> Option<std::path::PathBuf> {
    dirs::data_dir().map(|d| d.join("langsmith").join("history"))
}

/// Whether a compile error only means "more input needed" (an unclosed block, bracket or
/// string). An empty line forces evaluation, so a real syntax error is still reported.
fn incomplete(err: &rhai::ParseError) -> bool {
    use rhai::ParseErrorType as P;
    matches!(*err.0, P::UnexpectedEOF | P::MissingToken(..))
}

/// Run the REPL until EOF (Ctrl-D) or `quit`.
pub fn run(host: ScriptHost, format: Format) -> Result<u8, String> {
    let mut editor = DefaultEditor::new().map_err(|e| format!("starting the shell: {e}"))?;
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!(
        "langsmith shell — Rhai with sandbox bindings. `langsmith help-script` lists them; Ctrl-D quits."
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
                        let ast = functions.merge(&ast);
                        functions = ast.clone_functions_only();
                        host.bridge.clear_interrupt();
                        let sigint = host.bridge.watch_sigint();
                        let result = host.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast);
                        drop(sigint);
                        match crate::script::finish(result) {
                            Ok(value) => print!("{}", output::render(&value, format).0),
                            Err(message) => eprintln!("error: {message}"),
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
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    Ok(0)
}
