//! One plain HTTP `GET` of any URL, for scripts that check what a sandbox serves (through a
//! tunnel, a service URL, a download link). Not an API call: no API key is sent, redirects
//! are followed (at most 10, as browsers stop too), and a loopback target is never sent
//! through a proxy named in the environment (`HTTP_PROXY` would otherwise capture the
//! `127.x` service origins of the local backend).

use std::net::IpAddr;
use std::time::Duration;

use super::{ClientError, install_crypto_provider};

/// What a fetch answered, whatever its status.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    /// Lower-case names in arrival order; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

/// Whether `url` names this machine (`localhost`, `*.localhost` or a loopback address).
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

/// `GET url` with extra `headers`, answered within `timeout`.
pub async fn http_get(
    url: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<Fetched, ClientError> {
    install_crypto_provider();
    let target = reqwest::Url::parse(url)
        .map_err(|e| ClientError::Config(format!("invalid URL {url:?}: {e}")))?;
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("langsmith/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout);
    if is_loopback(&target) {
        builder = builder.no_proxy();
        if target.scheme() == "http" {
            // No trust roots to load (reading them is most of a short fetch's time): a
            // loopback server does not redirect to https, where the redirect would need them.
            builder = builder.tls_certs_only([]);
        }
    }
    let mut req = builder.build()?.get(target);
    for (name, value) in headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_string(), value)
        })
        .collect();
    let body = resp.bytes().await?;
    Ok(Fetched {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_are_recognised() {
        for (url, local) in [
            ("http://127.77.0.3:7433/", true),
            ("http://localhost:8000/x", true),
            ("http://app.localhost/", true),
            ("http://[::1]:80/", true),
            ("https://example.com/", false),
            ("http://10.0.0.1/", false),
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert_eq!(is_loopback(&parsed), local, "{url}");
        }
    }
}
