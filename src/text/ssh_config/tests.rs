use super::*;

const EXE: &str = "/usr/local/bin/langsmith";

fn block(name: &str, url: &str) -> String {
    let target = TunnelTarget::Remote {
        api_url: url.into(),
    };
    render_block(
        name,
        &proxy_command(EXE, name, &target),
        "/home/u/.ssh/known_hosts_sandboxes",
    )
}

#[test]
fn the_block_has_exactly_the_documented_lines() {
    assert_eq!(
        block("dev", "https://api.smith.langchain.com"),
        "# Added by: langsmith sandbox ssh-setup dev\n\
         Host sandbox-dev\n    \
         User root\n    \
         ProxyCommand '/usr/local/bin/langsmith' sandbox tunnel 'dev' --remote-port 22 --stdio \
         --api-url 'https://api.smith.langchain.com'\n    \
         UserKnownHostsFile '/home/u/.ssh/known_hosts_sandboxes'\n    \
         ForwardAgent yes\n"
    );
}

#[test]
fn local_backend_commands_name_the_state_dir_only_when_set() {
    let plain = proxy_command(EXE, "a", &TunnelTarget::Local { state_dir: None });
    assert_eq!(
        plain,
        "'/usr/local/bin/langsmith' sandbox tunnel 'a' --remote-port 22 --stdio"
    );
    let moved = proxy_command(
        EXE,
        "a",
        &TunnelTarget::Local {
            state_dir: Some("/srv/it's 100%".into()),
        },
    );
    assert_eq!(
        moved,
        "env LANGSMITH_STATE_DIR='/srv/it'\\''s 100%%' '/usr/local/bin/langsmith' sandbox \
         tunnel 'a' --remote-port 22 --stdio"
    );
}

#[test]
fn quoting_survives_single_quotes() {
    assert_eq!(posix_quote("it's"), r"'it'\''s'");
    assert_eq!(posix_quote(""), "''");
}

#[test]
fn a_missing_block_is_appended() {
    let b = block("dev", "u");
    assert_eq!(
        upsert_block("", "sandbox-dev", &b),
        (b.clone(), Outcome::Wrote)
    );
    let (text, outcome) = upsert_block("Host other\n    User x\n", "sandbox-dev", &b);
    assert_eq!(outcome, Outcome::Wrote);
    assert_eq!(text, format!("Host other\n    User x\n{b}"));
}

#[test]
fn a_file_without_a_trailing_newline_gets_one_before_the_block() {
    let b = block("dev", "u");
    let (text, outcome) = upsert_block("Host other\n    User x", "sandbox-dev", &b);
    assert_eq!(outcome, Outcome::Wrote);
    assert_eq!(text, format!("Host other\n    User x\n{b}"));
}

#[test]
fn the_same_block_is_left_unchanged() {
    let b = block("dev", "u");
    let text = format!("Host other\n    User x\n{b}\n");
    assert_eq!(
        upsert_block(&text, "sandbox-dev", &b),
        (text.clone(), Outcome::Unchanged)
    );
}

#[test]
fn a_changed_block_is_replaced_in_place_between_its_neighbours() {
    let old = block("dev", "old");
    let new = block("dev", "new");
    let before = "Host first\n    User a\n";
    let after = block("next", "u");
    let text = format!("{before}{old}{after}");
    let (out, outcome) = upsert_block(&text, "sandbox-dev", &new);
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(out, format!("{before}{new}{after}"));
    // Once more: now it is the same.
    assert_eq!(
        upsert_block(&out, "sandbox-dev", &new).1,
        Outcome::Unchanged
    );
}

#[test]
fn a_block_at_the_end_without_a_newline_is_replaced_and_ends_with_one() {
    let old = block("dev", "old");
    let new = block("dev", "new");
    let text = format!("Host first\n{}", old.trim_end());
    let (out, outcome) = upsert_block(&text, "sandbox-dev", &new);
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(out, format!("Host first\n{new}"));
}

#[test]
fn a_block_without_its_comment_is_still_found() {
    let new = block("dev", "new");
    let text = "Host sandbox-dev\n    User someone\nHost z\n";
    let (out, outcome) = upsert_block(text, "sandbox-dev", &new);
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(out, format!("{new}Host z\n"));
}

#[test]
fn another_sandbox_with_a_longer_name_is_not_mistaken_for_this_one() {
    let other = block("dev2", "u");
    let b = block("dev", "u");
    let (out, outcome) = upsert_block(&other, "sandbox-dev", &b);
    assert_eq!(outcome, Outcome::Wrote);
    assert_eq!(out, format!("{other}{b}"));
}

#[test]
fn known_hosts_lines_are_replaced_or_appended() {
    let a = upsert_known_host("", "sandbox-a", "ssh-ed25519 AAA1 root@x\n");
    assert_eq!(a, "sandbox-a ssh-ed25519 AAA1 root@x\n");
    let ab = upsert_known_host(&a, "sandbox-b", "ssh-ed25519 BBB");
    assert_eq!(
        ab,
        "sandbox-a ssh-ed25519 AAA1 root@x\nsandbox-b ssh-ed25519 BBB\n"
    );
    let replaced = upsert_known_host(&ab, "sandbox-a", "ssh-ed25519 AAA2");
    assert_eq!(
        replaced,
        "sandbox-a ssh-ed25519 AAA2\nsandbox-b ssh-ed25519 BBB\n"
    );
    let no_newline = upsert_known_host("other key", "sandbox-a", "k");
    assert_eq!(no_newline, "other key\nsandbox-a k\n");
}

#[test]
fn host_keys_from_a_sandbox_are_one_checked_line() {
    assert_eq!(
        parse_host_key("ssh-ed25519 AAAAC3Nza+/= root@box\n").unwrap(),
        "ssh-ed25519 AAAAC3Nza+/="
    );
    assert_eq!(
        parse_host_key("\n  ecdsa-sha2-nistp256 AAAA\nsecond line\n").unwrap(),
        "ecdsa-sha2-nistp256 AAAA"
    );
    for bad in [
        "",
        "ssh-ed25519",
        "ssh-ed25519 not*base64",
        "@cert-authority * ssh-ed25519 AAAA",
        "* ssh-ed25519 AAAA",
        "ssh-dss AAAA",
    ] {
        assert!(parse_host_key(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn only_plain_names_become_host_aliases() {
    for good in ["dev", "my-box.2", "a_b"] {
        check_alias_name(good).unwrap();
    }
    for bad in [
        "",
        "a b",
        "a\nHost *",
        "*",
        "x,y",
        "!x",
        "-oProxyCommand",
        "a/b",
    ] {
        assert!(check_alias_name(bad).is_err(), "{bad:?} was accepted");
    }
}
