//! Sandbox names and snapshot ids for completion: fetched through the client the first time a
//! completion needs them and kept for a few seconds, so pressing Tab repeatedly does not hit
//! the API each time while new sandboxes still show up soon. A failed or slow fetch offers
//! nothing rather than disturbing the prompt.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::context::NameKind;
use crate::script::Bridge;

/// How long fetched names are trusted.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// A completion never waits longer than this for the API.
const FETCH_LIMIT: Duration = Duration::from_secs(5);

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

    fn fetch(&self, kind: NameKind) -> Option<Vec<Named>> {
        let client = self.bridge.client().ok()?;
        let fetched = self.bridge.block_on(async move {
            let list = async {
                match kind {
                    NameKind::Sandbox => client.list_sandboxes().await.map(|list| {
                        list.into_iter()
                            .map(|s| Named {
                                label: format!("{} ({})", s.name, s.status),
                                value: s.name,
                            })
                            .collect::<Vec<_>>()
                    }),
                    NameKind::Snapshot => client.list_snapshots().await.map(|list| {
                        list.into_iter()
                            .map(|s| Named {
                                label: format!("{} ({})", s.id, s.name),
                                value: s.id,
                            })
                            .collect()
                    }),
                }
            };
            tokio::time::timeout(FETCH_LIMIT, list).await
        });
        fetched.ok()?.ok()?.ok()
    }
}
