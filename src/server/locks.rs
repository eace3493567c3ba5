//! One lifecycle lock per sandbox, so runtime operations on one sandbox (boot, stop,
//! destroy, capture, discarding its files) never interleave. This is the only lock map:
//! the runtime relies on its callers to serialise per sandbox.
//!
//! Locks are made on first use and removed once nobody holds or awaits them, so the map
//! holds only sandboxes with work in flight. Handing out a lock and removing it both happen
//! under the map's mutex, and removal requires that the map's reference is the last one, so
//! there is never more than one live lock for a sandbox.
//!
//! Record changes do not need these locks: [`super::store::Store::modify_sandbox`] is atomic
//! on its own. A lock is held only around runtime work and the record of its outcome, which
//! is why a request that only changes the record never waits behind a boot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Lock = Arc<tokio::sync::Mutex<()>>;
type Map = Arc<Mutex<HashMap<String, Lock>>>;

/// The lifecycle locks of every sandbox (cheap to clone).
#[derive(Clone, Default)]
pub struct SandboxLocks {
    map: Map,
}

/// Holds a sandbox's lifecycle lock until dropped.
pub struct SandboxGuard {
    // Field order matters: the lock is released before the claim checks whether it can go.
    _held: tokio::sync::OwnedMutexGuard<()>,
    _claim: Claim,
}

/// A reference to a sandbox's lock taken from the map; when the last claim goes, so does
/// the map's entry.
struct Claim {
    map: Map,
    id: String,
    lock: Option<Lock>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        drop(self.lock.take());
        // Every other reference was handed out under this mutex by a claim still alive, so
        // a count of one (the map's) means nobody holds or awaits the lock.
        if map.get(&self.id).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&self.id);
        }
    }
}

impl SandboxLocks {
    /// Wait for sandbox `id`'s lock. Dropping the future while it waits gives up its place.
    pub async fn lock(&self, id: &str) -> SandboxGuard {
        let claim = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            Claim {
                map: self.map.clone(),
                id: id.to_string(),
                lock: Some(map.entry(id.to_string()).or_default().clone()),
            }
        };
        let lock = claim
            .lock
            .clone()
            .expect("a claim holds its lock until dropped");
        SandboxGuard {
            _held: lock.lock_owned().await,
            _claim: claim,
        }
    }

    /// Whether some task holds or awaits sandbox `id`'s lock right now (the tests' view of
    /// the map: an entry must go with its last claim).
    #[cfg(test)]
    fn busy(&self, id: &str) -> bool {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.contains_key(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_is_exclusive_and_goes_once_released() {
        let locks = SandboxLocks::default();
        let first = locks.lock("a").await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move {
                let _second = locks.lock("a").await;
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let _other = locks.lock("b").await;
        drop(first);
        waiting.await.unwrap();
        assert!(!locks.busy("a"));
        assert!(locks.busy("b"));
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_nothing_behind() {
        let locks = SandboxLocks::default();
        let held = locks.lock("a").await;
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(1), locks.lock("a")).await;
        assert!(gave_up.is_err());
        assert!(locks.busy("a"));
        drop(held);
        assert!(!locks.busy("a"));
    }
}
