//! `http_get(url[, #{headers, timeout}])`: one plain HTTP `GET` from a script, for checking
//! what a sandbox serves through a tunnel, a service URL or a download link. Answers
//! `#{status, headers, body}` whatever the status; only a failure to get any answer throws.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Blob, Dynamic, Engine, Map};

use super::bridge::{Bridge, ScriptResult, client_error, user_error};
use crate::client::fetch;

/// Default bound on one fetch, seconds.
const DEFAULT_TIMEOUT_SECS: f64 = 30.0;

/// The request headers and timeout of `opts`.
fn options(opts: &Map) -> ScriptResult<(Vec<(String, String)>, Duration)> {
    let mut headers = Vec::new();
    if let Some(given) = opts.get("headers").filter(|v| !v.is_unit()) {
        let map = given
            .read_lock::<Map>()
            .ok_or_else(|| user_error("http_get option `headers` must be a map"))?;
        for (name, value) in map.iter() {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    let secs = match opts.get("timeout").filter(|v| !v.is_unit()) {
        None => DEFAULT_TIMEOUT_SECS,
        Some(v) => v
            .as_float()
            .or_else(|_| v.as_int().map(|i| i as f64))
            .ok()
            .filter(|s| *s > 0.0)
            .ok_or_else(|| user_error("http_get option `timeout` must be a positive number"))?,
    };
    Ok((headers, Duration::from_secs_f64(secs)))
}

/// The answer as a map: headers by lower-case name (repeats joined with `, `), the body as a
/// string when it is UTF-8, else a blob.
fn answer(got: fetch::Fetched) -> Map {
    let mut headers = Map::new();
    for (name, value) in got.headers {
        let joined = match headers.get(name.as_str()) {
            Some(earlier) => format!("{earlier}, {value}"),
            None => value,
        };
        headers.insert(name.into(), joined.into());
    }
    let body = match String::from_utf8(got.body.to_vec()) {
        Ok(text) => Dynamic::from(text),
        Err(e) => Dynamic::from_blob(Blob::from(e.into_bytes())),
    };
    let mut map = Map::new();
    map.insert("status".into(), (got.status as i64).into());
    map.insert("headers".into(), headers.into());
    map.insert("body".into(), body);
    map
}

/// `url` without its query: a `browser_url` carries its token there, and error lines get
/// printed and logged.
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(before, _)| before)
}

fn get(bridge: &Bridge, url: &str, opts: &Map) -> ScriptResult<Map> {
    let (headers, timeout) = options(opts)?;
    let got = bridge
        .block_on(fetch::http_get(url, &headers, timeout))?
        .map_err(|e| client_error(e, Some(&format!("GET {}", without_query(url)))))?;
    Ok(answer(got))
}

pub fn register(engine: &mut Engine, bridge: &Arc<Bridge>) {
    let b = bridge.clone();
    engine.register_fn("http_get", move |url: &str| get(&b, url, &Map::new()));
    let b = bridge.clone();
    engine.register_fn("http_get", move |url: &str, opts: Map| get(&b, url, &opts));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_status_headers_and_body() {
        let got = fetch::Fetched {
            status: 206,
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("vary".into(), "a".into()),
                ("vary".into(), "b".into()),
            ],
            body: bytes::Bytes::from_static(b"hi"),
        };
        let map = answer(got);
        assert_eq!(map["status"].as_int().unwrap(), 206);
        let headers = map["headers"].read_lock::<Map>().unwrap().clone();
        assert_eq!(headers["vary"].to_string(), "a, b");
        assert_eq!(map["body"].to_string(), "hi");
        let binary = answer(fetch::Fetched {
            status: 200,
            headers: vec![],
            body: bytes::Bytes::from_static(&[0xff, 0]),
        });
        assert!(binary["body"].is_blob());
    }

    #[test]
    fn bad_options_are_argument_errors() {
        let mut opts = Map::new();
        opts.insert("timeout".into(), Dynamic::from(0_i64));
        assert!(options(&opts).is_err());
        let mut opts = Map::new();
        opts.insert("headers".into(), "x".into());
        assert!(options(&opts).is_err());
        let mut opts = Map::new();
        let mut headers = Map::new();
        headers.insert("X-Test".into(), "1".into());
        opts.insert("headers".into(), headers.into());
        let (headers, timeout) = options(&opts).unwrap();
        assert_eq!(headers, vec![("X-Test".to_string(), "1".to_string())]);
        assert_eq!(timeout, Duration::from_secs(30));
    }
}
