//! Sandbox records, looked up by id or by name, changed atomically with
//! [`Store::modify_sandbox`], and found by deadline for the reaper.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{Store, StoreError, doc_where, docs, is_unique_violation};
use crate::api::{Sandbox, status};
use crate::server::ttl::TtlClock;

impl Store {
    /// Insert a new sandbox; fails with `NameTaken` when the name is in use.
    pub async fn insert_sandbox(&self, sb: &Sandbox) -> Result<(), StoreError> {
        let (sb, clock) = (sb.clone(), self.clock);
        self.call(move |c| write(c, INSERT, &sb, &clock)).await
    }

    /// Replace a sandbox's record (renames included); `NameTaken` when the new name is in use.
    /// Prefer [`Store::modify_sandbox`] when the new record depends on the stored one.
    pub async fn update_sandbox(&self, sb: &Sandbox) -> Result<(), StoreError> {
        let (sb, clock) = (sb.clone(), self.clock);
        self.call(move |c| write(c, UPDATE, &sb, &clock)).await
    }

    /// Read, change and write sandbox `id` as one step: no other change can come in between.
    /// `change` runs on the store's thread, so it must not wait on anything (nor call the
    /// store). Nothing is written when it fails or leaves the record as it was. `Ok(None)`
    /// when there is no such sandbox; otherwise the record as it now stands and what
    /// `change` returned.
    pub async fn modify_sandbox<T, E>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Sandbox) -> Result<T, E> + Send + 'static,
    ) -> Result<Option<(Sandbox, T)>, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (id, clock) = (id.to_string(), self.clock);
        let changed = self.call(move |c| {
            let tx = c.transaction()?;
            let Some(before) = doc_where::<Sandbox>(&tx, "sandboxes", "id", &id)? else {
                return Ok(Ok(None));
            };
            let mut sb = before.clone();
            let out = match change(&mut sb) {
                Ok(out) => out,
                Err(e) => return Ok(Err(e)),
            };
            if sb != before {
                write(&tx, UPDATE, &sb, &clock)?;
                tx.commit()?;
            }
            Ok(Ok(Some((sb, out))))
        });
        changed.await?
    }

    /// Look a sandbox up by name.
    pub async fn sandbox_by_name(&self, name: &str) -> Result<Option<Sandbox>, StoreError> {
        let name = name.to_string();
        self.read(move |c| doc_where(c, "sandboxes", "name", &name))
            .await
    }

    /// Look a sandbox up by id (the data plane and lifecycle tasks, whose key never changes).
    pub async fn sandbox_by_id(&self, id: &str) -> Result<Option<Sandbox>, StoreError> {
        let id = id.to_string();
        self.read(move |c| doc_where(c, "sandboxes", "id", &id))
            .await
    }

    /// Every sandbox, newest first.
    pub async fn sandboxes(&self) -> Result<Vec<Sandbox>, StoreError> {
        self.read(|c| {
            let mut out: Vec<Sandbox> = docs(c, "sandboxes", None)?;
            out.sort_by(|a, b| b.created_at.cmp(&a.created_at));
            Ok(out)
        })
        .await
    }

    /// The sandboxes whose deadline (see [`TtlClock::due_at`]) is `now` or earlier: an index
    /// lookup, not a read of every record.
    pub async fn due_sandboxes(&self, now: DateTime<Utc>) -> Result<Vec<Sandbox>, StoreError> {
        let now = now.timestamp_millis();
        self.read(move |c| docs(c, "sandboxes", Some(("due_at <= ?1", &now))))
            .await
    }

    pub async fn delete_sandbox(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(move |c| {
            let tx = c.transaction()?;
            let deleted = tx.execute("DELETE FROM sandboxes WHERE id = ?1", [&id])? > 0;
            super::service::forget_sandbox(&tx, &id)?;
            tx.commit()?;
            Ok(deleted)
        })
        .await
    }
}

const INSERT: &str = "INSERT INTO sandboxes (id, name, doc, due_at) VALUES (?1, ?2, ?3, ?4)";
const UPDATE: &str = "UPDATE sandboxes SET name = ?2, doc = ?3, due_at = ?4 WHERE id = ?1";

/// The name a record is found (and kept unique) by: its own, until it is being deleted.
///
/// A delete is acknowledged once it is recorded, and its teardown finishes in the background
/// (or after a restart). From that moment the sandbox is gone by name, as deleted things
/// are: a GET by name is a 404 and a new sandbox may take the name at once. The record
/// keeps its name in its document, so a list asked for `status=deleting` still shows it by
/// name until it is gone. A colon never appears in a valid name, so a released name never
/// collides.
fn name_column(sb: &Sandbox) -> String {
    if sb.status == status::DELETING {
        format!("deleting:{}", sb.id)
    } else {
        sb.name.clone()
    }
}

fn write(c: &Connection, sql: &str, sb: &Sandbox, clock: &TtlClock) -> Result<(), StoreError> {
    let doc = serde_json::to_string(sb)?;
    let due_at = clock.due_at(sb).map(|t| t.timestamp_millis());
    match c.execute(sql, params![sb.id, name_column(sb), doc, due_at]) {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::NameTaken {
            kind: "sandbox",
            name: sb.name.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Recompute every sandbox's deadline: on open, after a migration added the column or when
/// the server counts TTLs in another unit than last time.
pub(super) fn refresh_deadlines(conn: &mut Connection, clock: &TtlClock) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for sb in docs::<Sandbox>(&tx, "sandboxes", None)? {
        let due_at = clock.due_at(&sb).map(|t| t.timestamp_millis());
        tx.execute(
            "UPDATE sandboxes SET due_at = ?2 WHERE id = ?1",
            params![sb.id, due_at],
        )?;
    }
    Ok(tx.commit()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status;

    fn open(path: &std::path::Path) -> Store {
        Store::open(path, TtlClock::new(60)).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_change_rolls_back_and_the_store_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("state.db"));
        let sb = Sandbox {
            id: "1".into(),
            name: "a".into(),
            ..Default::default()
        };
        store.insert_sandbox(&sb).await.unwrap();
        let crashed = store
            .modify_sandbox("1", |sb| -> Result<(), StoreError> {
                sb.name = "half-done".into();
                panic!("a bug in a change");
            })
            .await;
        assert!(matches!(crashed, Err(StoreError::Closed)), "{crashed:?}");
        assert_eq!(store.sandbox_by_id("1").await.unwrap().unwrap().name, "a");
        store
            .modify_sandbox("1", |sb| {
                sb.name = "b".into();
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        assert_eq!(store.sandbox_by_id("1").await.unwrap().unwrap().name, "b");
    }

    #[tokio::test]
    async fn sandbox_names_are_unique_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = open(&path);
        let a = Sandbox {
            id: "1".into(),
            name: "a".into(),
            ..Default::default()
        };
        store.insert_sandbox(&a).await.unwrap();
        let dup = Sandbox {
            id: "2".into(),
            name: "a".into(),
            ..Default::default()
        };
        assert!(matches!(
            store.insert_sandbox(&dup).await,
            Err(StoreError::NameTaken { .. })
        ));
        drop(store);
        let store = open(&path);
        assert_eq!(store.sandbox_by_name("a").await.unwrap().unwrap().id, "1");
        assert_eq!(store.sandbox_by_id("1").await.unwrap().unwrap().name, "a");
        assert!(store.sandbox_by_id("2").await.unwrap().is_none());
        assert!(store.sandbox_by_name("1").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_modification_is_written_only_when_it_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("state.db"));
        for (id, name) in [("1", "a"), ("2", "b")] {
            let sb = Sandbox {
                id: id.into(),
                name: name.into(),
                ..Default::default()
            };
            store.insert_sandbox(&sb).await.unwrap();
        }
        let renamed = store
            .modify_sandbox("1", |sb| {
                sb.name = "c".into();
                Ok::<_, StoreError>(7)
            })
            .await
            .unwrap();
        assert_eq!(renamed.map(|(sb, n)| (sb.name, n)), Some(("c".into(), 7)));
        let taken = store
            .modify_sandbox("1", |sb| {
                sb.name = "b".into();
                Ok::<_, StoreError>(())
            })
            .await;
        assert!(matches!(taken, Err(StoreError::NameTaken { .. })));
        let refused = store
            .modify_sandbox("1", |sb| {
                sb.name = "d".into();
                Err::<(), _>(StoreError::Closed)
            })
            .await;
        assert!(matches!(refused, Err(StoreError::Closed)));
        assert_eq!(store.sandbox_by_id("1").await.unwrap().unwrap().name, "c");
        let missing = store.modify_sandbox("9", |_| Ok::<_, StoreError>(())).await;
        assert!(matches!(missing, Ok(None)));
    }

    #[tokio::test]
    async fn only_sandboxes_past_their_deadline_are_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("state.db"));
        let at = |s: &str| crate::server::ttl::parse(s).unwrap();
        let sandbox = |id: &str, state: &str| Sandbox {
            id: id.into(),
            name: id.into(),
            status: state.into(),
            idle_ttl_seconds: Some(60),
            delete_after_stop_seconds: Some(120),
            updated_at: "2026-01-01T00:00:00Z".into(),
            stopped_at: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        for (id, state) in [
            ("idle", status::READY),
            ("stopped", status::STOPPED),
            ("booting", status::PROVISIONING),
        ] {
            store.insert_sandbox(&sandbox(id, state)).await.unwrap();
        }
        let due = |now: &str| {
            let store = store.clone();
            let now = at(now);
            async move {
                let mut ids: Vec<String> = store
                    .due_sandboxes(now)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| s.id)
                    .collect();
                ids.sort();
                ids
            }
        };
        assert!(due("2026-01-01T00:00:59Z").await.is_empty());
        assert_eq!(due("2026-01-01T00:01:00Z").await, ["idle"]);
        assert_eq!(due("2026-01-01T00:02:00Z").await, ["idle", "stopped"]);
        store
            .modify_sandbox("idle", |sb| {
                sb.status = status::STOPPED.into();
                sb.stopped_at = Some("2026-01-01T00:01:30Z".into());
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        assert_eq!(due("2026-01-01T00:02:00Z").await, ["stopped"]);
    }
}
