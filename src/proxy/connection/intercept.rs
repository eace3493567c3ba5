//! A connection to a host a header rule may match, opened: the sandbox's TLS ends here with a
//! leaf of the egress CA, each request is read (HTTP/2 or HTTP/1.1, as the sandbox chose),
//! the first matching rule's headers are set on it, and it goes on to the real host over TLS
//! verified as the sandbox itself would verify it.
//!
//! * Every request of a kept-alive connection is matched on its own, against the policy of
//!   the moment (an update applies to the next request). Where no header rule matches, a
//!   provider rule may (`providers`: a gcp token, an aws signature).
//! * A request must be for the host the connection was opened to (`:authority` or `Host`);
//!   any other gets `421 Misdirected Request`, so no rule is matched for a name the proxy did
//!   not check.
//! * An HTTP/1.1 upgrade (WebSocket) gets its headers like any request; after the host's
//!   `101` the two upgraded streams are copied both ways.
//! * Each request is one entry of the egress log: the request line without its query, the
//!   rule that set headers (its name), the status. When the connection ends, one more entry
//!   has its bytes.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, UPGRADE};
use http::{HeaderMap, HeaderName, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::entry;
use super::providers;
use crate::api::egress::Decision;
use crate::proxy::hub::{SandboxEgress, Shared};
use crate::proxy::origin::{Origin, OriginError, OutBody};
use crate::proxy::replay::{Counters, Replay};
use crate::proxy::tls::H2;

/// Answers go back with the same body type requests go out with.
type Body = OutBody;

/// Headers that belong to one hop, never forwarded (RFC 9110 §7.6.1), plus those HTTP/2
/// forbids.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// An opened connection's context, shared by its requests.
pub(in crate::proxy) struct Opened {
    shared: Arc<Shared>,
    sandbox: Arc<SandboxEgress>,
    host: String,
    port: u16,
    /// The `access_control` entry that let the connection through.
    access_rule: String,
}

impl Opened {
    pub fn new(
        shared: Arc<Shared>,
        sandbox: Arc<SandboxEgress>,
        host: &str,
        port: u16,
        access_rule: String,
    ) -> Opened {
        Opened {
            shared,
            sandbox,
            host: host.to_ascii_lowercase(),
            port,
            access_rule,
        }
    }

    /// Serve the sandbox's side until it is done; `prefix` is the ClientHello already read.
    pub async fn serve(self, client: TcpStream, prefix: Vec<u8>) {
        let counters = Arc::new(Counters::default());
        let stream = Replay::new(prefix, client, counters.clone());
        let acceptor = TlsAcceptor::from(self.shared.tls.server.clone());
        let tls = match acceptor.accept(stream).await {
            Ok(tls) => tls,
            Err(e) => {
                let reason = format!(
                    "TLS handshake with the sandbox failed: {e} (a client that does not trust \
                     the egress CA, or pins certificates, cannot have headers set)"
                );
                return self.log_connection(Decision::Failed, Some(reason), &counters);
            }
        };
        let http2 = tls.get_ref().1.alpn_protocol() == Some(H2);
        let offer = if http2 {
            self.shared.tls.client_h2.clone()
        } else {
            self.shared.tls.client_http11.clone()
        };
        let origin = Origin::new(self.shared.clone(), &self.host, self.port, offer);
        let this = Arc::new(self);
        let request = Arc::new(Relay {
            opened: this.clone(),
            origin,
            http2,
        });
        let service = service_fn(move |req| {
            let request = request.clone();
            async move { Ok::<_, Infallible>(request.relay(req).await) }
        });
        let io = TokioIo::new(tls);
        let served = if http2 {
            http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service)
                .await
        } else {
            http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await
        };
        let reason = served
            .err()
            .map(|e| format!("opened for header rules; ended with: {e}"));
        let reason = reason.or_else(|| Some("opened for header rules".into()));
        this.log_connection(Decision::Allowed, reason, &counters);
    }

    fn log_connection(&self, decision: Decision, reason: Option<String>, counters: &Counters) {
        let mut e = entry(
            &self.sandbox.id,
            &self.host,
            self.port,
            decision,
            &self.access_rule,
        );
        e.reason = reason;
        (e.bytes_sent, e.bytes_received) = counters.totals();
        self.shared.log.record(&self.sandbox.id, e);
    }
}

/// What each request of one opened connection shares.
struct Relay {
    opened: Arc<Opened>,
    origin: Origin,
    /// Whether the sandbox speaks HTTP/2 on this connection.
    http2: bool,
}

impl Relay {
    async fn relay(&self, mut req: Request<Incoming>) -> Response<Body> {
        let opened = &self.opened;
        let path = req.uri().path().to_string();
        let line = format!("{} {path}", req.method());
        let authority = authority(&req);
        if !is_host(authority.as_deref(), &opened.host, opened.port) {
            let text = format!(
                "misdirected request: this connection was opened to {}, not {}\n",
                opened.host,
                authority.as_deref().unwrap_or("(no host)")
            );
            self.log_request(
                line,
                None,
                StatusCode::MISDIRECTED_REQUEST,
                Some(text.clone()),
            );
            return text_response(StatusCode::MISDIRECTED_REQUEST, text);
        }
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let upgrade = !self.http2 && req.headers().contains_key(UPGRADE);
        let sandbox_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        // This hop's headers go before the rules apply: a `Connection` header naming
        // `authorization` would otherwise drop the header a rule just set.
        strip_hop_by_hop(req.headers_mut(), upgrade);
        let policy = opened.sandbox.policy();
        let header_rule = policy
            .injection
            .apply(&opened.host, &path_and_query, req.headers_mut())
            .map(str::to_string);
        let authority = authority.unwrap_or_else(|| opened.host.clone());
        let req = req.map(BodyExt::boxed);
        // Provider rules apply where no header rule did.
        let (header_rule, applied) = match header_rule {
            Some(rule) => (Some(rule), Ok(req)),
            None => {
                let target = (
                    opened.host.as_str(),
                    authority.as_str(),
                    path_and_query.as_str(),
                );
                let providers = providers::Providers {
                    injection: &policy.injection,
                    token_http: &opened.shared.token_http,
                    signing_budget: &opened.sandbox.signing_budget,
                };
                providers::apply(providers, req, target).await
            }
        };
        let req = match applied {
            Ok(req) => req,
            Err(refused) => {
                let text = format!("{}\n", refused.reason);
                self.log_request(line, header_rule, refused.status, Some(refused.reason));
                return text_response(refused.status, text);
            }
        };
        let sent = self
            .origin
            .send(|http2| to_origin(req, http2, &authority, &path_and_query))
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => {
                let status = match e {
                    OriginError::Dial(crate::proxy::upstream::DialError::Forbidden { .. }) => {
                        StatusCode::FORBIDDEN
                    }
                    _ => StatusCode::BAD_GATEWAY,
                };
                let text = format!("upstream unreachable: {e}\n");
                self.log_request(line, header_rule, status, Some(e.to_string()));
                return text_response(status, text);
            }
        };
        self.log_request(line, header_rule, response.status(), None);
        if let Some(sandbox_side) = sandbox_upgrade
            && response.status() == StatusCode::SWITCHING_PROTOCOLS
        {
            // The host's connection now belongs to the upgrade: the next request dials anew.
            self.origin.release().await;
            let host_side = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                if let (Ok(sandbox_side), Ok(host_side)) = tokio::join!(sandbox_side, host_side) {
                    let mut sandbox_side = TokioIo::new(sandbox_side);
                    let mut host_side = TokioIo::new(host_side);
                    let _ = tokio::io::copy_bidirectional(&mut sandbox_side, &mut host_side).await;
                }
            });
        } else if self.http2 {
            strip_hop_by_hop(response.headers_mut(), false);
        }
        response.map(|body| body.boxed())
    }

    fn log_request(
        &self,
        line: String,
        header_rule: Option<String>,
        status: StatusCode,
        reason: Option<String>,
    ) {
        let opened = &self.opened;
        let decision = if status.is_server_error() {
            Decision::Failed
        } else {
            Decision::Allowed
        };
        let mut e = entry(
            &opened.sandbox.id,
            &opened.host,
            opened.port,
            decision,
            &opened.access_rule,
        );
        e.request = Some(line);
        e.header_rule = header_rule;
        e.status = Some(status.as_u16());
        e.reason = reason;
        opened.shared.log.record(&opened.sandbox.id, e);
    }
}

/// The host a request names: the `:authority` of HTTP/2 (or an absolute-form URI), else
/// the `Host` header.
fn authority(req: &Request<Incoming>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
}

/// Whether `authority` is `host`, with or without the connection's port.
fn is_host(authority: Option<&str>, host: &str, port: u16) -> bool {
    let Some(authority) = authority else {
        return false;
    };
    let authority = authority.to_ascii_lowercase();
    let name = match authority.rsplit_once(':') {
        Some((name, p)) if p.parse() == Ok(port) => name,
        Some(_) => return false,
        None => authority.as_str(),
    };
    name.trim_end_matches('.') == host
}

/// Drop the headers of one hop, and those `Connection` lists. An upgrade keeps `Connection`
/// and `Upgrade`, which carry it.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !(upgrade && *name == UPGRADE))
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        if upgrade && name == "connection" {
            continue;
        }
        if name == "te" && headers.get("te").is_some_and(|v| v == "trailers") {
            continue;
        }
        headers.remove(name);
    }
    if !upgrade {
        headers.remove(UPGRADE);
    }
}

/// `req` in the form the host's protocol wants: HTTP/2 takes the authority in the URI and no
/// `Host`; HTTP/1.1 takes the path in the URI and the authority in `Host`.
fn to_origin(
    mut req: Request<OutBody>,
    http2: bool,
    authority: &str,
    path_and_query: &str,
) -> Request<OutBody> {
    if http2 {
        *req.version_mut() = Version::HTTP_2;
        req.headers_mut().remove(HOST);
        *req.uri_mut() = format!("https://{authority}{path_and_query}")
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
    } else {
        *req.version_mut() = Version::HTTP_11;
        if let Ok(value) = authority.parse() {
            req.headers_mut().insert(HOST, value);
        }
        *req.uri_mut() = path_and_query
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
    }
    req
}

fn text_response(status: StatusCode, text: String) -> Response<Body> {
    let body = Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_must_name_the_host_the_connection_was_opened_to() {
        assert!(is_host(Some("API.test"), "api.test", 443));
        assert!(is_host(Some("api.test:443"), "api.test", 443));
        assert!(is_host(Some("api.test."), "api.test", 443));
        assert!(!is_host(Some("api.test:8443"), "api.test", 443));
        assert!(!is_host(Some("evil.test"), "api.test", 443));
        assert!(!is_host(None, "api.test", 443));
    }

    #[test]
    fn hop_by_hop_headers_stay_behind_unless_they_carry_an_upgrade() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("authorization", "Bearer x"),
        ] {
            headers.append(k, v.parse().unwrap());
        }
        let mut plain = headers.clone();
        strip_hop_by_hop(&mut plain, false);
        let mut left: Vec<_> = plain.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["authorization", "te"]);
        let mut upgrade = headers.clone();
        upgrade.insert("connection", "Upgrade".parse().unwrap());
        strip_hop_by_hop(&mut upgrade, true);
        assert_eq!(upgrade["connection"], "Upgrade");
        assert_eq!(upgrade["upgrade"], "websocket");
    }
}
