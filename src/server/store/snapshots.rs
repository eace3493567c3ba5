//! Snapshot records: what the server needs to boot sandboxes from a snapshot, and its tags.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, doc_where, docs};
use crate::api::{RunConfig, Snapshot};

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
    /// What the default snapshot was made from (see `default_snapshot`); `None` for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
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
        let ts = crate::server::state::now();
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

impl Store {
    pub async fn put_snapshot(&self, rec: &SnapshotRecord) -> Result<(), StoreError> {
        let rec = rec.clone();
        self.call(move |c| put(c, &rec)).await
    }

    pub async fn snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |c| doc_where(c, "snapshots", "id", &id))
            .await
    }

    /// Every snapshot, newest first (as the official service lists them).
    pub async fn snapshots(&self) -> Result<Vec<SnapshotRecord>, StoreError> {
        self.read(|c| all(c)).await
    }

    /// Record a finished build: `rec` is written, and when it publishes `tag` under its name,
    /// whichever other snapshot held that tag loses it, in the same transaction.
    pub async fn publish_snapshot(
        &self,
        rec: &SnapshotRecord,
        tag: Option<String>,
    ) -> Result<(), StoreError> {
        let rec = rec.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            if let Some(tag) = tag {
                for mut other in all(&tx)? {
                    if other.snapshot.id != rec.snapshot.id
                        && other.snapshot.name == rec.snapshot.name
                        && other.snapshot.tags.contains(&tag)
                    {
                        other.snapshot.tags.retain(|t| *t != tag);
                        other.snapshot.updated_at = rec.snapshot.updated_at.clone();
                        put(&tx, &other)?;
                    }
                }
            }
            put(&tx, &rec)?;
            Ok(tx.commit()?)
        })
        .await
    }

    pub async fn delete_snapshot(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(move |c| Ok(c.execute("DELETE FROM snapshots WHERE id = ?1", [id])? > 0))
            .await
    }
}

fn put(c: &Connection, rec: &SnapshotRecord) -> Result<(), StoreError> {
    let doc = serde_json::to_string(rec)?;
    c.execute(
        "INSERT INTO snapshots (id, name, doc) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
        params![rec.snapshot.id, rec.snapshot.name, doc],
    )?;
    Ok(())
}

fn all(c: &Connection) -> Result<Vec<SnapshotRecord>, StoreError> {
    let mut out: Vec<SnapshotRecord> = docs(c, "snapshots", None)?;
    out.sort_by(|a, b| b.snapshot.created_at.cmp(&a.snapshot.created_at));
    Ok(out)
}
