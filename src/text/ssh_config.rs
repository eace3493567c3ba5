//! The OpenSSH client files `sandbox ssh-setup` maintains, as pure text transformations: the
//! `Host sandbox-<name>` block of `~/.ssh/config` (rendered, then inserted or replaced in place,
//! never duplicated) and the `sandbox-<name> <host key>` line of `~/.ssh/known_hosts_sandboxes`.
//!
//! The block follows the LangSmith CLI's (4-space indent, `# Added by:` comment, `User root`,
//! `ProxyCommand`, `UserKnownHostsFile`, `ForwardAgent yes`) with every variable value in POSIX
//! single quotes, as its later versions write it; the ProxyCommand never carries an API key
//! (the caller keeps the key where the tunnel finds it at ssh time).

/// The ssh config alias of a sandbox.
pub fn alias(name: &str) -> String {
    format!("sandbox-{name}")
}

/// One word in POSIX single quotes (`'` → `'\''`); OpenSSH's own config tokenizer reads the
/// same quoting in `UserKnownHostsFile`.
pub fn posix_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// OpenSSH expands `%` tokens in `ProxyCommand` and `UserKnownHostsFile`; a literal `%` in a
/// path or URL must be doubled.
fn escape_percent(text: &str) -> String {
    text.replace('%', "%%")
}

/// Where the tunnel of the ProxyCommand finds its endpoint at ssh time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelTarget {
    /// A remote endpoint, named with `--api-url` (its key is looked up by the tunnel).
    Remote { api_url: String },
    /// The local backend, with `LANGSMITH_STATE_DIR` when one was set.
    Local { state_dir: Option<String> },
}

/// `[env LANGSMITH_STATE_DIR='…'] '<exe>' sandbox tunnel '<name>' --remote-port 22 --stdio
/// [--api-url '<url>']`: the command OpenSSH runs (through the user's shell) to reach port 22.
pub fn proxy_command(exe: &str, name: &str, target: &TunnelTarget) -> String {
    let mut words = Vec::new();
    if let TunnelTarget::Local {
        state_dir: Some(dir),
    } = target
    {
        words.push("env".to_string());
        words.push(format!("LANGSMITH_STATE_DIR={}", posix_quote(dir)));
    }
    words.push(posix_quote(exe));
    words.extend(["sandbox", "tunnel"].map(String::from));
    words.push(posix_quote(name));
    words.extend(["--remote-port", "22", "--stdio"].map(String::from));
    if let TunnelTarget::Remote { api_url } = target {
        words.push("--api-url".into());
        words.push(posix_quote(api_url));
    }
    escape_percent(&words.join(" "))
}

/// The config block for sandbox `name` (ends with a newline).
pub fn render_block(name: &str, proxy_command: &str, known_hosts: &str) -> String {
    format!(
        "# Added by: langsmith sandbox ssh-setup {name}\n\
         Host {alias}\n    \
         User root\n    \
         ProxyCommand {proxy_command}\n    \
         UserKnownHostsFile {known}\n    \
         ForwardAgent yes\n",
        alias = alias(name),
        known = escape_percent(&posix_quote(known_hosts)),
    )
}

/// What [`upsert_block`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No block for the alias: appended.
    Wrote,
    /// A different block for the alias: replaced in place.
    Updated,
    /// The same block already there: nothing to write.
    Unchanged,
}

/// The line range `[start, end)` of the existing block for `alias`: from its `Host` line (or
/// the `# Added by:` comment just above it) to the next `Host ` or `# Added by:` line or EOF.
fn find_block(lines: &[&str], alias: &str) -> Option<(usize, usize)> {
    let host = format!("Host {alias}");
    let at = lines.iter().position(|l| l.trim() == host)?;
    let start = if at > 0 && lines[at - 1].trim().starts_with("# Added by:") {
        at - 1
    } else {
        at
    };
    let end = lines[at + 1..]
        .iter()
        .position(|l| {
            let t = l.trim();
            t.starts_with("Host ") || t.starts_with("# Added by:")
        })
        .map_or(lines.len(), |i| at + 1 + i);
    Some((start, end))
}

/// `text` (a whole `~/.ssh/config`) with `block` for `alias` inserted or replacing the one
/// there.
pub fn upsert_block(text: &str, alias: &str, block: &str) -> (String, Outcome) {
    let ends_with_newline = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        body.split('\n').collect()
    };
    let Some((start, end)) = find_block(&lines, alias) else {
        let mut out = text.to_string();
        if !out.is_empty() && !ends_with_newline {
            out.push('\n');
        }
        out.push_str(block);
        return (out, Outcome::Wrote);
    };
    if lines[start..end].join("\n").trim() == block.trim() {
        return (text.to_string(), Outcome::Unchanged);
    }
    let mut out: Vec<&str> = lines[..start].to_vec();
    out.extend(block.strip_suffix('\n').unwrap_or(block).split('\n'));
    out.extend(&lines[end..]);
    let mut text_out = out.join("\n");
    if ends_with_newline || end == lines.len() {
        text_out.push('\n');
    }
    (text_out, Outcome::Updated)
}

/// Check that `name` can stand in a `Host` line and a known-hosts entry as one word: only
/// `[A-Za-z0-9._-]`. Anything else (spaces, newlines, `*`, `!`) would let a name add
/// directives or patterns to the user's ssh config.
pub fn check_alias_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sandbox name {name:?} cannot be used as an ssh host alias: \
             only letters, digits, '.', '_' and '-' are allowed"
        ))
    }
}

/// Key types a sandbox's sshd may present.
const HOST_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// The `<type> <base64>` of a host public key as the sandbox printed it (first line, comment
/// dropped), or an error when it is not one: the text comes from inside the sandbox and must
/// not add lines, patterns or options to the user's known-hosts file.
pub fn parse_host_key(text: &str) -> Result<String, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut words = line.split_ascii_whitespace();
    let (kind, blob) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let base64 = !blob.is_empty()
        && blob
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='));
    if HOST_KEY_TYPES.contains(&kind) && base64 {
        Ok(format!("{kind} {blob}"))
    } else {
        Err(format!(
            "the sandbox's ssh host key is not a public key line (expected one of {} followed by base64)",
            HOST_KEY_TYPES.join(", ")
        ))
    }
}

/// `text` (a whole known-hosts file) with `<alias> <host_key>` replacing the line that starts
/// with `<alias> `, or appended.
pub fn upsert_known_host(text: &str, alias: &str, host_key: &str) -> String {
    let entry = format!("{alias} {}", host_key.trim());
    let prefix = format!("{alias} ");
    if text.lines().any(|l| l.starts_with(&prefix)) {
        let mut out: Vec<&str> = Vec::new();
        for line in text.lines() {
            out.push(if line.starts_with(&prefix) {
                &entry
            } else {
                line
            });
        }
        let mut joined = out.join("\n");
        joined.push('\n');
        return joined;
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&entry);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests;
