//! Module functions that are not about one API object: argument parsing shared by the built-in
//! scripts (`parse_size`, `parse_json_arg`, `shell_join`), `exit_status`, `connect()` and `sleep`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine};

use super::bridge::{Bridge, ScriptResult, user_error};
use crate::text::{go_quote, parse_size};

/// Made by `exit_status(code)`: as a script's value, the CLI prints nothing and exits with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus(pub i64);

/// Quote one word for a POSIX shell (`'` → `'\''`).
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `--proxy-config` style argument: `@file` or inline JSON.
pub fn parse_json_arg(value: &str, flag: &str) -> Result<serde_json::Value, String> {
    let text = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("invalid {flag}: reading file {path}: {e}"))?,
        None => value.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| format!("invalid {flag}: invalid JSON: {e}"))
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    engine.register_type_with_name::<ExitStatus>("ExitStatus");
    engine.register_fn("exit_status", ExitStatus);
    engine.register_fn(
        "parse_size",
        |text: &str, flag: &str| -> ScriptResult<i64> {
            parse_size(text).map_err(|e| user_error(format!("invalid {flag}: {e}")))
        },
    );
    engine.register_fn(
        "parse_json_arg",
        |text: &str, flag: &str| -> ScriptResult<Dynamic> {
            let value = parse_json_arg(text, flag).map_err(user_error)?;
            rhai::serde::to_dynamic(value)
        },
    );
    engine.register_fn("shell_join", |argv: Array| -> String {
        let words: Vec<String> = argv.iter().map(|w| shell_quote(&w.to_string())).collect();
        words.join(" ")
    });
    engine.register_fn("go_quote", |text: &str| go_quote(text));
    let b = bridge.clone();
    engine.register_fn("sleep", move |secs: f64| -> ScriptResult<()> {
        let pause = std::time::Duration::from_secs_f64(secs.max(0.0));
        // The timer is made inside the runtime (a `Sleep` built on the script thread has no
        // reactor to register with).
        b.block_on(async move { tokio::time::sleep(pause).await })
    });
    let b = bridge.clone();
    engine.register_fn("connect", move || -> ScriptResult<()> {
        b.client().map(drop)
    });
    engine.register_fn("is_terminal_stderr", || {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal()
    });
    engine.register_fn("eprint", |text: &str| eprintln!("{text}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("-la"), "'-la'");
    }

    #[test]
    fn json_args_inline_and_bad() {
        assert_eq!(
            parse_json_arg(r#"{"a":1}"#, "--proxy-config").unwrap()["a"],
            1
        );
        let e = parse_json_arg("{", "--proxy-config").unwrap_err();
        assert!(
            e.starts_with("invalid --proxy-config: invalid JSON: "),
            "{e}"
        );
        let e = parse_json_arg("@/nonexistent/p.json", "--proxy-config").unwrap_err();
        assert!(
            e.starts_with("invalid --proxy-config: reading file /nonexistent/p.json: "),
            "{e}"
        );
    }
}
