//! An HTTPS upstream on loopback that tells what it was sent, for the auth proxy tests: its
//! certificate is signed by a test CA of its own (passed to the server with `--upstream-ca`),
//! it speaks HTTP/2 and HTTP/1.1 with keep-alive, and answers a WebSocket upgrade.
//!
//! Every request is answered `200 text/plain` with lines `authorization: …`, `path: …`
//! (with the query), `version: …`, `x-account: …`, then `hdr NAME: VALUE` for every header
//! received (and `hdr :authority: …` on HTTP/2). An upgrade gets `101` with the
//! `Authorization` it saw in `X-Seen-Authorization`, then echoes every byte back. It serves a
//! bounded number of connections.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

pub struct EchoUpstream {
    pub port: u16,
    /// The test CA (PEM) that signed the upstream's certificate.
    pub ca_pem: String,
}

impl EchoUpstream {
    /// Serve `names` on a loopback port, at most `connections` connections.
    pub fn start(names: &[&str], connections: usize) -> EchoUpstream {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "echo upstream test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                for _ in 0..connections {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    // As real servers do: without it, Nagle's algorithm against delayed ACKs
                    // adds tens of milliseconds to some answers and swamps what is measured.
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        let io = TokioIo::new(tls);
                        let service = service_fn(answer);
                        if h2 {
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, service)
                                .await;
                        } else {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .with_upgrades()
                                .await;
                        }
                    });
                }
                // Let the last connections finish.
                std::future::pending::<()>().await;
            });
        });
        EchoUpstream {
            port,
            ca_pem: ca_cert.pem(),
        }
    }
}

impl EchoUpstream {
    /// Flags for `langsmith server` that send `hosts` (on 443) to this upstream, trust its
    /// CA (written into `dir`) and allow loopback upstreams; `extra_pins` are more
    /// `--resolve` values.
    pub fn server_args(
        &self,
        dir: &std::path::Path,
        hosts: &[&str],
        extra_pins: &[String],
    ) -> Vec<String> {
        let ca = dir.join("upstream-ca.pem");
        std::fs::write(&ca, &self.ca_pem).unwrap();
        let mut args: Vec<String> = vec![
            "--allow-private-cidr".into(),
            "127.0.0.0/8".into(),
            "--upstream-ca".into(),
            ca.to_str().unwrap().into(),
        ];
        let pins = hosts
            .iter()
            .map(|host| format!("{host}:443=127.0.0.1:{}", self.port))
            .chain(extra_pins.iter().cloned());
        for pin in pins {
            args.extend(["--resolve".into(), pin]);
        }
        args
    }
}

async fn answer(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let seen = |name: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let authorization = seen("authorization");
    if let Some(key) = req.headers().get("sec-websocket-key").cloned() {
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let (mut read, mut write) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut read, &mut write).await;
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-accept", accept)
            .header("x-seen-authorization", authorization)
            .body(Full::default())
            .unwrap();
        return Ok(response);
    }
    let mut text = format!(
        "authorization: {authorization}\npath: {}\nversion: {:?}\nx-account: {}\n",
        req.uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string()),
        req.version(),
        seen("x-account"),
    );
    // Every header as received, for checks that need them all (a signature's).
    if let Some(authority) = req.uri().authority() {
        text.push_str(&format!("hdr :authority: {authority}\n"));
    }
    for (name, value) in req.headers() {
        text.push_str(&format!(
            "hdr {name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    Ok(Response::new(Full::new(Bytes::from(text))))
}
