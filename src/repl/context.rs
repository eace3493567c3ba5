//! Where the cursor is, as far as completion cares: in a word (maybe after `receiver.`), or
//! inside the string literal that names a sandbox or snapshot (`sandbox("my▮`). Pure text
//! analysis of the line before the cursor; no engine, no network.

/// What kind of name a string argument holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Sandbox,
    Snapshot,
}

/// Functions whose first argument is a sandbox name.
const SANDBOX_NAME_FNS: &[&str] = &[
    "sandbox",
    "sandbox_get",
    "sandbox_resolve",
    "sandbox_update",
    "sandbox_delete",
    "sandbox_start",
    "sandbox_stop",
    "sandbox_wait",
    "snapshot_capture",
];

/// Functions whose first argument is a snapshot id.
const SNAPSHOT_ID_FNS: &[&str] = &[
    "snapshot",
    "snapshot_get",
    "snapshot_wait",
    "snapshot_delete",
];

/// The completion context at the cursor.
#[derive(Debug, PartialEq, Eq)]
pub enum Spot<'a> {
    /// An identifier being typed from byte `start`; `receiver` is `Some` after a `.`:
    /// the variable's name, or `None` inside when the receiver is an expression.
    Word {
        start: usize,
        prefix: &'a str,
        receiver: Option<Option<&'a str>>,
    },
    /// Inside a string literal (from byte `start`, after the quote) that names a sandbox or
    /// snapshot.
    Name {
        start: usize,
        prefix: &'a str,
        kind: NameKind,
    },
    Nothing,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The byte index of the opening `"` of the string literal the cursor is in, if any.
fn open_string(before: &str) -> Option<usize> {
    let mut open = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        match (open, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(_), '"') => open = None,
            (None, '"') => open = Some(i),
            _ => {}
        }
    }
    open
}

/// The identifier that ends right before byte `end` (after skipping spaces), if any.
fn ident_before(text: &str, end: usize) -> Option<(usize, &str)> {
    let trimmed = text[..end].trim_end();
    let start = trimmed
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident_char(*c))
        .last()
        .map(|(i, _)| i)?;
    Some((start, &trimmed[start..]))
}

/// What a string literal opened at `quote` names, judged by what precedes it:
/// `fn_name(` or `snapshot_id:`.
fn string_kind(before: &str, quote: usize) -> Option<NameKind> {
    let head = before[..quote].trim_end();
    if let Some(rest) = head.strip_suffix('(') {
        let (_, name) = ident_before(rest, rest.len())?;
        if SANDBOX_NAME_FNS.contains(&name) {
            return Some(NameKind::Sandbox);
        }
        if SNAPSHOT_ID_FNS.contains(&name) {
            return Some(NameKind::Snapshot);
        }
        return None;
    }
    let rest = head.strip_suffix(':')?;
    match ident_before(rest, rest.len())?.1 {
        "snapshot_id" => Some(NameKind::Snapshot),
        _ => None,
    }
}

/// Analyse `line` up to the cursor at byte `pos`.
pub fn spot(line: &str, pos: usize) -> Spot<'_> {
    let before = &line[..pos];
    if let Some(quote) = open_string(before) {
        return match string_kind(before, quote) {
            Some(kind) => Spot::Name {
                start: quote + 1,
                prefix: &before[quote + 1..],
                kind,
            },
            None => Spot::Nothing,
        };
    }
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident_char(*c))
        .last()
        .map_or(pos, |(i, _)| i);
    let prefix = &before[start..];
    if prefix.starts_with(|c: char| c.is_ascii_digit()) {
        return Spot::Nothing;
    }
    let receiver = before[..start].strip_suffix('.').map(|head| {
        // A plain variable (not itself a member of something) can be looked up by name.
        match ident_before(head, head.len()) {
            Some((s, name)) if s + name.len() == head.len() && !head[..s].ends_with('.') => {
                Some(name)
            }
            _ => None,
        }
    });
    Spot::Word {
        start,
        prefix,
        receiver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(line: &str) -> Spot<'_> {
        spot(line, line.len())
    }

    #[test]
    fn a_method_after_a_variable_knows_its_receiver() {
        assert_eq!(
            at_end("let r = sb.ex"),
            Spot::Word {
                start: 11,
                prefix: "ex",
                receiver: Some(Some("sb"))
            }
        );
        assert_eq!(
            at_end("sandbox_get(\"a\").wa"),
            Spot::Word {
                start: 17,
                prefix: "wa",
                receiver: Some(None)
            }
        );
        assert_eq!(
            at_end("a.b.c"),
            Spot::Word {
                start: 4,
                prefix: "c",
                receiver: Some(None)
            }
        );
    }

    #[test]
    fn a_word_at_the_start_has_no_receiver() {
        assert_eq!(
            at_end("sandbox_"),
            Spot::Word {
                start: 0,
                prefix: "sandbox_",
                receiver: None
            }
        );
        assert_eq!(at_end("x = 1.5"), Spot::Nothing);
    }

    #[test]
    fn names_inside_string_arguments() {
        assert_eq!(
            at_end("let s = sandbox(\"my"),
            Spot::Name {
                start: 17,
                prefix: "my",
                kind: NameKind::Sandbox
            }
        );
        assert_eq!(
            at_end("snapshot_get( \""),
            Spot::Name {
                start: 15,
                prefix: "",
                kind: NameKind::Snapshot
            }
        );
        assert_eq!(
            at_end("sandbox_create(#{name: \"x\", snapshot_id: \"ab"),
            Spot::Name {
                start: 42,
                prefix: "ab",
                kind: NameKind::Snapshot
            }
        );
        assert_eq!(at_end("print(\"sand"), Spot::Nothing);
        assert!(matches!(
            at_end("sandbox(\"a\\\"b\").x"),
            Spot::Word { prefix: "x", .. }
        ));
    }
}
