//! Sandbox names and snapshot ids for completion: fetched through the client the first time a
//! completion needs them and kept for a few seconds, so pressing Tab repeatedly does not hit
//! the API each time while new sandboxes still show up soon.
//!
//! A completion waits at most [`LOOKUP_LIMIT`] in all (finding the server, its health check
//! and the list), and it never starts the local backend nor prints anything: with nothing
//! configured and no local backend running it offers nothing, as it does when the lookup
//! fails or runs out of time. The first call of a script starts the backend as usual.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::context::NameKind;
use crate::script::Bridge;

/// How long fetched names are trusted.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// A completion never waits longer than this for names.
const LOOKUP_LIMIT: Duration = Duration::from_secs(5);

/// One completion candidate: what is inserted and what the list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub value: String,
    pub label: String,
}

type Cached = Option<(Instant, Vec<Named>)>;

pub struct NameCache {
    bridge: Arc<Bridge>,
    sandboxes: Mutex<Cached>,
    snapshots: Mutex<Cached>,
}

impl NameCache {
    pub fn new(bridge: Arc<Bridge>) -> Self {
        NameCache {
            bridge,
            sandboxes: Mutex::new(None),
            snapshots: Mutex::new(None),
        }
    }

    /// Names of `kind` starting with `prefix`.
    pub fn matching(&self, kind: NameKind, prefix: &str) -> Vec<Named> {
        let slot = match kind {
            NameKind::Sandbox => &self.sandboxes,
            NameKind::Snapshot => &self.snapshots,
        };
        let mut cached = slot.lock().unwrap_or_else(|e| e.into_inner());
        let stale = cached
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > FRESH_FOR);
        if stale && let Some(names) = self.fetch(kind) {
            *cached = Some((Instant::now(), names));
        }
        cached
            .as_ref()
            .map(|(_, names)| {
                names
                    .iter()
                    .filter(|n| n.value.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The names from the API, or `None` when there is no server to ask without starting one,
    /// or it fails or takes longer than [`LOOKUP_LIMIT`] (finding the server included).
    fn fetch(&self, kind: NameKind) -> Option<Vec<Named>> {
        let lookup = async {
            let client = self.bridge.existing_client().await?;
            let names = match kind {
                NameKind::Sandbox => client
                    .list_sandboxes()
                    .await
                    .ok()?
                    .into_iter()
                    .map(|s| Named {
                        label: format!("{} ({})", s.name, s.status),
                        value: s.name,
                    })
                    .collect(),
                NameKind::Snapshot => client
                    .list_snapshots()
                    .await
                    .ok()?
                    .into_iter()
                    .map(|s| Named {
                        label: format!("{} ({})", s.id, s.name),
                        value: s.id,
                    })
                    .collect(),
            };
            Some(names)
        };
        // The timer is made inside the runtime: this thread is not one of its workers.
        let fetched = self
            .bridge
            .block_on(async { tokio::time::timeout(LOOKUP_LIMIT, lookup).await });
        fetched.ok()?.ok()?
    }
}
