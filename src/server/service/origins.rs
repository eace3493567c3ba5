//! Where each service origin lives: its own loopback address with a listener of its own
//! (the default), or a host name under `--service-domain` routed on the main listener. See
//! the module docs of `service` for why each origin must be a distinct host.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::ListenerExt;
use tokio::task::AbortHandle;

use super::tokens::TokenKey;
use super::{Origin, Target, serve_origin};
use crate::server::auth::ApiKey;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use crate::server::store::OriginRecord;

/// How origins are laid out.
#[derive(Debug, Clone)]
pub enum Scheme {
    /// One address of `127.77.0.0/16` per origin; listeners on `preferred_port` (the main
    /// listener's) where free, else on a port the kernel picks.
    Loopback { preferred_port: u16 },
    /// `{sandbox-id}--{port}.{domain}` and `{sandbox-id}--dl.{domain}` on the main listener;
    /// `base` is the scheme and port suffix clients use, e.g. (`https`, ``) or (`http`, `:7433`).
    Domain {
        domain: String,
        scheme: String,
        port_suffix: String,
    },
}

/// How many loopback origins there are: 256 × 254 addresses, skipping `.0` and `.255`.
const SLOTS: u32 = 256 * 254;

fn slot_address(slot: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, (slot / 254) as u8, (slot % 254 + 1) as u8)
}

/// The service URL machinery every handler shares: the signing key, the scheme, and the
/// loopback listeners that are up.
pub struct Services {
    pub(super) key: TokenKey,
    /// The server's API key: on the local backend it stands in for a LangSmith login.
    pub(super) api_key: ApiKey,
    scheme: Scheme,
    /// Listener tasks by slot, with the sandbox they serve.
    listeners: Mutex<HashMap<u32, (String, AbortHandle)>>,
    /// Allocation and binding happen one at a time, so an origin is bound once.
    binding: tokio::sync::Mutex<()>,
}

impl Services {
    pub fn new(key_file: &Path, scheme: Scheme, api_key: ApiKey) -> anyhow::Result<Services> {
        Ok(Services {
            key: TokenKey::load_or_create(key_file)?,
            api_key,
            scheme,
            listeners: Mutex::default(),
            binding: tokio::sync::Mutex::new(()),
        })
    }

    /// The base URL of `origin` (ending in `/`), binding its loopback listener if needed.
    pub(super) async fn base_url(
        &self,
        state: &AppState,
        origin: &Origin,
    ) -> Result<String, ApiError> {
        match &self.scheme {
            Scheme::Domain {
                domain,
                scheme,
                port_suffix,
            } => Ok(format!(
                "{scheme}://{}--{}.{domain}{port_suffix}/",
                origin.sandbox_id,
                origin.target.label()
            )),
            Scheme::Loopback { preferred_port } => {
                let _one_at_a_time = self.binding.lock().await;
                let mut record = state
                    .store
                    .origin_or_allocate(&origin.sandbox_id, &origin.target.label(), SLOTS)
                    .await?;
                if record.port == 0 || !self.is_listening(record.slot) {
                    record.port =
                        self.listen(state, &record, *preferred_port)
                            .await
                            .map_err(|e| {
                                ApiError::Internal(format!("binding a service origin: {e}"))
                            })?;
                    state
                        .store
                        .set_origin_port(record.slot, record.port)
                        .await?;
                }
                Ok(format!(
                    "http://{}:{}/",
                    slot_address(record.slot),
                    record.port
                ))
            }
        }
    }

    fn is_listening(&self, slot: u32) -> bool {
        let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.contains_key(&slot)
    }

    /// Bind `record`'s address — on the port it had, else `preferred`, else any — and serve
    /// its origin there. Returns the port.
    async fn listen(
        &self,
        state: &AppState,
        record: &OriginRecord,
        preferred: u16,
    ) -> std::io::Result<u16> {
        let Some(target) = Target::parse(&record.target) else {
            return Err(std::io::Error::other("unknown origin target in the store"));
        };
        let origin = Origin {
            sandbox_id: record.sandbox_id.clone(),
            target,
        };
        let ip = slot_address(record.slot);
        let mut listener = None;
        let wanted = [record.port, preferred].into_iter().filter(|p| *p != 0);
        for port in wanted.chain([0]) {
            match tokio::net::TcpListener::bind(SocketAddr::from((ip, port))).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(e) if port == 0 => return Err(e),
                Err(_) => continue,
            }
        }
        let listener = listener.expect("the last candidate either binds or returns");
        let port = listener.local_addr()?.port();
        let state = state.clone();
        let app = Router::new().fallback(move |req: Request| {
            let (state, origin) = (state.clone(), origin.clone());
            async move { serve_origin(state, origin, req).await }
        });
        let task = tokio::spawn(async move {
            let listener = listener.tap_io(crate::server::tcp_tuning::tune);
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("a service origin's listener stopped: {e}");
            }
        });
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = listeners.insert(
            record.slot,
            (record.sandbox_id.clone(), task.abort_handle()),
        ) {
            old.abort();
        }
        Ok(port)
    }

    /// Bind the recorded origins again (server start). An origin that cannot be bound is
    /// logged; minting a URL for it binds it afresh.
    pub async fn restore(&self, state: &AppState) {
        if !matches!(self.scheme, Scheme::Loopback { .. }) {
            return;
        }
        let records = match state.store.origins().await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!("cannot read the service origins: {e}");
                return;
            }
        };
        let preferred = match self.scheme {
            Scheme::Loopback { preferred_port } => preferred_port,
            Scheme::Domain { .. } => 0,
        };
        let _one_at_a_time = self.binding.lock().await;
        for record in records {
            match self.listen(state, &record, preferred).await {
                Ok(port) if port != record.port => {
                    let _ = state.store.set_origin_port(record.slot, port).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    "cannot bind the service origin of sandbox {}: {e}",
                    record.sandbox_id
                ),
            }
        }
    }

    /// Stop serving a deleted sandbox's origins (its records go with the sandbox's).
    pub fn release(&self, sandbox_id: &str) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.retain(|_, (owner, task)| {
            let keep = owner != sandbox_id;
            if !keep {
                task.abort();
            }
            keep
        });
    }

    /// The origin a `Host` header names under the service domain, if any.
    fn origin_of_host(&self, host: &str) -> Option<Origin> {
        let Scheme::Domain { domain, .. } = &self.scheme else {
            return None;
        };
        let name = host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        });
        let label = name
            .to_ascii_lowercase()
            .strip_suffix(&format!(".{domain}"))?
            .to_string();
        let (sandbox_id, target) = label.rsplit_once("--")?;
        if sandbox_id.is_empty() || label.contains('.') {
            return None;
        }
        Some(Origin {
            sandbox_id: sandbox_id.to_string(),
            target: Target::parse(target)?,
        })
    }
}

/// Middleware on the main listener: with a service domain, requests whose `Host` names a
/// service or download origin are served as such (never as the API, and without the API
/// key); everything else goes on to the API.
pub async fn by_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|host| state.services.origin_of_host(host));
    match origin {
        Some(origin) => serve_origin(state, origin, req).await,
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Services {
        Services {
            key: TokenKey::fixed(1),
            api_key: ApiKey(std::sync::Arc::new("k".into())),
            scheme: Scheme::Domain {
                domain: "svc.example.com".into(),
                scheme: "https".into(),
                port_suffix: String::new(),
            },
            listeners: Mutex::default(),
            binding: tokio::sync::Mutex::new(()),
        }
    }

    #[test]
    fn hosts_under_the_service_domain_name_their_origin() {
        let services = domain();
        let id = "6f1f0c2e-1111-2222-3333-444455556666";
        assert_eq!(
            services.origin_of_host(&format!("{id}--3000.svc.example.com:8443")),
            Some(Origin {
                sandbox_id: id.into(),
                target: Target::Port(3000)
            })
        );
        assert_eq!(
            services.origin_of_host(&format!("{}--DL.SVC.example.com", id.to_uppercase())),
            Some(Origin {
                sandbox_id: id.into(),
                target: Target::Download
            })
        );
        for host in [
            "svc.example.com",
            "127.0.0.1:7433",
            "a--0.svc.example.com",
            "a--x.svc.example.com",
            "b.a--80.svc.example.com",
            "a--80.svc.example.com.evil.org",
        ] {
            assert_eq!(services.origin_of_host(host), None, "{host}");
        }
    }

    #[test]
    fn slots_map_to_distinct_addresses_that_skip_network_and_broadcast() {
        assert_eq!(slot_address(0), Ipv4Addr::new(127, 77, 0, 1));
        assert_eq!(slot_address(253), Ipv4Addr::new(127, 77, 0, 254));
        assert_eq!(slot_address(254), Ipv4Addr::new(127, 77, 1, 1));
        assert_eq!(slot_address(SLOTS - 1), Ipv4Addr::new(127, 77, 255, 254));
    }
}
