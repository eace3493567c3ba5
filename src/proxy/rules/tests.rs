use serde_json::json;

use super::*;

fn rules(config: serde_json::Value) -> Result<Rules, AccessError> {
    Rules::from_proxy_config(Some(&config))
}

fn header_rule(extra: serde_json::Value) -> serde_json::Value {
    let mut rule = json!({
        "name": "openai",
        "match_hosts": ["api.openai.com"],
        "headers": [{"name": "Authorization", "type": "workspace_secret",
                     "value": "Bearer {OPENAI_API_KEY}"}],
    });
    rule.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    rule
}

#[test]
fn a_header_rule_parses_with_its_matches_and_secrets() {
    let parsed = rules(json!({"rules": [header_rule(json!({
        "match_hosts": ["api.openai.com", "*.GitHub.com"],
        "match_paths": ["/v1/*", "*/runs", "/user", "*"],
        "match_headers": ["authorization: Bearer account-b"],
        "env_vars": {"OPENAI_API_KEY": "placeholder"},
        "enabled": false,
    }))], "no_proxy": ["ignored"], "description": "model APIs"}))
    .unwrap();
    let rule = &parsed.rules[0];
    assert!(!rule.enabled);
    assert_eq!(
        rule.match_hosts,
        [
            HostPattern::Exact("api.openai.com".into()),
            HostPattern::Below("github.com".into())
        ]
    );
    assert_eq!(
        rule.match_paths,
        [
            PathPattern::Prefix("/v1".into()),
            PathPattern::Suffix("runs".into()),
            PathPattern::Exact("/user".into()),
            PathPattern::Any
        ]
    );
    assert_eq!(
        rule.match_headers,
        [("authorization".to_string(), "Bearer account-b".to_string())]
    );
    assert_eq!(
        parsed.secret_names().into_iter().collect::<Vec<_>>(),
        ["OPENAI_API_KEY"]
    );
    let HeaderValue::WorkspaceSecret(t) = &rule.headers[0].value else {
        panic!("{rule:?}")
    };
    assert_eq!(
        t.render(|n| (n == "OPENAI_API_KEY").then(|| "sk-1".to_string())),
        Some("Bearer sk-1".into())
    );
    assert_eq!(rules(json!({})).unwrap(), Rules::default());
    assert_eq!(rules(json!({"rules": null})).unwrap(), Rules::default());
}

#[test]
fn opaque_values_may_be_left_out_to_keep_them() {
    let parsed = rules(json!({"rules": [header_rule(json!({"headers": [
        {"name": "x-api-key", "type": "opaque", "value": "s3cret"},
        {"name": "x-other", "type": "opaque", "is_set": true},
        {"name": "anthropic-version", "type": "plaintext", "value": "2023-06-01"},
    ]}))]}))
    .unwrap();
    let values: Vec<&HeaderValue> = parsed.rules[0].headers.iter().map(|h| &h.value).collect();
    assert_eq!(
        values,
        [
            &HeaderValue::Opaque(Some("s3cret".into())),
            &HeaderValue::Opaque(None),
            &HeaderValue::Plaintext("2023-06-01".into())
        ]
    );
}

#[test]
fn every_mistake_is_refused_naming_its_field() {
    for (rule, field) in [
        (json!({"match_hosts": []}), "rules[0].match_hosts"),
        (json!({"match_hosts": ["*.com"]}), "rules[0].match_hosts[0]"),
        (
            json!({"match_hosts": ["*.co.uk"]}),
            "rules[0].match_hosts[0]",
        ),
        (json!({"match_hosts": ["*"]}), "rules[0].match_hosts[0]"),
        (
            json!({"match_hosts": ["ok.test", "https://x.test/"]}),
            "rules[0].match_hosts[1]",
        ),
        (
            json!({"match_hosts": ["x.test:443"]}),
            "rules[0].match_hosts[0]",
        ),
        (
            json!({"match_paths": ["/a/*/b"]}),
            "rules[0].match_paths[0]",
        ),
        (json!({"match_paths": ["v1/*"]}), "rules[0].match_paths[0]"),
        (
            json!({"match_headers": ["Authorization: x"]}),
            "rules[0].match_headers[0]",
        ),
        (
            json!({"match_headers": ["no colon"]}),
            "rules[0].match_headers[0]",
        ),
        (json!({"headers": []}), "rules[0].headers"),
        (
            json!({"headers": [{"name": "A", "type": "secret", "value": "x"}]}),
            "rules[0].headers[0].type",
        ),
        (
            json!({"headers": [{"name": "A", "type": "workspace_secret", "value": "Bearer {}"}]}),
            "rules[0].headers[0].value",
        ),
        (
            json!({"headers": [{"name": "A", "type": "workspace_secret", "value": "{A"}]}),
            "rules[0].headers[0].value",
        ),
        (
            json!({"headers": [{"name": "A", "type": "workspace_secret", "value": "literal"}]}),
            "rules[0].headers[0].value",
        ),
        (
            json!({"headers": [{"name": "A", "type": "workspace_secret", "value": "${A}"}]}),
            "rules[0].headers[0].value",
        ),
        (
            json!({"headers": [{"name": "A", "type": "plaintext", "value": "a\r\nb: c"}]}),
            "rules[0].headers[0].value",
        ),
        (
            json!({"headers": [{"name": "Bad Name", "type": "plaintext", "value": "x"}]}),
            "rules[0].headers[0].name",
        ),
        (
            json!({"env_vars": {"GH_TOKEN": " "}}),
            "rules[0].env_vars.GH_TOKEN",
        ),
        (json!({"env_vars": {"1X": "y"}}), "rules[0].env_vars.1X"),
        (json!({"enabled": "yes"}), "rules[0].enabled"),
        (json!({"name": ""}), "rules[0].name"),
        // An aws rule takes no hosts or headers of its own.
        (json!({"type": "aws"}), "rules[0].match_hosts"),
        (json!({"type": "azure"}), "rules[0].type"),
        (
            json!({"aws": {"access_key_id": {"type": "opaque", "value": "x"}}}),
            "rules[0].aws",
        ),
        (
            json!({"description": "x".repeat(1025)}),
            "rules[0].description",
        ),
    ] {
        let e = rules(json!({"rules": [header_rule(rule.clone())]})).unwrap_err();
        assert_eq!(
            e.field,
            format!("proxy_config.{field}"),
            "{rule}: {}",
            e.message
        );
    }
    let twice = rules(json!({"rules": [header_rule(json!({})), header_rule(json!({}))]}));
    assert_eq!(twice.unwrap_err().field, "proxy_config.rules[1].name");
    let callbacks = rules(json!({"callbacks": [{"url": "https://x.test/"}]}));
    assert_eq!(callbacks.unwrap_err().field, "proxy_config.callbacks");
    let rule_not_object = rules(json!({"rules": [{}]}));
    assert_eq!(rule_not_object.unwrap_err().field, "proxy_config.rules[0]");
    let long = rules(json!({"description": "x".repeat(1025)}));
    assert_eq!(long.unwrap_err().field, "proxy_config.description");
}

#[test]
fn a_pattern_is_within_a_secrets_host_when_every_name_of_it_is() {
    let exact = HostPattern::Exact("api.openai.com".into());
    let below = HostPattern::Below("openai.com".into());
    assert!(exact.is_within("api.openai.com") && exact.is_within("*.openai.com"));
    assert!(exact.is_within("API.openai.com."));
    assert!(!exact.is_within("openai.com") && !exact.is_within("*.api.openai.com"));
    assert!(below.is_within("*.openai.com") && below.is_within("*.com"));
    assert!(!below.is_within("api.openai.com") && !below.is_within("*.eu.openai.com"));
    assert_eq!(below.to_string(), "*.openai.com");
}

#[test]
fn aws_rules_take_static_keys_from_secrets_only() {
    let key = |t: &str, v: &str| json!({"type": t, "value": v});
    let aws = |keys: serde_json::Value| json!({"name": "aws", "type": "aws", "aws": keys});
    let good = rules(json!({"rules": [aws(json!({
        "access_key_id": key("workspace_secret", "{AWS_ACCESS_KEY_ID}"),
        "secret_access_key": key("opaque", "real-secret"),
    }))]}))
    .unwrap();
    let rule = &good.rules[0];
    let keys = rule.aws.as_ref().unwrap();
    assert!(matches!(
        keys.access_key_id,
        HeaderValue::WorkspaceSecret(_)
    ));
    assert_eq!(
        keys.secret_access_key,
        HeaderValue::Opaque(Some("real-secret".into()))
    );
    assert_eq!(
        good.secret_names().into_iter().collect::<Vec<_>>(),
        ["AWS_ACCESS_KEY_ID"]
    );
    assert!(good.may_match_host("bedrock-runtime.us-east-1.amazonaws.com"));
    assert!(!good.may_match_host("amazonaws.com.evil.test"));
    assert!(good.aws_for("s3.amazonaws.com").is_some());
    assert!(good.aws_for("amazonaws.com").is_none());
    assert_eq!(
        rule.destinations(),
        [
            HostPattern::Below("amazonaws.com".into()),
            HostPattern::Below("amazonaws.com.cn".into())
        ]
    );

    let secret = key("workspace_secret", "{K}");
    for (keys, field, says) in [
        (
            json!({"role_arn": "arn:aws:iam::1:role/x"}),
            "rules[0].aws.role_arn",
            "IAM roles are not supported",
        ),
        (
            json!({"access_key_id": key("plaintext", "AKID"), "secret_access_key": secret}),
            "rules[0].aws.access_key_id.type",
            "never plaintext",
        ),
        (
            json!({"access_key_id": secret}),
            "rules[0].aws.secret_access_key",
            "both access_key_id and secret_access_key",
        ),
    ] {
        let e = rules(json!({"rules": [aws(keys)]})).unwrap_err();
        assert_eq!(e.field, format!("proxy_config.{field}"), "{}", e.message);
        assert!(e.message.contains(says), "{}", e.message);
    }
    let keys = json!({"access_key_id": secret, "secret_access_key": secret});
    let mut with_hosts = aws(keys.clone());
    with_hosts["match_hosts"] = json!(["s3.amazonaws.com"]);
    let e = rules(json!({"rules": [with_hosts]})).unwrap_err();
    assert_eq!(e.field, "proxy_config.rules[0].match_hosts");
    let mut second = aws(keys.clone());
    second["name"] = json!("aws-2");
    second["enabled"] = json!(false);
    let e = rules(json!({"rules": [aws(keys), second]})).unwrap_err();
    assert_eq!(e.field, "proxy_config.rules[1].type");
}

#[test]
fn gcp_rules_take_a_key_file_from_secrets_and_default_their_scope() {
    let rule =
        |gcp: serde_json::Value| json!({"rules": [{"name": "gcp", "type": "gcp", "gcp": gcp}]});
    let key = json!({"type": "workspace_secret", "value": "{GCP_KEY}"});
    let parsed = rules(rule(json!({"service_account_json": key}))).unwrap();
    let account = parsed.rules[0].gcp.as_ref().unwrap();
    assert_eq!(account.scopes, [DEFAULT_GCP_SCOPE]);
    assert_eq!(
        parsed.secret_names().into_iter().collect::<Vec<_>>(),
        ["GCP_KEY"]
    );
    assert!(parsed.may_match_host("storage.googleapis.com"));
    assert!(!parsed.may_match_host("googleapis.com") && !parsed.may_match_host("www.google.com"));
    // A secret limited to some hosts must cover every Google API the rule sends its key to.
    let destinations = parsed.rules[0].destinations();
    assert_eq!(destinations, [HostPattern::Below("googleapis.com".into())]);
    assert!(destinations[0].is_within("*.googleapis.com"));
    assert!(!destinations[0].is_within("storage.googleapis.com"));
    for (gcp, field) in [
        (
            json!({"service_account_json": key, "scopes": []}),
            "rules[0].gcp.scopes",
        ),
        (
            json!({"service_account_json": {"type": "plaintext", "value": "{}"}}),
            "rules[0].gcp.service_account_json.type",
        ),
        (
            json!({"workload_identity_provider": "//iam.googleapis.com/x"}),
            "rules[0].gcp.workload_identity_provider",
        ),
        (json!({}), "rules[0].gcp.service_account_json"),
    ] {
        let e = rules(rule(gcp)).unwrap_err();
        assert_eq!(e.field, format!("proxy_config.{field}"), "{}", e.message);
    }
}
