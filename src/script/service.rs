//! Sharing what runs in a sandbox: `Sandbox.service_url(port[, opts])` mints a URL for a
//! port (a token link, or a login grant with `access`), `Sandbox.download_url(path[, opts])`
//! a link to one file; `service_urls()` lists the shared ports and
//! `revoke_service_urls([port])` withdraws them. Each answers the API's object as a map.

use rhai::{Array, Dynamic, Engine, Map};

use super::bridge::{ScriptResult, user_error};
use super::sandbox::SandboxObj;
use super::snapshot::from_map;
use crate::api::service::{DownloadUrlRequest, ServiceUrlRequest};

/// Options plus the one required field, as the request body.
fn request<T: serde::de::DeserializeOwned>(
    what: &str,
    key: &str,
    value: Dynamic,
    opts: Map,
) -> ScriptResult<T> {
    let mut map = opts;
    if map.contains_key(key) {
        return Err(user_error(format!(
            "{what}: give `{key}` as the first argument, not as an option"
        )));
    }
    map.insert(key.into(), value);
    from_map(what, map)
}

fn service_url(s: &SandboxObj, port: i64, opts: Map) -> ScriptResult<Dynamic> {
    let req: ServiceUrlRequest = request("service_url", "port", port.into(), opts)?;
    let name = s.data.name.clone();
    let url = s.bridge.call("creating service URL", |c| async move {
        c.service_url(&name, &req).await
    })?;
    rhai::serde::to_dynamic(url)
}

fn download_url(s: &SandboxObj, path: &str, opts: Map) -> ScriptResult<Dynamic> {
    let req: DownloadUrlRequest = request("download_url", "path", path.into(), opts)?;
    let name = s.data.name.clone();
    let url = s.bridge.call("generating download URL", |c| async move {
        c.download_url(&name, &req).await
    })?;
    rhai::serde::to_dynamic(url)
}

fn grants(s: &SandboxObj) -> ScriptResult<Array> {
    let name = s.data.name.clone();
    let list = s.bridge.call("listing service URLs", |c| async move {
        c.service_grants(&name).await
    })?;
    list.into_iter().map(rhai::serde::to_dynamic).collect()
}

fn revoke(s: &SandboxObj, port: Option<i64>) -> ScriptResult<()> {
    let port = port
        .map(|p| {
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| user_error(format!("port must be between 1 and 65535 (got {p})")))
        })
        .transpose()?;
    let name = s.data.name.clone();
    s.bridge.call("revoking service URLs", |c| async move {
        c.delete_service_grants(&name, port).await
    })
}

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("service_url", |s: &mut SandboxObj, port: i64| {
            service_url(s, port, Map::new())
        })
        .register_fn("service_url", |s: &mut SandboxObj, port: i64, opts: Map| {
            service_url(s, port, opts)
        })
        .register_fn("download_url", |s: &mut SandboxObj, path: &str| {
            download_url(s, path, Map::new())
        })
        .register_fn(
            "download_url",
            |s: &mut SandboxObj, path: &str, opts: Map| download_url(s, path, opts),
        )
        .register_fn("service_urls", |s: &mut SandboxObj| grants(s))
        .register_fn("revoke_service_urls", |s: &mut SandboxObj| revoke(s, None))
        .register_fn("revoke_service_urls", |s: &mut SandboxObj, port: i64| {
            revoke(s, Some(port))
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_the_request_body() {
        let mut opts = Map::new();
        opts.insert("expires_in_seconds".into(), Dynamic::from(60_i64));
        opts.insert(
            "embed_origins".into(),
            Dynamic::from(vec![Dynamic::from("https://app.example.com")]),
        );
        let req: ServiceUrlRequest = request("service_url", "port", 8000_i64.into(), opts).unwrap();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"port": 8000, "expires_in_seconds": 60,
                               "embed_origins": ["https://app.example.com"]})
        );
        let mut opts = Map::new();
        opts.insert("content_disposition".into(), "inline".into());
        opts.insert("content_type".into(), Dynamic::UNIT);
        let req: DownloadUrlRequest = request("download_url", "path", "/a".into(), opts).unwrap();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"path": "/a", "content_disposition": "inline"})
        );
    }

    #[test]
    fn the_required_field_is_not_an_option_too() {
        let mut opts = Map::new();
        opts.insert("port".into(), Dynamic::from(1_i64));
        let err =
            request::<ServiceUrlRequest>("service_url", "port", 2_i64.into(), opts).unwrap_err();
        assert_eq!(
            super::super::error_text(&err),
            "service_url: give `port` as the first argument, not as an option"
        );
    }
}
