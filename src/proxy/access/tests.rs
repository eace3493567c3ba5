use serde_json::json;

use super::*;

fn control(access: Value) -> AccessControl {
    AccessControl::from_proxy_config(Some(&json!({ "access_control": access }))).unwrap()
}

fn host(ac: &AccessControl, name: &str, port: u16) -> bool {
    ac.decide(Destination::Host(name), port).allowed
}

fn ip(ac: &AccessControl, addr: &str, port: u16) -> bool {
    ac.decide(Destination::Ip(addr.parse().unwrap()), port)
        .allowed
}

#[test]
fn no_access_control_allows_everything() {
    for config in [
        None,
        Some(json!(null)),
        Some(json!({})),
        Some(json!({"access_control": null})),
        Some(json!({"access_control": {}})),
        Some(json!({"access_control": {"allow_list": [], "deny_list": []}})),
    ] {
        let ac = AccessControl::from_proxy_config(config.as_ref()).unwrap();
        assert!(ac.is_open());
        assert_eq!(
            ac.decide(Destination::Host("any.test"), 22),
            Verdict {
                allowed: true,
                rule: "no access_control".into()
            }
        );
    }
}

#[test]
fn every_entry_form_matches_as_documented() {
    let ac = control(json!({"allow_list": [
        "exact.test",
        "port.test:8443",
        "*.sub.test",
        "*.web.test:443",
        "~^api[0-9]+\\.regex\\.test$",
        "192.0.2.7",
        "192.0.2.8:80",
        "[2001:db8::1]:80",
        "2001:db8::2",
        "[2001:db8::3]",
        "198.51.100.0/24",
        "2001:db8:f::/48",
        "*.dot.test.",
    ]}));
    assert!(host(&ac, "exact.test", 1) && host(&ac, "EXACT.test.", 65535));
    assert!(!host(&ac, "sub.exact.test", 80));
    assert!(host(&ac, "port.test", 8443) && !host(&ac, "port.test", 443));
    assert!(host(&ac, "a.sub.test", 22) && host(&ac, "a.b.sub.test", 22));
    assert!(
        !host(&ac, "sub.test", 22),
        "a wildcard never matches the apex"
    );
    assert!(!host(&ac, "xsub.test", 22));
    assert!(host(&ac, "www.web.test", 443) && !host(&ac, "www.web.test", 80));
    assert!(host(&ac, "api12.regex.test", 9000) && !host(&ac, "api.regex.test", 9000));
    assert!(ip(&ac, "192.0.2.7", 80) && ip(&ac, "192.0.2.8", 80) && !ip(&ac, "192.0.2.8", 81));
    assert!(ip(&ac, "2001:db8::1", 80) && !ip(&ac, "2001:db8::1", 443));
    assert!(ip(&ac, "2001:db8::2", 80));
    assert!(ip(&ac, "2001:db8::3", 1) && ip(&ac, "2001:db8::3", 65535));
    assert!(ip(&ac, "2001:db8:f::9", 22) && !ip(&ac, "2001:db8:e::9", 22));
    assert!(host(&ac, "a.dot.test", 1) && host(&ac, "A.DOT.TEST.", 1));
    assert!(!host(&ac, "dot.test", 1));
    assert!(ip(&ac, "198.51.100.200", 80) && !ip(&ac, "198.51.101.1", 80));
    assert!(
        ip(&ac, "::ffff:192.0.2.7", 80),
        "mapped IPv4 counts as IPv4"
    );
    // Names and IPs never match each other's entries.
    assert!(!host(&ac, "192.0.2.7", 80));
    assert!(!ip(&ac, "192.0.2.9", 80));
    assert_eq!(
        ac.decide(Destination::Host("a.sub.test"), 1).rule,
        "allow_list: *.sub.test"
    );
    assert_eq!(
        ac.decide(Destination::Host("other.test"), 1),
        Verdict {
            allowed: false,
            rule: "not in allow_list".into()
        }
    );
}

#[test]
fn star_forms_cover_names_only() {
    let ac = control(json!({"allow_list": ["*:80", "*:443"]}));
    assert!(host(&ac, "any.test", 443) && host(&ac, "any.test", 80));
    assert!(!host(&ac, "any.test", 22));
    assert!(!ip(&ac, "192.0.2.1", 80), "'*' does not cover literal IPs");
    let ac = control(json!({"allow_list": ["*"]}));
    assert!(host(&ac, "x.test", 5432));
}

#[test]
fn a_deny_list_blocks_only_what_it_lists() {
    let ac = control(json!({"allow_list": [], "deny_list": ["evil.test", "*.ads.test:443"]}));
    assert_eq!(
        ac.decide(Destination::Host("evil.test"), 443),
        Verdict {
            allowed: false,
            rule: "deny_list: evil.test".into()
        }
    );
    assert!(!host(&ac, "x.ads.test", 443) && host(&ac, "x.ads.test", 80));
    assert_eq!(
        ac.decide(Destination::Host("good.test"), 22).rule,
        "not in deny_list"
    );
}

#[test]
fn invalid_entries_name_the_entry_and_its_field() {
    for (entry, why) in [
        ("example.com:abc", "port must be"),
        ("example.com:99999", "port must be"),
        ("example.com:0", "port must be"),
        ("10.0.0.0/8:443", "a range must be"),
        ("10.0.0.0/33", "a range must be"),
        ("fd00::/8:443", "a range must be"),
        ("a*b.com", "not a host name"),
        ("*.", "not a host name"),
        ("*.*.com", "not a host name"),
        ("foo.*", "not a host name"),
        ("foo bar.com", "not a host name"),
        ("bad!.com", "not a host name"),
        (".lead.com", "not a host name"),
        ("foo..com", "not a host name"),
        ("", "may not be empty"),
        (" spaced.com", "may not be empty"),
        ("~(unclosed", "not a valid regular expression"),
        ("[::1", "closing"),
        ("[::1]x", "expected ':PORT'"),
        ("[nope]:80", "not an IPv6"),
    ] {
        let err = AccessControl::from_proxy_config(Some(
            &json!({"access_control": {"deny_list": ["ok.test", entry]}}),
        ))
        .unwrap_err();
        assert_eq!(
            err.field, "proxy_config.access_control.deny_list[1]",
            "{entry}"
        );
        assert!(
            err.message.contains(&format!("{entry:?}")) && err.message.contains(why),
            "{entry}: {}",
            err.message
        );
    }
}

#[test]
fn malformed_shapes_and_two_lists_are_refused() {
    for (access, field) in [
        (
            json!({"allow_list": ["a.test"], "deny_list": ["b.test"]}),
            "proxy_config.access_control",
        ),
        (json!("a.test"), "proxy_config.access_control"),
        (
            json!({"allow_list": "a.test"}),
            "proxy_config.access_control.allow_list",
        ),
        (
            json!({"allow_list": [1]}),
            "proxy_config.access_control.allow_list[0]",
        ),
    ] {
        let err = AccessControl::from_proxy_config(Some(&json!({ "access_control": access })))
            .unwrap_err();
        assert_eq!(err.field, field, "{access}");
    }
}

#[test]
fn a_rules_hosts_must_be_reachable_under_access_control() {
    let exact = |h: &str| HostPattern::Exact(h.into());
    let below = |d: &str| HostPattern::Below(d.into());
    let allow = control(json!({"allow_list": [
        "api.openai.com", "*.github.com", "models.test:8443", "~^x[0-9]+\\.regex\\.test$"
    ]}));
    assert!(allow.admits(&exact("api.openai.com")).is_ok());
    assert!(allow.admits(&exact("api.github.com")).is_ok());
    assert!(allow.admits(&below("github.com")).is_ok());
    assert!(allow.admits(&below("eu.github.com")).is_ok());
    let missing = allow.admits(&exact("other.test")).unwrap_err();
    assert_eq!(
        missing,
        "other.test is not in access_control.allow_list on port 443; add it there"
    );
    assert!(
        allow.admits(&below("openai.com")).is_err(),
        "one name is not all"
    );
    assert!(allow.admits(&exact("models.test")).is_err(), "only on 8443");
    assert!(allow.admits(&exact("x1.regex.test")).is_ok());
    let deny = control(json!({"deny_list": ["evil.test", "*.blocked.test"]}));
    assert!(deny.admits(&exact("api.openai.com")).is_ok());
    assert!(
        deny.admits(&below("evil.test")).is_ok(),
        "names below are not denied"
    );
    assert!(deny.admits(&exact("evil.test")).is_err());
    assert!(deny.admits(&below("a.blocked.test")).is_err());
    assert!(
        AccessControl::default()
            .admits(&below("anything.test"))
            .is_ok()
    );
}
