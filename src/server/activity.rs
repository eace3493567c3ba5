//! Data-plane activity per sandbox, kept in memory for the idle reaper: when the last
//! request ended, and how many are in flight right now (a long command, a download or an
//! open exec WebSocket counts as activity for as long as it lasts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

#[derive(Default)]
struct Entry {
    last: Option<DateTime<Utc>>,
    open: usize,
}

/// Shared activity table (cheap to clone).
#[derive(Clone, Default)]
pub struct Activity {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

/// Keeps a sandbox active while held (a request in flight, an open WebSocket).
pub struct ActiveGuard {
    activity: Activity,
    id: String,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.activity.update(&self.id, |e| {
            e.open = e.open.saturating_sub(1);
            e.last = Some(Utc::now());
        });
    }
}

impl Activity {
    fn update(&self, id: &str, f: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(entries.entry(id.to_string()).or_default());
    }

    /// The sandbox stays active until the returned guard is dropped.
    pub fn hold(&self, id: &str) -> ActiveGuard {
        self.update(id, |e| {
            e.open += 1;
            e.last = Some(Utc::now());
        });
        ActiveGuard {
            activity: self.clone(),
            id: id.to_string(),
        }
    }

    /// When the sandbox was last active: `None` if never seen, `now` while a request is open.
    pub fn last_active(&self, id: &str) -> Option<DateTime<Utc>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(id)?;
        if e.open > 0 { Some(Utc::now()) } else { e.last }
    }

    /// Drop what is known about a sandbox that is gone.
    pub fn forget(&self, id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.get(id).is_some_and(|e| e.open == 0) {
            entries.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_socket_keeps_a_sandbox_active_until_closed() {
        let activity = Activity::default();
        assert!(activity.last_active("a").is_none());
        let guard = activity.hold("a");
        let while_open = activity.last_active("a").unwrap();
        let later = activity.last_active("a").unwrap();
        assert!(later >= while_open, "an open socket is active now");
        drop(guard);
        let closed = activity.last_active("a").unwrap();
        assert_eq!(activity.last_active("a").unwrap(), closed);
        activity.forget("a");
        assert!(activity.last_active("a").is_none());
    }
}
