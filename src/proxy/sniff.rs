//! What the first bytes of a connection say, read without consuming them: the caller
//! buffers the bytes (at most `PEEK_LIMIT`) and forwards them upstream once the connection
//! is allowed, so each function here looks at a copy and may be called again with a longer
//! prefix.
//!
//! TLS ClientHellos are parsed by rustls's own `Acceptor` and HTTP request heads by
//! `httparse`: no hand-written parser for either, since a parser that disagrees with the
//! real server's is how a filter gets bypassed.

use rustls::server::Acceptor;

/// The outcome of looking at a prefix.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek<T> {
    /// The prefix holds a whole hello or head, which says this.
    Done(T),
    /// The prefix is the start of one; wait for more bytes.
    NeedMore,
    /// Not this protocol, or longer than `PEEK_LIMIT`.
    Invalid,
}

/// The most bytes the caller should buffer while peeking. Real ClientHellos (even with
/// post-quantum key shares) and request heads fit well within it; beyond it the peek counts
/// as `Invalid`, so a peer cannot make the proxy buffer without bound.
pub const PEEK_LIMIT: usize = 16 * 1024;

/// The first byte of a TLS handshake record. Checked up front only so that a connection
/// that is plainly not TLS (e.g. `GET …`) is `Invalid` from its first byte rather than
/// `NeedMore` until rustls has a whole record header.
const TLS_HANDSHAKE: u8 = 0x16;

/// The SNI host name, lowercased, of a TLS ClientHello at the start of `prefix`
/// (`Done(None)` when the hello has no SNI, e.g. a connection to an IP address).
/// `NeedMore` until the hello is complete; `Invalid` when it is not TLS.
pub fn tls_server_name(prefix: &[u8]) -> Peek<Option<String>> {
    if prefix.first().is_some_and(|&b| b != TLS_HANDSHAKE) {
        return Peek::Invalid;
    }
    let window = &prefix[..prefix.len().min(PEEK_LIMIT)];
    let mut acceptor = Acceptor::default();
    if feed(&mut acceptor, window).is_err() {
        return Peek::Invalid;
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Peek::Done(
            accepted
                .client_hello()
                .server_name()
                .map(str::to_ascii_lowercase),
        ),
        Ok(None) => need_more_unless_full(prefix),
        Err(_) => Peek::Invalid,
    }
}

/// Hands all of `bytes` to the acceptor (`read_tls` takes what fits in one go).
fn feed(acceptor: &mut Acceptor, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        if acceptor.read_tls(&mut bytes)? == 0 {
            break;
        }
    }
    Ok(())
}

/// The `Host` of an HTTP/1.x request head at the start of `prefix`, lowercased and without
/// any `:port` (`[::1]:80` gives `::1`); `Done(None)` when there is no `Host` header or it
/// is empty. `NeedMore` until the head is complete; `Invalid` when it is not HTTP/1.x, or
/// when it has more than one `Host` (servers disagree on which counts, so neither is
/// trusted). Only the `Host` header counts: an absolute-form target (`GET http://x/ …`,
/// which only clients that think they talk to a proxy send) is not consulted.
pub fn http_host(prefix: &[u8]) -> Peek<Option<String>> {
    let window = &prefix[..prefix.len().min(PEEK_LIMIT)];
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(window) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return need_more_unless_full(prefix),
        Err(_) => return Peek::Invalid,
    }
    let mut hosts = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"));
    let Some(host) = hosts.next() else {
        return Peek::Done(None);
    };
    if hosts.next().is_some() {
        return Peek::Invalid;
    }
    let Ok(value) = std::str::from_utf8(host.value) else {
        return Peek::Invalid;
    };
    let name = strip_port(value.trim()).to_ascii_lowercase();
    Peek::Done((!name.is_empty()).then_some(name))
}

/// `NeedMore`, unless the caller already buffered as much as it should.
fn need_more_unless_full<T>(prefix: &[u8]) -> Peek<T> {
    if prefix.len() >= PEEK_LIMIT {
        Peek::Invalid
    } else {
        Peek::NeedMore
    }
}

/// `name:80` → `name`, `[::1]:80` and `[::1]` → `::1`. A bare IPv6 address (more than one
/// colon, no brackets) is left whole: its last group is not a port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(inner, _)| inner);
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The first flight of a real rustls client connecting to `name`.
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
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_whole_hello_gives_its_lowercased_sni() {
        let hello = client_hello("API.example.test");
        assert_eq!(
            tls_server_name(&hello),
            Peek::Done(Some("api.example.test".into()))
        );
    }

    #[test]
    fn a_hello_split_in_halves_needs_more_then_is_done() {
        let hello = client_hello("pypi.org");
        let (first, _) = hello.split_at(hello.len() / 2);
        assert_eq!(tls_server_name(first), Peek::NeedMore);
        assert_eq!(tls_server_name(&hello[..3]), Peek::NeedMore);
        assert_eq!(tls_server_name(&[]), Peek::NeedMore);
        assert_eq!(tls_server_name(&hello), Peek::Done(Some("pypi.org".into())));
    }

    #[test]
    fn a_hello_for_an_ip_address_has_no_sni() {
        assert_eq!(
            tls_server_name(&client_hello("192.0.2.1")),
            Peek::Done(None)
        );
    }

    #[test]
    fn what_is_not_tls_is_invalid() {
        assert_eq!(tls_server_name(b"GET / HTTP/1.1\r\n\r\n"), Peek::Invalid);
        assert_eq!(tls_server_name(&noise(64)), Peek::Invalid);
        // A handshake record header that holds no ClientHello.
        assert_eq!(
            tls_server_name(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]),
            Peek::Invalid
        );
    }

    #[test]
    fn a_hello_that_never_ends_stops_at_the_limit() {
        let mut endless = vec![0x16, 0x03, 0x01, 0xff, 0xff];
        endless.resize(PEEK_LIMIT + 10, 0);
        assert_eq!(tls_server_name(&endless), Peek::Invalid);
    }

    #[test]
    fn the_host_comes_without_its_port_and_lowercased() {
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: Example.test:8080\r\nAccept: */*\r\n\r\n"),
            Peek::Done(Some("example.test".into()))
        );
        assert_eq!(
            http_host(b"POST /x HTTP/1.0\r\nhost:  pypi.org \r\n\r\nbody"),
            Peek::Done(Some("pypi.org".into()))
        );
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
            Peek::Done(Some("::1".into()))
        );
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n"),
            Peek::Done(Some("2001:db8::1".into()))
        );
    }

    #[test]
    fn a_head_without_host_is_done_with_none() {
        assert_eq!(http_host(b"GET / HTTP/1.0\r\n\r\n"), Peek::Done(None));
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
            Peek::Done(None)
        );
    }

    #[test]
    fn a_partial_head_needs_more() {
        assert_eq!(http_host(b""), Peek::NeedMore);
        assert_eq!(http_host(b"GET / HTTP/1.1\r\nHost: a"), Peek::NeedMore);
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: a.test\r\n"),
            Peek::NeedMore
        );
    }

    #[test]
    fn what_is_not_http_is_invalid() {
        assert_eq!(http_host(&client_hello("pypi.org")), Peek::Invalid);
        assert_eq!(http_host(&noise(64)), Peek::Invalid);
        assert_eq!(
            http_host(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Peek::Invalid
        );
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"),
            Peek::Invalid
        );
    }

    #[test]
    fn a_head_that_never_ends_stops_at_the_limit() {
        let mut endless = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        endless.resize(PEEK_LIMIT + 10, b'a');
        assert_eq!(http_host(&endless), Peek::Invalid);
    }

    /// Bytes that are neither TLS nor HTTP (a fixed pseudo-random sequence).
    fn noise(len: usize) -> Vec<u8> {
        let mut state: u32 = 0x9e37_79b9;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8 | 0x80
            })
            .collect()
    }
}
