//! [`Egress`]: the proxy's one task and the state of each sandbox it serves.
//!
//! A sandbox attached here brings two sockets opened inside its network namespace (see
//! `runtime::network`): the listener its redirected TCP connections arrive on and the DNS
//! stub's UDP socket. One task for the whole server waits on all of them, so an idle
//! sandbox costs no task of its own; each accepted connection then gets its own task for as
//! long as it lasts. Detaching ends the sandbox's streams, which closes its sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::access::AccessControl;
use super::connection;
use super::dns_stub;
use super::egress_log::EgressLog;
use super::injection::Injection;
use super::names::NamePool;
use super::tls::TlsConfigs;
use super::upstream::UpstreamConfig;

/// The largest DNS datagram the stub reads.
const DNS_DATAGRAM: usize = 4096;
/// Pause after a failed accept (e.g. out of descriptors), instead of spinning on it.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What a sandbox's connections are judged by: where they may go, and the headers set on
/// their requests to hosts the header rules match.
#[derive(Debug, Default)]
pub struct Policy {
    pub access: AccessControl,
    pub injection: Injection,
}

/// What the proxy knows of one sandbox.
pub(super) struct SandboxEgress {
    pub id: String,
    pub policy: RwLock<Arc<Policy>>,
    pub names: Mutex<NamePool>,
    /// Bytes its aws rule may hold read to sign them, across all its requests.
    pub signing_budget: Arc<tokio::sync::Semaphore>,
    dns: Arc<UdpSocket>,
    stop: CancellationToken,
}

impl SandboxEgress {
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Shared by the hub and every connection task.
pub(super) struct Shared {
    pub upstream: UpstreamConfig,
    pub log: EgressLog,
    pub tls: TlsConfigs,
    /// The server's own HTTP client for gcp rules' token endpoints (same trust as upstreams).
    pub token_http: reqwest::Client,
}

enum Event {
    Connection(std::io::Result<(TcpStream, SocketAddr)>),
    Query(std::io::Result<(Vec<u8>, SocketAddr)>),
}

type SandboxEvents = BoxStream<'static, (Arc<SandboxEgress>, Event)>;

/// The egress proxy of a server. Cheap to clone.
#[derive(Clone)]
pub struct Egress {
    shared: Arc<Shared>,
    sandboxes: Arc<Mutex<HashMap<String, Arc<SandboxEgress>>>>,
    add: mpsc::UnboundedSender<SandboxEvents>,
}

impl Egress {
    /// Start the proxy's task (on the current tokio runtime).
    pub fn start(upstream: UpstreamConfig, log: EgressLog, tls: TlsConfigs) -> Egress {
        let (add, added) = mpsc::unbounded_channel();
        let token_http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls.client_http11).clone())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            upstream,
            log,
            tls,
            token_http,
        });
        tokio::spawn(serve(shared.clone(), added));
        Egress {
            shared,
            sandboxes: Arc::default(),
            add,
        }
    }

    /// The log of the proxy's decisions.
    pub fn log(&self) -> &EgressLog {
        &self.shared.log
    }

    /// Serve sandbox `id` on the sockets opened in its namespace, judged by `policy`.
    /// Replaces an earlier attachment of the same sandbox.
    pub fn attach(
        &self,
        id: &str,
        proxy: std::net::TcpListener,
        dns: std::net::UdpSocket,
        policy: Policy,
    ) -> std::io::Result<()> {
        let listener = TcpListener::from_std(proxy)?;
        let dns = Arc::new(UdpSocket::from_std(dns)?);
        let sandbox = Arc::new(SandboxEgress {
            id: id.to_string(),
            policy: RwLock::new(Arc::new(policy)),
            names: Mutex::new(NamePool::new()),
            signing_budget: Arc::new(tokio::sync::Semaphore::new(
                crate::proxy::sigv4::SIGNING_BUDGET,
            )),
            dns: dns.clone(),
            stop: CancellationToken::new(),
        });
        let accepts = stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await;
            if accepted.is_err() {
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
            Some((Event::Connection(accepted), listener))
        });
        let queries = stream::unfold(dns, |socket| async move {
            let mut buf = vec![0; DNS_DATAGRAM];
            let received = socket.recv_from(&mut buf).await.map(|(n, from)| {
                buf.truncate(n);
                (buf, from)
            });
            Some((Event::Query(received), socket))
        });
        let owner = sandbox.clone();
        let events = stream::select(accepts, queries)
            .map(move |event| (owner.clone(), event))
            .take_until(sandbox.stop.clone().cancelled_owned())
            .boxed();
        let old = self
            .sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), sandbox);
        if let Some(old) = old {
            old.stop.cancel();
        }
        let _ = self.add.send(events);
        Ok(())
    }

    /// Stop serving sandbox `id` (its sockets close); connections already open run on until
    /// either side ends them (the sandbox's stop ends its side).
    pub fn detach(&self, id: &str) {
        let removed = self
            .sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(sandbox) = removed {
            sandbox.stop.cancel();
        }
    }

    /// Judge the next connections, requests and DNS answers of sandbox `id` by `policy`.
    pub fn set_policy(&self, id: &str, policy: Policy) {
        let sandboxes = self.sandboxes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sandbox) = sandboxes.get(id) {
            *sandbox.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
        }
    }

    /// Whether sandbox `id` is attached.
    pub fn is_attached(&self, id: &str) -> bool {
        self.sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }
}

/// The proxy's one task: every attached sandbox's accepts and DNS queries.
async fn serve(shared: Arc<Shared>, mut added: mpsc::UnboundedReceiver<SandboxEvents>) {
    let mut all: SelectAll<SandboxEvents> = SelectAll::new();
    loop {
        tokio::select! {
            events = added.recv() => match events {
                Some(events) => all.push(events),
                None => return,
            },
            Some((sandbox, event)) = all.next(), if !all.is_empty() => match event {
                Event::Connection(Ok((client, _))) => {
                    tokio::spawn(connection::handle(shared.clone(), sandbox, client));
                }
                Event::Connection(Err(e)) => {
                    tracing::warn!(sandbox = %sandbox.id, "egress accept failed: {e}");
                }
                Event::Query(Ok((query, from))) => answer_query(&sandbox, &query, from),
                Event::Query(Err(_)) => {}
            },
        }
    }
}

/// Answer one DNS query from the sandbox's pool. The reply goes out without waiting: a
/// full socket buffer drops it, as a lost datagram would be.
fn answer_query(sandbox: &SandboxEgress, query: &[u8], from: SocketAddr) {
    let reply = {
        let mut names = sandbox.names.lock().unwrap_or_else(|p| p.into_inner());
        dns_stub::answer(query, &mut names)
    };
    if let Some(reply) = reply {
        let _ = sandbox.dns.try_send_to(&reply, from);
    }
}
