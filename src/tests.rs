//! The module graph stays one-way: every `crate::<module>` reference in `src/` (in `use` lines,
//! grouped `use crate::{a, b::c}` forms and inline paths, test code included) must be an edge of
//! [`ALLOWED`]. Leaves know nothing of the layers above them, so a lower layer never needs a
//! change (or a rebuild of its tests) when a higher one grows.
//!
//! Comments are skipped: a doc link is not a dependency. Relative paths (`super::…`) never
//! leave their top-level module in this crate; the crate root is reached through `crate::`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use. The crate root (`lib.rs`, `main.rs`)
/// wires them together and is not listed.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("api", &[]),
    ("paths", &[]),
    ("text", &[]),
    ("term", &[]),
    // The local backend and what runs inside a sandbox.
    ("runtime", &["api"]),
    ("agent", &["api"]),
    ("server", &["api", "runtime", "paths"]),
    // The client side, bottom to top.
    ("client", &["api", "paths", "term"]),
    ("script", &["client", "api", "text", "term", "paths"]),
    (
        "repl",
        &["script", "client", "api", "text", "term", "paths"],
    ),
    (
        "cli",
        &[
            "repl", "script", "client", "server", "runtime", "agent", "api", "paths", "text",
            "term",
        ],
    ),
    // The crate root's tests: this file.
    ("tests", &[]),
];

/// One reference from a file of module `from` to module `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
}

#[test]
fn no_module_imports_upward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let mut unknown = BTreeSet::new();
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(from) = top_level_module(relative) else {
            continue; // the crate root
        };
        let Some(allowed) = allowed(&from) else {
            unknown.insert(from);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, to) in crate_references(&text) {
            if to != from && !allowed.contains(&to.as_str()) {
                upward.push(Edge {
                    from: from.clone(),
                    to,
                    file: relative.display().to_string(),
                    line,
                });
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "top-level modules missing from ALLOWED: {unknown:?}"
    );
    let listed: Vec<String> = upward
        .iter()
        .map(|e| format!("{} → {}  (src/{}:{})", e.from, e.to, e.file, e.line))
        .collect();
    assert!(
        upward.is_empty(),
        "edges not in the module graph:\n{}",
        listed.join("\n")
    );
}

fn allowed(module: &str) -> Option<&'static [&'static str]> {
    ALLOWED
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, to)| *to)
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `cli/mod.rs` → `cli`, `paths.rs` → `paths`; `None` for the crate root's files.
fn top_level_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(file_module) => Some(file_module.to_string()),
        None => Some(first.to_string()),
    }
}

/// `(line, module)` for every `crate::module` path in the code of `text`, grouped imports
/// (`crate::{a, b::c}`) giving one entry per group member.
fn crate_references(text: &str) -> Vec<(usize, String)> {
    let code = without_comments(text);
    let mut found = Vec::new();
    let mut rest = code.as_str();
    let mut offset = 0;
    while let Some(at) = rest.find("crate::") {
        let start = offset + at;
        let after = &code[start + "crate::".len()..];
        let preceded_by_word = code[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if !preceded_by_word {
            let line = code[..start].matches('\n').count() + 1;
            if let Some(group) = after.strip_prefix('{') {
                for module in group_members(group) {
                    found.push((line, module));
                }
            } else if let Some(module) = leading_ident(after) {
                found.push((line, module));
            }
        }
        offset = start + "crate::".len();
        rest = &code[offset..];
    }
    found
}

/// The first path segment of each member of a `{…}` group (text after the opening brace).
fn group_members(group: &str) -> Vec<String> {
    let mut members = Vec::new();
    let mut depth = 0;
    let mut member_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => member_start = true,
            c if member_start && !c.is_whitespace() => {
                member_start = false;
                members.extend(leading_ident(&group[i..]));
            }
            _ => {}
        }
    }
    members
}

fn leading_ident(text: &str) -> Option<String> {
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

/// `text` with `//` and `/* */` comments blanked (line breaks kept, so line numbers stay).
/// String literals are not parsed; a `//` inside one hides only the rest of its line.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut block_depth = 0;
    for line in text.lines() {
        let mut rest = line;
        loop {
            if block_depth > 0 {
                match (rest.find("/*"), rest.find("*/")) {
                    (Some(open), Some(close)) if open < close => {
                        block_depth += 1;
                        rest = &rest[open + 2..];
                    }
                    (_, Some(close)) => {
                        block_depth -= 1;
                        rest = &rest[close + 2..];
                    }
                    _ => break,
                }
            } else {
                match (rest.find("//"), rest.find("/*")) {
                    (Some(line_comment), block) if block.is_none_or(|b| line_comment < b) => {
                        out.push_str(&rest[..line_comment]);
                        break;
                    }
                    (_, Some(open)) => {
                        out.push_str(&rest[..open]);
                        block_depth += 1;
                        rest = &rest[open + 2..];
                    }
                    _ => {
                        out.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The extraction itself, on sources written with `CRATE` so this file names no module.
#[test]
fn references_are_found_in_every_form() {
    let source = "use CRATE::api::Sandbox;\n\
                  use CRATE::{client::{Client, ClientError}, text,\n    term::RawMode};\n\
                  // use CRATE::server::hidden;\n\
                  let x = CRATE::script::finish(y); /* CRATE::repl */\n\
                  pub(crate) fn f() {}\n\
                  macro_rules! m { () => { $CRATE::cli::x } }\n\
                  let a = other_crate::paths::x;";
    let found = crate_references(&source.replace("CRATE", "crate"));
    assert_eq!(
        found,
        [
            (1, "api".to_string()),
            (2, "client".to_string()),
            (2, "text".to_string()),
            (2, "term".to_string()),
            (5, "script".to_string()),
        ]
    );
}

#[test]
fn files_belong_to_their_top_level_module() {
    assert_eq!(
        top_level_module(Path::new("cli/mod.rs")).as_deref(),
        Some("cli")
    );
    assert_eq!(
        top_level_module(Path::new("server/images/blobs.rs")).as_deref(),
        Some("server")
    );
    assert_eq!(
        top_level_module(Path::new("paths.rs")).as_deref(),
        Some("paths")
    );
    assert_eq!(top_level_module(Path::new("lib.rs")), None);
}
