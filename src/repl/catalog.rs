//! What the REPL can offer for completion and hints, read from the engine's own function
//! metadata rather than from hand-kept lists, so it stays true as bindings are added.
//!
//! A registered function whose first parameter is `&mut T` is a method of `T`; `get$x` is the
//! property `x`; anything else (of the project's own registrations) is a top-level function.
//! Methods of Rhai's standard types (`string`, `array`, `map`, …) come from the standard packages.

use std::collections::{BTreeMap, BTreeSet};

use rhai::Engine;

/// Parameter lists of every overload of one function, e.g. `["string", "string, map"]`.
pub type Overloads = BTreeSet<String>;

/// Rhai keywords worth offering at the start of a word.
const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "break", "continue",
    "return", "throw", "try", "catch", "switch", "true", "false", "print", "debug",
];

#[derive(Debug, Default)]
pub struct Catalog {
    /// Top-level functions registered by the project: name → overloads.
    pub functions: BTreeMap<String, Overloads>,
    /// Type name (as scripts see it: `Sandbox`, `map`, …) → method name → overloads
    /// (parameters after the receiver).
    pub methods: BTreeMap<String, BTreeMap<String, Overloads>>,
    /// Type name → property names.
    pub properties: BTreeMap<String, BTreeSet<String>>,
    /// The project's own object types (those with registered properties or methods and not
    /// one of Rhai's standard types).
    pub own_types: BTreeSet<String>,
}

/// `name(_: &mut Sandbox, _: string) -> …` → `("name", ["&mut Sandbox", "string"])`.
fn parse_signature(sig: &str) -> Option<(&str, Vec<&str>)> {
    let open = sig.find('(')?;
    let close = open + sig[open..].find(')')?;
    let name = &sig[..open];
    let params = sig[open + 1..close]
        .split(", ")
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once(": ").map_or(p, |(_, ty)| ty))
        .collect();
    Some((name, params))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Catalog {
    pub fn from_engine(engine: &Engine) -> Self {
        let mut catalog = Catalog::default();
        let own = engine.gen_fn_signatures(false);
        let own_set: BTreeSet<&String> = own.iter().collect();
        let everything = engine.gen_fn_signatures(true);
        for sig in &everything {
            let Some((name, params)) = parse_signature(sig) else {
                continue;
            };
            let is_own = own_set.contains(sig);
            let receiver = params.first().and_then(|p| p.strip_prefix("&mut "));
            if let Some(prop) = name.strip_prefix("get$") {
                if let Some(ty) = receiver {
                    catalog
                        .properties
                        .entry(ty.to_string())
                        .or_default()
                        .insert(prop.to_string());
                    if is_own {
                        catalog.own_types.insert(ty.to_string());
                    }
                }
                continue;
            }
            if !is_identifier(name) {
                continue; // operators, `set$x`, `index$get$` …
            }
            match receiver {
                Some(ty) => {
                    let rest = params[1..].join(", ");
                    catalog
                        .methods
                        .entry(ty.to_string())
                        .or_default()
                        .entry(name.to_string())
                        .or_default()
                        .insert(rest);
                    if is_own {
                        catalog.own_types.insert(ty.to_string());
                    }
                }
                None if is_own => {
                    catalog
                        .functions
                        .entry(name.to_string())
                        .or_default()
                        .insert(params.join(", "));
                }
                None => {}
            }
        }
        catalog
    }

    /// Method and property names of `ty`; of all the project's own types when `ty` is unknown.
    pub fn members(&self, ty: Option<&str>) -> BTreeSet<String> {
        let types: Vec<&str> = match ty {
            Some(t) if self.methods.contains_key(t) || self.properties.contains_key(t) => vec![t],
            _ => self.own_types.iter().map(String::as_str).collect(),
        };
        let mut names = BTreeSet::new();
        for t in types {
            if let Some(m) = self.methods.get(t) {
                names.extend(m.keys().cloned());
            }
            if let Some(p) = self.properties.get(t) {
                names.extend(p.iter().cloned());
            }
        }
        names
    }

    /// Names that can start a statement: the project's functions and Rhai keywords.
    pub fn top_level(&self) -> impl Iterator<Item = &str> {
        self.functions
            .keys()
            .map(String::as_str)
            .chain(KEYWORDS.iter().copied())
    }

    /// `exec(string) · exec(string, map)`: the overloads of a function or of a method of `ty`
    /// (of any own type when `ty` is unknown).
    pub fn signature(&self, ty: Option<&str>, name: &str, method: bool) -> Option<String> {
        let overloads: Vec<String> = if method {
            let types: Vec<&String> = match ty {
                Some(t) if self.methods.contains_key(t) => vec![self.methods.get_key_value(t)?.0],
                _ => self.own_types.iter().collect(),
            };
            types
                .into_iter()
                .filter_map(|t| self.methods.get(t)?.get(name))
                .flatten()
                .cloned()
                .collect()
        } else {
            self.functions.get(name)?.iter().cloned().collect()
        };
        if overloads.is_empty() {
            return None;
        }
        let mut seen = BTreeSet::new();
        let shown: Vec<String> = overloads
            .into_iter()
            .filter(|o| seen.insert(o.clone()))
            .map(|o| format!("{name}({o})"))
            .collect();
        Some(shown.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ConfigInputs;
    use crate::script::ScriptHost;

    #[test]
    fn signatures_split_into_name_and_parameter_types() {
        let (name, params) =
            parse_signature("exec(_: &mut Sandbox, _: string, _: map) -> Result<A, B>").unwrap();
        assert_eq!(name, "exec");
        assert_eq!(params, vec!["&mut Sandbox", "string", "map"]);
        assert_eq!(parse_signature("connect() -> bool").unwrap().1.len(), 0);
    }

    #[test]
    fn the_catalog_knows_the_bindings_from_the_engine() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let host = ScriptHost::new(rt.handle().clone(), ConfigInputs::default());
        let catalog = Catalog::from_engine(&host.engine);
        let sandbox = catalog.members(Some("Sandbox"));
        for name in [
            "exec",
            "command",
            "read",
            "write",
            "delete",
            "name",
            "status",
            "service_url",
            "download_url",
            "service_urls",
            "revoke_service_urls",
        ] {
            assert!(sandbox.contains(name), "Sandbox lacks {name}: {sandbox:?}");
        }
        assert!(catalog.members(Some("Command")).contains("each"));
        assert!(sandbox.contains("tunnel"), "{sandbox:?}");
        let tunnel = catalog.members(Some("Tunnel"));
        for name in ["local_port", "remote_port", "close"] {
            assert!(tunnel.contains(name), "Tunnel lacks {name}: {tunnel:?}");
        }
        assert!(catalog.functions.contains_key("tunnel_run"));
        assert!(
            catalog.members(Some("map")).contains("keys"),
            "standard methods"
        );
        assert!(!sandbox.contains("keys"));
        assert!(catalog.functions.contains_key("sandbox_create"));
        assert!(catalog.functions.contains_key("http_get"));
        let sig = catalog.signature(Some("Sandbox"), "exec", true).unwrap();
        assert!(sig.contains("exec(string, map)"), "{sig}");
        let unknown = catalog.members(None);
        assert!(
            unknown.contains("wait") && unknown.contains("next"),
            "{unknown:?}"
        );
    }
}
