//! Embeds every built-in subcommand script: each `scripts/sandbox/**/*.rhai` and
//! `scripts/secrets/**/*.rhai` becomes one entry `("sandbox/…", source)` of the table
//! `script::builtins::BUILTINS`, so adding a built-in subcommand is adding its file.

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let scripts = root.join("scripts");
    let mut found = Vec::new();
    // The command-line roots whose subcommands are scripts (`cli::command_tree::SCRIPT_ROOTS`).
    for root in ["sandbox", "secrets"] {
        println!("cargo:rerun-if-changed=scripts/{root}");
        collect(&scripts.join(root), &mut found);
    }
    found.sort();
    let mut table = String::from("pub const BUILTINS: &[(&str, &str)] = &[\n");
    for path in &found {
        let name = path
            .strip_prefix(&scripts)
            .expect("found under scripts/")
            .with_extension("");
        let name = name.to_str().expect("script paths are UTF-8");
        table.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.to_str().expect("script paths are UTF-8")
        ));
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("builtins.rs"), table).expect("writing the built-ins table");
}

/// Every `.rhai` file under `dir`, recursively (directories are subcommand groups).
fn collect(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("reading the scripts").path();
        if path.is_dir() {
            collect(&path, found);
        } else if path.extension().is_some_and(|e| e == "rhai") {
            println!("cargo:rerun-if-changed={}", path.display());
            found.push(path);
        }
    }
}
