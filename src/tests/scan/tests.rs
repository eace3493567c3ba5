//! The scanner on the inputs that fooled the line-based one: delimiters inside literals,
//! lifetimes next to char literals, nested comments, `$crate` and `super::` chains.

use super::{code_only, references};

/// The references of `source` as written in `module`, as `(line, module)` pairs.
fn found(module: &[&str], source: &str) -> Vec<(usize, String)> {
    let module: Vec<String> = module.iter().map(|m| m.to_string()).collect();
    references(source, &module).unwrap()
}

fn expect(pairs: &[(usize, &str)]) -> Vec<(usize, String)> {
    pairs.iter().map(|&(l, m)| (l, m.to_string())).collect()
}

#[test]
fn every_form_of_a_crate_path_is_found() {
    let source = "use crate::api::Sandbox;\n\
                  use crate::{client::{Client, ClientError}, text as t,\n    term::RawMode};\n\
                  let x = crate::script::finish(y);\n\
                  pub(crate) fn f() {}\n\
                  macro_rules! m { () => { $crate::cli::x } }\n\
                  let a = other_crate::paths::x;";
    assert_eq!(
        found(&["x"], source),
        expect(&[
            (1, "api"),
            (2, "client"),
            (2, "text"),
            (3, "term"),
            (4, "script"),
            (6, "cli"),
        ])
    );
}

#[test]
fn a_comment_opener_inside_a_string_hides_nothing() {
    let source = "let pattern = \"**/*.py\"; crate::server::x();";
    assert_eq!(
        found(&["agent", "search"], source),
        expect(&[(1, "server")])
    );
}

#[test]
fn literal_contents_are_not_references() {
    let source = "let a = \"crate::cli\";\n\
                  let b = \"escaped \\\" crate::cli\";\n\
                  let c = b\"crate::cli\";\n\
                  let d = c\"crate::cli\";\n\
                  let e = '\"'; crate::text::x();";
    assert_eq!(found(&["x"], source), expect(&[(5, "text")]));
}

#[test]
fn raw_strings_end_at_their_own_delimiter() {
    let source = r###"let a = r#"a "quoted" crate::cli /* "#; crate::api::x();
let b = r"\"; crate::term::y();
let c = br##"crate::cli "# still inside"##;
let r#type = 1; crate::paths::z();"###;
    assert_eq!(
        found(&["x"], source),
        expect(&[(1, "api"), (2, "term"), (4, "paths")])
    );
}

#[test]
fn lifetimes_and_labels_are_not_char_literals() {
    let source = "fn f<'a>(x: &'a str) -> &'a str { crate::api::y(x) }\n\
                  'outer: loop { break 'outer; } crate::text::z();\n\
                  let quote = '\\''; let brace = '{'; let c = b'\"'; crate::term::w();\n\
                  let u = '\\u{1F600}'; let e = 'é'; crate::paths::v();";
    assert_eq!(
        found(&["x"], source),
        expect(&[(1, "api"), (2, "text"), (3, "term"), (4, "paths")])
    );
}

#[test]
fn comments_hide_paths_and_block_comments_nest() {
    let source = "/* outer /* inner */ crate::cli::hidden */ crate::api::x();\n\
                  /// [`crate::cli`]\n\
                  // an unclosed \" in a comment\n\
                  crate::text::y();";
    assert_eq!(found(&["x"], source), expect(&[(1, "api"), (4, "text")]));
    assert_eq!(code_only("a /* b */ c\n// d\ne"), "a         c\n    \ne");
}

#[test]
fn braces_left_unbalanced_are_an_error() {
    let module = ["x".to_string()];
    assert!(references("fn f() { \"}\"; '{'; }", &module).is_ok());
    assert!(references("fn f() { /* } */", &module).is_err());
    assert!(references("}", &module).is_err());
}

#[test]
fn super_chains_that_reach_the_root_name_a_top_level_module() {
    let depth_two = ["script", "console"];
    assert_eq!(
        found(&depth_two, "use super::super::cli::X;"),
        expect(&[(1, "cli")])
    );
    assert_eq!(found(&depth_two, "use super::bridge::X;"), expect(&[]));
    assert_eq!(
        found(&["script"], "use super::cli::X;"),
        expect(&[(1, "cli")])
    );
    assert_eq!(found(&["text"], "use super::*;"), expect(&[(1, "*")]));
    assert_eq!(
        found(&depth_two, "use super::{bridge, super::repl::Y};"),
        expect(&[(1, "repl")])
    );
    assert_eq!(
        found(&depth_two, "use self::super::super::api;"),
        expect(&[(1, "api")])
    );
    assert_eq!(found(&depth_two, "pub(super) fn f() {}"), expect(&[]));
}

#[test]
fn inline_modules_are_one_level_deeper() {
    let source = "mod tests {\n\
                  \x20   use super::super::bridge::X;\n\
                  \x20   fn f() { let brace = '}'; }\n\
                  \x20   use super::super::super::repl::Y;\n\
                  }\n\
                  use super::super::cli::Z;";
    assert_eq!(
        found(&["script", "console"], source),
        expect(&[(4, "repl"), (6, "cli")])
    );
}
