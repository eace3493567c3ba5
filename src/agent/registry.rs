//! The agent's command sessions by `command_id`: get-or-create (a repeated `execute` never
//! spawns twice), lookup for `reconnect`, and removal when a finished session expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::lifecycle;
use super::session::{Policy, Session};
use super::spawn::{SpawnError, SpawnRequest, spawn};

/// Shared registry of live and retained sessions.
pub struct Registry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Bytes retained per output stream of each session.
    retained_bytes: usize,
}

/// A session to start: what to run and how long it may live.
pub struct StartRequest {
    pub spawn: SpawnRequest,
    pub policy: Policy,
    pub timeout: Option<Duration>,
}

impl Registry {
    pub fn new(retained_bytes: usize) -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            retained_bytes,
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().get(id).cloned()
    }

    /// The session named `id`, started from `request` if it does not exist yet. The lock is
    /// held across the spawn so two racing starts with one id cannot both spawn.
    pub fn get_or_start(
        self: &Arc<Self>,
        id: &str,
        request: StartRequest,
    ) -> Result<Arc<Session>, SpawnError> {
        let mut sessions = self.lock();
        if let Some(existing) = sessions.get(id) {
            return Ok(Arc::clone(existing));
        }
        let session = self.start_session(id, request, true)?;
        sessions.insert(id.to_string(), Arc::clone(&session));
        Ok(session)
    }

    /// Starts a session that is never registered (the legacy one-shot `POST /execute`).
    pub fn start_unregistered(
        self: &Arc<Self>,
        id: &str,
        request: StartRequest,
    ) -> Result<Arc<Session>, SpawnError> {
        self.start_session(id, request, false)
    }

    /// Spawns the session's command. `for_a_reader`: the caller attaches right after, and
    /// every byte is kept until it has (see [`lifecycle::start`]).
    fn start_session(
        self: &Arc<Self>,
        id: &str,
        request: StartRequest,
        for_a_reader: bool,
    ) -> Result<Arc<Session>, SpawnError> {
        let spawned = spawn(&request.spawn)?;
        let registry: Weak<Registry> = Arc::downgrade(self);
        Ok(lifecycle::start(
            id.to_string(),
            spawned,
            request.policy,
            request.timeout,
            self.retained_bytes,
            for_a_reader,
            move |expired| {
                if let Some(registry) = registry.upgrade() {
                    registry.remove(expired);
                }
            },
        ))
    }

    /// Forgets `session` unless its id has meanwhile been taken by another session.
    fn remove(&self, session: &Arc<Session>) {
        let mut sessions = self.lock();
        if sessions
            .get(&session.id)
            .is_some_and(|current| Arc::ptr_eq(current, session))
        {
            sessions.remove(&session.id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
