//! The real host behind an opened connection, as an HTTP client: dialled (through
//! `upstream`, so every address check and `--upstream-proxy` still apply) on the first
//! request, TLS verified against the host's trust store, HTTP/2 when the host offers it and
//! the sandbox speaks it, and dialled again when the host closed its side between requests.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use super::hub::Shared;
use super::tls::H2;
use super::upstream::{DialError, Target};

/// Why a request could not be sent to the real host.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("TLS with {host}: {error}")]
    Tls { host: String, error: std::io::Error },
    #[error("HTTP with {host}: {error}")]
    Http { host: String, error: hyper::Error },
}

/// What a request's body is on its way to the host: the sandbox's, as it streams in, or
/// one the proxy read whole (to hash it for a signature).
pub type OutBody = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

enum Sender {
    Http1(http1::SendRequest<OutBody>),
    Http2(http2::SendRequest<OutBody>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }
}

/// One sandbox connection's way to the real host.
pub struct Origin {
    shared: Arc<Shared>,
    host: String,
    port: u16,
    tls: Arc<ClientConfig>,
    sender: Mutex<Option<Sender>>,
}

impl Origin {
    /// The way to `host:port`; `tls` says which protocols to offer it.
    pub fn new(shared: Arc<Shared>, host: &str, port: u16, tls: Arc<ClientConfig>) -> Origin {
        Origin {
            shared,
            host: host.to_string(),
            port,
            tls,
            sender: Mutex::new(None),
        }
    }

    /// Send the request `make(http2)` builds for the protocol the host speaks, and wait for
    /// the response head.
    pub async fn send(
        &self,
        make: impl FnOnce(bool) -> Request<OutBody>,
    ) -> Result<Response<Incoming>, OriginError> {
        let http = |error| OriginError::Http {
            host: self.host.clone(),
            error,
        };
        let mut sender = self.sender.lock().await;
        if sender.as_ref().is_none_or(Sender::is_closed) {
            *sender = Some(self.connect().await?);
        }
        match sender.as_mut().expect("connected above") {
            Sender::Http2(h2) => {
                // Multiplexed: the lock is not held while the host answers.
                let mut h2 = h2.clone();
                drop(sender);
                h2.send_request(make(true)).await.map_err(http)
            }
            // One request at a time: the lock is held until the response head arrives, and
            // the next request waits until this one's body is done.
            Sender::Http1(h1) => {
                h1.ready().await.map_err(http)?;
                h1.send_request(make(false)).await.map_err(http)
            }
        }
    }

    /// Forget the connection (after it was handed over to an upgrade).
    pub async fn release(&self) {
        *self.sender.lock().await = None;
    }

    async fn connect(&self) -> Result<Sender, OriginError> {
        let tcp = self
            .shared
            .upstream
            .dial(&Target::Host(self.host.clone()), self.port)
            .await?;
        let _ = tcp.set_nodelay(true);
        let tls_error = |error| OriginError::Tls {
            host: self.host.clone(),
            error,
        };
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| tls_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(tls_error)?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(H2);
        let io = TokioIo::new(tls);
        let http = |error| OriginError::Http {
            host: self.host.clone(),
            error,
        };
        if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(http)?;
            tokio::spawn(conn);
            Ok(Sender::Http2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(http)?;
            tokio::spawn(conn.with_upgrades());
            Ok(Sender::Http1(sender))
        }
    }
}
