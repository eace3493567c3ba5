//! What the first bytes of a connection say, read without consuming them: the caller keeps
//! the bytes and sends them upstream once the connection is allowed.
//!
//! TLS ClientHellos are parsed by rustls's own `Acceptor` (fed a copy of the bytes) and
//! HTTP request heads by `httparse`: no hand-written parser for either.

/// The outcome of looking at a prefix.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek<T> {
    Done(T),
    NeedMore,
    Invalid,
}

/// The most bytes worth buffering while peeking; a longer hello or head counts as invalid.
pub const PEEK_LIMIT: usize = 16 * 1024;

/// The SNI of the ClientHello at the start of `prefix` (`Done(None)`: a hello without one).
pub fn tls_server_name(prefix: &[u8]) -> Peek<Option<String>> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut bytes = prefix;
    while !bytes.is_empty() {
        if acceptor.read_tls(&mut bytes).is_err() {
            return Peek::Invalid;
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Peek::Done(
            accepted
                .client_hello()
                .server_name()
                .map(|name| name.to_ascii_lowercase()),
        ),
        Ok(None) => Peek::NeedMore,
        Err(_) => Peek::Invalid,
    }
}

/// The `Host` of the HTTP/1.x request head at the start of `prefix`, lowercased and without
/// its port (`Done(None)`: no `Host` header).
pub fn http_host(prefix: &[u8]) -> Peek<Option<String>> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(prefix) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Peek::NeedMore,
        Err(_) => return Peek::Invalid,
    }
    let host = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(|value| strip_port(value.trim()).to_ascii_lowercase());
    Peek::Done(host)
}

/// `name:80` → `name`, `[::1]:80` → `::1`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn client_hello(name: &str) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn the_sni_comes_from_a_whole_hello_only() {
        let hello = client_hello("API.example.test");
        assert_eq!(
            tls_server_name(&hello),
            Peek::Done(Some("api.example.test".into()))
        );
        assert_eq!(tls_server_name(&hello[..hello.len() / 2]), Peek::NeedMore);
        assert_eq!(
            tls_server_name(&client_hello("192.0.2.1")),
            Peek::Done(None)
        );
        assert_eq!(tls_server_name(b"GET / HTTP/1.1\r\n\r\n"), Peek::Invalid);
    }

    #[test]
    fn the_host_comes_from_a_whole_head_without_its_port() {
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: Example.test:8080\r\n\r\n"),
            Peek::Done(Some("example.test".into()))
        );
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
            Peek::Done(Some("::1".into()))
        );
        assert_eq!(http_host(b"GET / HTTP/1.0\r\n\r\n"), Peek::Done(None));
        assert_eq!(http_host(b"GET / HTTP/1.1\r\nHost: a"), Peek::NeedMore);
        assert_eq!(http_host(&[0x16, 0x03, 0x01, 0x00]), Peek::Invalid);
    }
}
