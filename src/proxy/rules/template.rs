//! `workspace_secret` values: text with `{NAME}` references to workspace secrets, resolved
//! when the configuration is applied. `NAME` is a secret key (`[A-Za-z_][A-Za-z0-9_]*`);
//! every other brace is an error.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Secret(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("unbalanced '}}' in {text:?}"));
            }
            if rest[..open].ends_with('$') {
                return Err(format!(
                    "{text:?} uses ${{…}}: write {{NAME}}, e.g. \"Bearer {{OPENAI_API_KEY}}\""
                ));
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unbalanced '{{' in {text:?}"))?;
            let name = &after[..close];
            let valid = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "{{{name}}} in {text:?} is not a secret reference such as {{OPENAI_API_KEY}}"
                ));
            }
            parts.push(Part::Secret(name.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if !parts.iter().any(|p| matches!(p, Part::Secret(_))) {
            return Err(format!(
                "{text:?} references no secret: write {{NAME}}, e.g. \"Bearer {{OPENAI_API_KEY}}\" \
                 (use type plaintext for a literal value)"
            ));
        }
        Ok(Template { parts })
    }

    /// The secrets referred to.
    pub fn secret_names(&self) -> impl Iterator<Item = String> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret(name) => Some(name.clone()),
            Part::Text(_) => None,
        })
    }

    /// The text with each reference replaced by `lookup(name)`.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => Some(t.clone()),
                Part::Secret(name) => lookup(name),
            })
            .collect()
    }
}
