//! Which top-level modules a source file refers to, read from its code alone.
//!
//! Three passes: [`code_only`] blanks comments and the contents of every literal (so neither a
//! doc link nor a string such as `"**/*.py"` or `"crate::cli"` counts, and a `/*` inside a
//! string opens nothing); [`tokens`] splits what is left; [`references`] walks the tokens and
//! resolves each path that starts at `crate::`, `$crate::`, `self::` or `super::` against the
//! file's module path, reporting the top-level module it reaches.
//!
//! Inline `mod name { … }` blocks count as one level deeper, so `super::` inside a file's
//! `mod tests { … }` stays in the file's module. Not followed: `#[path]` attributes,
//! `include!` and modules made by macros (the crate uses none of them).

/// `(line, top-level module)` for every path in `text` that reaches the crate root and names
/// what is under it, `module` being the file's module path (`["script", "console"]` for
/// `src/script/console.rs`). A glob of the crate root (`use super::*` in a top-level file)
/// is reported as `*`: it imports every module at once.
///
/// Fails when the braces left in the code do not balance: the sign of a literal or comment
/// read wrongly, which could hide references.
pub(super) fn references(text: &str, module: &[String]) -> Result<Vec<(usize, String)>, String> {
    let code = code_only(text);
    let mut walk = Walk {
        tokens: tokens(&code),
        found: Vec::new(),
    };
    walk.items(module)?;
    Ok(walk.found)
}

/// `text` with comments and the contents of string, char and byte literals (delimiters
/// included) replaced by spaces; line breaks are kept, so line numbers stay.
pub(super) fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let end = match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => block_comment_end(bytes, i),
            b'"' => string_end(bytes, i + 1),
            b'\'' => match char_literal_end(text, i) {
                Some(end) => end,
                None => i + 1, // a lifetime or a label: `'a`
            },
            c if is_ident_byte(c) => {
                let ident_end = (i..bytes.len())
                    .find(|&j| !is_ident_byte(bytes[j]))
                    .unwrap_or(bytes.len());
                match prefixed_literal_end(text, &text[i..ident_end], ident_end) {
                    Some(end) => end,
                    None => {
                        i = ident_end;
                        continue;
                    }
                }
            }
            _ => {
                i += 1;
                continue;
            }
        };
        for byte in &mut out[i..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
        i = end;
    }
    String::from_utf8(out).expect("only whole characters are blanked")
}

fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || !byte.is_ascii()
}

/// Where the line that `from` is on ends (its line break is not part of it).
fn line_end(bytes: &[u8], from: usize) -> usize {
    (from..bytes.len())
        .find(|&j| bytes[j] == b'\n')
        .unwrap_or(bytes.len())
}

/// Just past the `*/` that closes the block comment opened at `from`; they nest.
fn block_comment_end(bytes: &[u8], from: usize) -> usize {
    let mut depth = 0;
    let mut i = from;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => depth += 1,
            (b'*', b'/') => depth -= 1,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
        if depth == 0 {
            return i;
        }
    }
    bytes.len()
}

/// Just past the `"` closing a string whose contents start at `from`; `\` escapes one byte.
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Just past a char literal starting with the `'` at `from` (`'x'`, `'\n'`, `'\''`,
/// `'\u{1F600}'`), or `None` when that quote starts a lifetime or a label instead: one
/// character not followed by a closing quote, as in `'a>` or `'outer:`.
fn char_literal_end(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(from + 1) == Some(&b'\\') {
        let close = (from + 3..bytes.len()).find(|&j| bytes[j] == b'\'')?;
        return Some(close + 1);
    }
    let first = text[from + 1..].chars().next()?;
    let close = from + 1 + first.len_utf8();
    (bytes.get(close) == Some(&b'\'')).then_some(close + 1)
}

/// Just past a literal whose prefix is `prefix` (ending at `at`): `b"…"`, `c"…"`, `b'…'` and
/// the raw strings `r"…"`, `r#"…"#`, `br"…"`, `cr"…"`; `None` when `prefix` is just a name
/// (also for a raw identifier such as `r#type`).
fn prefixed_literal_end(text: &str, prefix: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    match (prefix, bytes.get(at)) {
        ("b" | "c", Some(b'"')) => Some(string_end(bytes, at + 1)),
        ("b", Some(b'\'')) => char_literal_end(text, at),
        ("r" | "br" | "cr", Some(b'"' | b'#')) => {
            let hashes = bytes[at..].iter().take_while(|&&b| b == b'#').count();
            if bytes.get(at + hashes) != Some(&b'"') {
                return None;
            }
            let closing = format!("\"{}", "#".repeat(hashes));
            let contents = at + hashes + 1;
            let end = text[contents..]
                .find(&closing)
                .map_or(text.len(), |close| contents + close + closing.len());
            Some(end)
        }
        _ => None,
    }
}

/// One token of blanked code and the line it is on.
struct Token<'a> {
    text: &'a str,
    line: usize,
}

/// Words (names, keywords, numbers), `::`, and every other character on its own.
fn tokens(code: &str) -> Vec<Token<'_>> {
    let bytes = code.as_bytes();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let len = match bytes[i] {
            b'\n' => {
                line += 1;
                i += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            c if is_ident_byte(c) => bytes[i..].iter().take_while(|&&b| is_ident_byte(b)).count(),
            b':' if bytes.get(i + 1) == Some(&b':') => 2,
            _ => 1,
        };
        tokens.push(Token {
            text: &code[i..i + len],
            line,
        });
        i += len;
    }
    tokens
}

/// The walk over a file's tokens, collecting what reaches the crate root.
struct Walk<'a> {
    tokens: Vec<Token<'a>>,
    found: Vec<(usize, String)>,
}

impl Walk<'_> {
    fn text(&self, at: usize) -> &str {
        self.tokens.get(at).map_or("", |t| t.text)
    }

    /// The whole file: tracks inline `mod name {` blocks (with the brace depth each opened
    /// at) and resolves every path that starts where a path can start.
    fn items(&mut self, file_module: &[String]) -> Result<(), String> {
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0;
        let mut i = 0;
        while i < self.tokens.len() {
            let token = self.text(i);
            let starts_path = matches!(token, "crate" | "super" | "self")
                && self.text(i + 1) == "::"
                && (i == 0 || self.text(i - 1) != "::");
            if starts_path {
                let here = file_module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(name, _)| name.clone()))
                    .collect();
                i = self.path(i, Some(here));
                continue;
            }
            match token {
                "mod" if self.text(i + 2) == "{" => {
                    inline.push((self.text(i + 1).to_string(), depth));
                }
                "{" => depth += 1,
                "}" => {
                    depth = depth.checked_sub(1).ok_or_else(|| {
                        format!("line {}: a `}}` closes nothing", self.tokens[i].line)
                    })?;
                    if inline
                        .last()
                        .is_some_and(|(_, opened_at)| *opened_at == depth)
                    {
                        inline.pop();
                    }
                }
                _ => {}
            }
            i += 1;
        }
        match depth {
            0 => Ok(()),
            open => Err(format!("{open} braces are never closed")),
        }
    }

    /// Resolves the path starting at token `at` from module `here` (`None` once the path has
    /// settled below the crate root or been reported); returns the index just past it.
    fn path(&mut self, mut at: usize, mut here: Option<Vec<String>>) -> usize {
        loop {
            if self.text(at) == "{" {
                at = self.group(at + 1, &here);
            } else {
                let segment = self.text(at).to_string();
                here = match (here, segment.as_str()) {
                    (Some(_), "crate") => Some(Vec::new()),
                    (Some(mut module), "super") => {
                        module.pop(); // above the root is a compile error: stay there
                        Some(module)
                    }
                    (Some(module), "self") => Some(module),
                    (Some(module), name) if module.is_empty() => {
                        let is_name = name.bytes().next().is_some_and(is_ident_byte);
                        if is_name || name == "*" {
                            self.found.push((self.tokens[at].line, segment));
                        }
                        None
                    }
                    _ => None,
                };
                at += 1;
            }
            if self.text(at) != "::" {
                return at;
            }
            at += 1;
        }
    }

    /// The members of a `{…}` group whose first member starts at `at`, each resolved from
    /// `here`; returns the index just past the closing brace.
    fn group(&mut self, mut at: usize, here: &Option<Vec<String>>) -> usize {
        while at < self.tokens.len() {
            if self.text(at) == "}" {
                return at + 1;
            }
            at = self.path(at, here.clone());
            // Past an alias (`x as y`) to the comma or the closing brace.
            while at < self.tokens.len() && !matches!(self.text(at), "," | "}") {
                at += 1;
            }
            if self.text(at) == "," {
                at += 1;
            }
        }
        at
    }
}

#[cfg(test)]
mod tests;
