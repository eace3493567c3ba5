//! What the API takes as a host name (in `access_control` entries, secret hosts and DNS
//! questions): dot-separated labels of letters, digits, `-` and `_`, none empty or longer
//! than 63 bytes, at most 253 bytes in all.

pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_labels_of_host_characters() {
        for good in [
            "pypi.org",
            "a-b.c_d.test",
            "x",
            &format!("{}.test", "a".repeat(63)),
        ] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "a b",
            "a.é",
            &format!("{}.test", "a".repeat(64)),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(!is_valid_name(&format!("{}a", "a.".repeat(127))));
    }
}
