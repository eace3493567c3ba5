//! Warm sandboxes: a few sandboxes started ahead of time for the kind of create last asked
//! for, so the next create of that kind adopts a running one instead of booting its own.
//!
//! A create's *kind* is the runtime spec it boots with, less what a running sandbox can
//! still take on: its id, hostname and limits (the runtime's live settings). A create that
//! finds a warm sandbox of its kind takes it before its record is written: the record gets
//! the warm sandbox's id, and its boot (the usual `lifecycle::spawn_boot`) finds the
//! container running, gives it the create's name and limits, then hands its network (set
//! up ahead too) to the egress proxy with the create's policy. A warm sandbox has no
//! record, so the API never shows one.
//!
//! The pool holds at most `size` warm sandboxes, all of the kind last asked for. A create of
//! another kind makes its kind the wanted one: the others are destroyed and one of the new
//! kind is started (a stream of creates that all differ costs one extra start each, not
//! `size`). A create that takes one has the pool refilled up to `size`. One warm sandbox
//! starts at a time, so the pool never takes more than one start's share of the machine.
//!
//! Warm sandboxes go when no create has asked for their kind for a while (the reaper calls
//! [`WarmPool::expire`]), when their snapshot is deleted and when the server stops; those a
//! crash left are containers without a record, which recovery destroys at the next start.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::runtime::network::EgressSockets;
use crate::runtime::{Runtime, SandboxSpec};

/// The hostname of a warm sandbox until a create names it.
const PLACEHOLDER_HOSTNAME: &str = "warm";

/// Warm sandboxes and the kind they are kept for. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct WarmPool {
    size: usize,
    runtime: Runtime,
    pool: Arc<Mutex<Pool>>,
}

#[derive(Default)]
struct Pool {
    /// The spec of the last create: its kind is the one kept warm, and new warm sandboxes
    /// start with its limits.
    wanted: Option<SandboxSpec>,
    /// How many of the wanted kind to keep: 1 after a create that found none, `size` after
    /// one that took one.
    target: usize,
    /// When a create last asked for the wanted kind.
    asked_at: Option<Instant>,
    /// Started and ready to be taken.
    ready: Vec<Warm>,
    /// The network of warm sandboxes taken but not booted yet, by id.
    handed: HashMap<String, EgressSockets>,
    /// The kind whose last warm start failed: not tried again until a create asks for it.
    failed: Option<Kind>,
    /// Snapshot images being deleted: never warmed again.
    retired: HashSet<PathBuf>,
    /// The task starting or destroying warm sandboxes, until it decides to end.
    filling: Option<JoinHandle<()>>,
    /// The server is stopping: nothing more starts.
    closed: bool,
}

struct Warm {
    id: String,
    kind: Kind,
    /// Its network, set up ahead too (that runs `nft` and sets the links over rtnetlink).
    egress: EgressSockets,
}

/// A spec with the parts a running sandbox can take on blanked out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kind(SandboxSpec);

impl Kind {
    fn of(spec: &SandboxSpec) -> Kind {
        Kind(SandboxSpec {
            id: String::new(),
            hostname: String::new(),
            cpu_millicores: 0,
            mem_bytes: 0,
            pids_limit: 0,
            ..spec.clone()
        })
    }
}

impl WarmPool {
    /// A pool of at most `size` warm sandboxes on `runtime`; 0 turns it off.
    pub fn new(size: usize, runtime: Runtime) -> WarmPool {
        WarmPool {
            size,
            runtime,
            pool: Arc::default(),
        }
    }

    /// Whether the pool keeps sandboxes warm at all (`--warm-pool 0` turns it off).
    pub fn is_on(&self) -> bool {
        self.size > 0
    }

    /// A warm sandbox of `spec`'s kind, if one is ready; and `spec`'s kind becomes the one
    /// kept warm. The sandbox goes back to the pool unless [`Taken::keep`] is called.
    pub fn take(&self, spec: &SandboxSpec) -> Option<Taken> {
        if self.size == 0 {
            return None;
        }
        let kind = Kind::of(spec);
        let mut pool = self.lock();
        if pool.closed || pool.retired.contains(&spec.snapshot_image) {
            return None;
        }
        let taken = pool
            .ready
            .iter()
            .position(|warm| warm.kind == kind)
            .map(|at| pool.ready.remove(at))
            .map(|warm| {
                pool.handed.insert(warm.id.clone(), warm.egress);
                warm.id
            });
        let same_kind = pool.wanted.as_ref().is_some_and(|w| Kind::of(w) == kind);
        if taken.is_some() {
            pool.target = self.size;
        } else if !same_kind {
            // A kind asked for once gets one; it earns `size` when a create takes one.
            pool.target = 1;
        }
        if pool.failed.as_ref() == Some(&kind) {
            // Asked for again: worth another try.
            pool.failed = None;
        }
        pool.wanted = Some(spec.clone());
        pool.asked_at = Some(Instant::now());
        self.fill_in_background(pool);
        taken.map(|id| Taken {
            id: Some(id),
            spec: spec.clone(),
            pool: self.clone(),
        })
    }

    /// Returns a sandbox [`take`](Self::take) gave out but the create could not use.
    fn give_back(&self, id: String, spec: &SandboxSpec) {
        let mut pool = self.lock();
        let egress = pool.handed.remove(&id);
        match egress {
            Some(egress) if !pool.closed => {
                let kind = Kind::of(spec);
                pool.ready.push(Warm { id, kind, egress });
                self.fill_in_background(pool);
            }
            _ => {
                let pool = self.clone();
                tokio::spawn(async move { pool.destroy_all(vec![id]).await });
            }
        }
    }

    /// The network sockets of the taken warm sandbox `id`, once: its boot attaches them.
    pub fn prepared_egress(&self, id: &str) -> Option<EgressSockets> {
        self.lock().handed.remove(id)
    }

    /// Destroys the warm sandboxes of the snapshot image `image` (being deleted), and stops
    /// keeping its kind warm.
    pub async fn drain_snapshot(&self, image: &Path) {
        let gone = {
            let mut pool = self.lock();
            pool.retired.insert(image.to_path_buf());
            if pool
                .wanted
                .as_ref()
                .is_some_and(|spec| spec.snapshot_image == image)
            {
                pool.wanted = None;
            }
            take_where(&mut pool.ready, |warm| warm.kind.0.snapshot_image == image)
        };
        self.destroy_all(gone).await;
    }

    /// Stops keeping a kind warm that no create has asked for in `keep`.
    pub fn expire(&self, keep: Duration) {
        let mut pool = self.lock();
        if pool.asked_at.is_some_and(|at| at.elapsed() >= keep) {
            pool.wanted = None;
            pool.asked_at = None;
            self.fill_in_background(pool);
        }
    }

    /// Destroys every warm sandbox and starts no more: the server is stopping. Returns once
    /// a start under way has ended and its sandbox is destroyed too.
    pub async fn close(&self) {
        let running = {
            let mut pool = self.lock();
            pool.closed = true;
            pool.filling.take()
        };
        if let Some(task) = running {
            let _ = task.await;
        }
        let gone = take_where(&mut self.lock().ready, |_| true);
        self.destroy_all(gone).await;
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // The pool's state stays consistent across a panic: every change is one assignment.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fill_in_background(&self, mut pool: MutexGuard<'_, Pool>) {
        // The task clears `filling` under this lock when it decides to end, so a change it
        // did not see always starts a new one.
        if pool.filling.is_some() || pool.closed {
            return;
        }
        pool.filling = Some(tokio::spawn(self.clone().fill()));
    }

    /// Destroys warm sandboxes of other kinds and starts ones of the wanted kind, one at a
    /// time, until the pool holds its target.
    async fn fill(self) {
        loop {
            let (unwanted, next) = {
                let mut pool = self.lock();
                let wanted = pool.wanted.clone().filter(|_| !pool.closed);
                let wanted_kind = wanted.as_ref().map(Kind::of);
                let unwanted = take_where(&mut pool.ready, |warm| {
                    Some(&warm.kind) != wanted_kind.as_ref()
                });
                let next = wanted.filter(|spec| {
                    pool.ready.len() < pool.target.min(self.size)
                        && pool.failed.as_ref() != Some(&Kind::of(spec))
                        && !pool.retired.contains(&spec.snapshot_image)
                });
                if unwanted.is_empty() && next.is_none() {
                    pool.filling = None;
                    return;
                }
                (unwanted, next)
            };
            self.destroy_all(unwanted).await;
            let Some(template) = next else { continue };
            // Started even after a close, then destroyed by the next round: `close` waits.
            let spec = SandboxSpec {
                id: uuid::Uuid::new_v4().to_string(),
                hostname: PLACEHOLDER_HOSTNAME.to_string(),
                ..template
            };
            let started = match self.runtime.start(&spec).await {
                Ok(_) => self.runtime.open_egress(&spec.id).await,
                Err(e) => Err(e),
            };
            let egress = match started {
                Ok(egress) => egress,
                Err(e) => {
                    // Not retried until a create asks for the kind again: one that cannot
                    // start would otherwise start and fail forever. The round goes on, for
                    // what else changed meanwhile.
                    tracing::warn!("starting a warm sandbox failed: {e}");
                    self.destroy_all(vec![spec.id.clone()]).await;
                    self.lock().failed = Some(Kind::of(&spec));
                    continue;
                }
            };
            tracing::debug!(sandbox = %spec.id, "warm sandbox ready");
            // Kept even if the wanted kind changed meanwhile: the next round destroys it.
            let mut pool = self.lock();
            let kind = Kind::of(&spec);
            pool.ready.push(Warm {
                id: spec.id,
                kind,
                egress,
            });
        }
    }

    /// Destroys warm sandboxes, all at once (the runtime bounds its own teardowns).
    async fn destroy_all(&self, ids: Vec<String>) {
        let destroys = ids.into_iter().map(|id| async move {
            if let Err(e) = self.runtime.destroy(&id).await {
                tracing::warn!(sandbox = %id, "destroying a warm sandbox failed: {e}");
            }
        });
        futures_util::future::join_all(destroys).await;
    }
}

/// A warm sandbox [`WarmPool::take`] gave a create: back to the pool when dropped (the
/// create failed, or its client hung up before its record was written) unless kept.
pub struct Taken {
    id: Option<String>,
    spec: SandboxSpec,
    pool: WarmPool,
}

impl Taken {
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// The create's record holds it now: its boot takes it over.
    pub fn keep(mut self) {
        self.id = None;
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.pool.give_back(id, &self.spec);
        }
    }
}

/// Removes and returns the ids of the warm sandboxes `matches` picks.
fn take_where(ready: &mut Vec<Warm>, matches: impl Fn(&Warm) -> bool) -> Vec<String> {
    let (gone, kept): (Vec<Warm>, Vec<Warm>) = std::mem::take(ready).into_iter().partition(matches);
    *ready = kept;
    gone.into_iter().map(|warm| warm.id).collect()
}
