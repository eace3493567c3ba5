//! The module graph stays one-way: every path in `src/` that reaches the crate root and names a
//! top-level module (`crate::<module>`, `$crate::<module>` in macros, and `super::` chains that
//! climb out of their top-level module), in `use` lines, grouped `use crate::{a, b::c}` forms
//! and inline paths, test code included, must be an edge of [`ALLOWED`]. Leaves know nothing
//! of the layers above them, so a lower layer never needs a change (or a rebuild of its tests)
//! when a higher one grows.
//!
//! Only code counts: comments (a doc link is not a dependency) and the contents of string and
//! char literals are skipped by the scanner in [`scan`].

mod scan;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use. The crate root (`lib.rs`, `main.rs`)
/// wires them together and is not listed.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("api", &[]),
    ("paths", &[]),
    ("phases", &[]),
    ("shared_memory_child", &[]),
    ("text", &[]),
    ("term", &[]),
    ("ws_pipe", &[]),
    ("ws_upgrade", &[]),
    // The local backend and what runs inside a sandbox.
    ("runtime", &["api", "phases", "shared_memory_child"]),
    ("proxy", &["api"]),
    (
        "agent",
        &["api", "shared_memory_child", "ws_pipe", "ws_upgrade"],
    ),
    (
        "server",
        &["api", "proxy", "runtime", "paths", "phases", "ws_upgrade"],
    ),
    // The client side, bottom to top.
    ("client", &["api", "paths", "term", "ws_pipe"]),
    ("script", &["client", "api", "text", "term", "paths"]),
    (
        "repl",
        &["script", "client", "api", "text", "term", "paths"],
    ),
    (
        "cli",
        &[
            "repl",
            "script",
            "client",
            "server",
            "proxy",
            "runtime",
            "agent",
            "api",
            "paths",
            "phases",
            "shared_memory_child",
            "text",
            "term",
            "ws_pipe",
            "ws_upgrade",
        ],
    ),
    // The crate root's tests: this file and its scanner.
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
        let module = module_path(relative);
        let Some(from) = module.first().cloned() else {
            continue; // the crate root
        };
        let Some(allowed) = allowed(&from) else {
            unknown.insert(from);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let references = scan::references(&text, &module)
            .unwrap_or_else(|why| panic!("src/{}: {why}", relative.display()));
        for (line, to) in references {
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

/// The module a file under `src/` defines, by Rust's default file layout: `paths.rs` →
/// `[paths]`, `cli/mod.rs` → `[cli]`, `server/images/blobs.rs` → `[server, images, blobs]`;
/// empty for the crate root's files (`lib.rs`, `main.rs`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut module: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if module.last().is_some_and(|last| last == "mod") || module == ["lib"] || module == ["main"] {
        module.pop();
    }
    module
}

#[test]
fn files_define_the_module_of_their_path() {
    let module = |path: &str| module_path(Path::new(path));
    assert_eq!(module("cli/mod.rs"), ["cli"]);
    assert_eq!(module("paths.rs"), ["paths"]);
    assert_eq!(
        module("server/images/blobs.rs"),
        ["server", "images", "blobs"]
    );
    assert_eq!(module("agent/tests/mod.rs"), ["agent", "tests"]);
    assert_eq!(
        module("server/images/unpack/tests.rs"),
        ["server", "images", "unpack", "tests"]
    );
    assert!(module("lib.rs").is_empty());
    assert!(module("main.rs").is_empty());
}
