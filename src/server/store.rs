//! Durable state: snapshots and sandboxes in SQLite (registries: `registry_store`).
//!
//! Each row keeps a few indexed columns (id, name) and the whole record as a JSON document,
//! so adding a field never needs a migration. Every write is committed (WAL, `synchronous =
//! FULL`) before the caller acknowledges the change to a client.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::api::{RunConfig, Sandbox, Snapshot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a {kind} named '{name}' already exists")]
    NameTaken { kind: &'static str, name: String },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("corrupt record in the database: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// A snapshot plus what the server needs to boot sandboxes from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub snapshot: Snapshot,
    /// `KEY=VALUE` environment from the image config.
    #[serde(default)]
    pub image_env: Vec<String>,
    /// Working directory from the image config.
    #[serde(default)]
    pub image_workdir: Option<String>,
    /// Tag the snapshot takes once its build succeeds (a failed build never moves a tag).
    #[serde(default)]
    pub pending_tag: Option<String>,
}

impl SnapshotRecord {
    /// A new snapshot in `building` that takes `tag` once it is ready; the caller adds where
    /// it comes from (an image or a sandbox).
    pub fn building(
        name: &str,
        fs_capacity_bytes: i64,
        run_config: Option<RunConfig>,
        tag: String,
    ) -> Self {
        let ts = super::state::now();
        SnapshotRecord {
            snapshot: Snapshot {
                id: uuid::Uuid::new_v4().to_string(),
                name: name.to_string(),
                status: crate::api::snapshot_status::BUILDING.into(),
                fs_capacity_bytes,
                run_config,
                created_at: ts.clone(),
                updated_at: ts,
                ..Default::default()
            },
            pending_tag: Some(tag),
            ..Default::default()
        }
    }
}

/// Shared handle to the database (cheap to clone).
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registries (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sandboxes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
";

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    // ---- snapshots ----

    pub fn put_snapshot(&self, rec: &SnapshotRecord) -> Result<(), StoreError> {
        let doc = serde_json::to_string(rec)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO snapshots (id, name, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
                params![rec.snapshot.id, rec.snapshot.name, doc],
            )?;
            Ok(())
        })
    }

    pub fn snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        self.with(|c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM snapshots WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
        })
    }

    /// Every snapshot, newest first (as the official service lists them).
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>, StoreError> {
        let mut out: Vec<SnapshotRecord> = self.all_docs("snapshots")?;
        out.sort_by(|a, b| b.snapshot.created_at.cmp(&a.snapshot.created_at));
        Ok(out)
    }

    /// Publishing `name:tag` moves the tag: whichever snapshot held it loses it.
    pub fn take_tag(&self, name: &str, tag: &str, now: &str) -> Result<(), StoreError> {
        for mut rec in self.snapshots()? {
            if rec.snapshot.name == name && rec.snapshot.tags.iter().any(|t| t == tag) {
                rec.snapshot.tags.retain(|t| t != tag);
                rec.snapshot.updated_at = now.to_string();
                self.put_snapshot(&rec)?;
            }
        }
        Ok(())
    }

    pub fn delete_snapshot(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM snapshots WHERE id = ?1", [id])? > 0))
    }

    // ---- sandboxes ----

    /// Insert a new sandbox; fails with `NameTaken` when the name is in use.
    pub fn insert_sandbox(&self, sb: &Sandbox) -> Result<(), StoreError> {
        self.write_sandbox(
            "INSERT INTO sandboxes (id, name, doc) VALUES (?1, ?2, ?3)",
            sb,
        )
    }

    /// Replace a sandbox's record (renames included); `NameTaken` when the new name is in use.
    pub fn update_sandbox(&self, sb: &Sandbox) -> Result<(), StoreError> {
        self.write_sandbox("UPDATE sandboxes SET name = ?2, doc = ?3 WHERE id = ?1", sb)
    }

    fn write_sandbox(&self, sql: &str, sb: &Sandbox) -> Result<(), StoreError> {
        let doc = serde_json::to_string(sb)?;
        self.with(|c| match c.execute(sql, params![sb.id, sb.name, doc]) {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::NameTaken {
                kind: "sandbox",
                name: sb.name.clone(),
            }),
            Err(e) => Err(e.into()),
        })
    }

    /// Look a sandbox up by name.
    pub fn sandbox_by_name(&self, name: &str) -> Result<Option<Sandbox>, StoreError> {
        self.sandbox_where("name", name)
    }

    /// Look a sandbox up by id (the data plane and lifecycle tasks, whose key never changes).
    pub fn sandbox_by_id(&self, id: &str) -> Result<Option<Sandbox>, StoreError> {
        self.sandbox_where("id", id)
    }

    fn sandbox_where(&self, column: &str, value: &str) -> Result<Option<Sandbox>, StoreError> {
        self.with(|c| {
            let doc: Option<String> = c
                .query_row(
                    &format!("SELECT doc FROM sandboxes WHERE {column} = ?1"),
                    [value],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
        })
    }

    /// Every sandbox, newest first.
    pub fn sandboxes(&self) -> Result<Vec<Sandbox>, StoreError> {
        let mut out: Vec<Sandbox> = self.all_docs("sandboxes")?;
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(out)
    }

    pub(super) fn all_docs<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT doc FROM {table}"))?;
            let docs = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(docs
                .iter()
                .map(|d| serde_json::from_str(d))
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    pub fn delete_sandbox(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM sandboxes WHERE id = ?1", [id])? > 0))
    }
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_names_are_unique_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let a = Sandbox {
            id: "1".into(),
            name: "a".into(),
            ..Default::default()
        };
        store.insert_sandbox(&a).unwrap();
        let dup = Sandbox {
            id: "2".into(),
            name: "a".into(),
            ..Default::default()
        };
        assert!(matches!(
            store.insert_sandbox(&dup),
            Err(StoreError::NameTaken { .. })
        ));
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.sandbox_by_name("a").unwrap().unwrap().id, "1");
        assert_eq!(store.sandbox_by_id("1").unwrap().unwrap().name, "a");
        assert!(store.sandbox_by_id("2").unwrap().is_none());
        assert!(store.sandbox_by_name("1").unwrap().is_none());
    }
}
