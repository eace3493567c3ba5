//! Service URL state: the loopback origins handed to sandboxes (one per sandbox and port,
//! one per sandbox for downloads) and the grants `GET …/service-urls` lists (login grants,
//! which decide access, and the last minted token per port, which is only reported).
//! Both go with their sandbox: [`Store::delete_sandbox`] removes them in the same step.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::api::service::ServiceGrant;

/// A loopback origin: `slot` picks the address in 127.77.0.0/16, `port` is the port its
/// listener got (0 until bound). `target` is a port number, or `dl` for downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRecord {
    pub slot: u32,
    pub sandbox_id: String,
    pub target: String,
    pub port: u16,
}

impl Store {
    /// The origin of `target` of `sandbox_id`, allocated (port 0) when it has none yet.
    pub async fn origin_or_allocate(
        &self,
        sandbox_id: &str,
        target: &str,
        slots: u32,
    ) -> Result<OriginRecord, StoreError> {
        let (sandbox_id, target) = (sandbox_id.to_string(), target.to_string());
        self.call(move |c| {
            let tx = c.transaction()?;
            let found = tx
                .query_row(
                    "SELECT slot, port FROM service_origins WHERE sandbox_id = ?1 AND target = ?2",
                    params![sandbox_id, target],
                    |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u16>(1)?)),
                )
                .optional()?;
            if let Some((slot, port)) = found {
                return Ok(OriginRecord {
                    slot,
                    sandbox_id,
                    target,
                    port,
                });
            }
            let slot = next_free_slot(&tx, slots)?;
            tx.execute(
                "INSERT INTO service_origins (slot, sandbox_id, target, port) VALUES (?1, ?2, ?3, 0)",
                params![slot, sandbox_id, target],
            )?;
            tx.commit()?;
            Ok(OriginRecord {
                slot,
                sandbox_id,
                target,
                port: 0,
            })
        })
        .await
    }

    /// Remember the port an origin's listener got.
    pub async fn set_origin_port(&self, slot: u32, port: u16) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE service_origins SET port = ?2 WHERE slot = ?1",
                params![slot, port],
            )?;
            Ok(())
        })
        .await
    }

    /// Every origin, for re-binding at start.
    pub async fn origins(&self) -> Result<Vec<OriginRecord>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT slot, sandbox_id, target, port FROM service_origins")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(OriginRecord {
                        slot: r.get(0)?,
                        sandbox_id: r.get(1)?,
                        target: r.get(2)?,
                        port: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Read, change and write the grant of `port` as one step (the 409 rule depends on what
    /// is stored). `change` gets the stored grant and returns the one to keep (`None`
    /// deletes it), or an error that leaves it as it was.
    pub async fn modify_grant<E>(
        &self,
        sandbox_id: &str,
        port: u16,
        change: impl FnOnce(Option<ServiceGrant>) -> Result<Option<ServiceGrant>, E> + Send + 'static,
    ) -> Result<Option<ServiceGrant>, E>
    where
        E: From<StoreError> + Send + 'static,
    {
        let sandbox_id = sandbox_id.to_string();
        let changed = self.call(move |c| {
            let tx = c.transaction()?;
            let doc: Option<String> = tx
                .query_row(
                    "SELECT doc FROM service_grants WHERE sandbox_id = ?1 AND port = ?2",
                    params![sandbox_id, port],
                    |r| r.get(0),
                )
                .optional()?;
            let before = doc.map(|d| serde_json::from_str(&d)).transpose()?;
            let after = match change(before) {
                Ok(after) => after,
                Err(e) => return Ok(Err(e)),
            };
            match &after {
                Some(grant) => tx.execute(
                    "INSERT OR REPLACE INTO service_grants (sandbox_id, port, doc) VALUES (?1, ?2, ?3)",
                    params![sandbox_id, port, serde_json::to_string(grant)?],
                )?,
                None => tx.execute(
                    "DELETE FROM service_grants WHERE sandbox_id = ?1 AND port = ?2",
                    params![sandbox_id, port],
                )?,
            };
            tx.commit()?;
            Ok(Ok(after))
        });
        changed.await?
    }

    /// The grant of `port`, if any.
    pub async fn grant(
        &self,
        sandbox_id: &str,
        port: u16,
    ) -> Result<Option<ServiceGrant>, StoreError> {
        let sandbox_id = sandbox_id.to_string();
        self.read(move |c| {
            let doc: Option<String> = c
                .query_row(
                    "SELECT doc FROM service_grants WHERE sandbox_id = ?1 AND port = ?2",
                    params![sandbox_id, port],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
        })
        .await
    }

    /// Every grant of a sandbox, by port.
    pub async fn grants(&self, sandbox_id: &str) -> Result<Vec<ServiceGrant>, StoreError> {
        let sandbox_id = sandbox_id.to_string();
        self.read(move |c| {
            let mut stmt =
                c.prepare("SELECT doc FROM service_grants WHERE sandbox_id = ?1 ORDER BY port")?;
            let docs = stmt
                .query_map([sandbox_id], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(docs
                .iter()
                .map(|d| serde_json::from_str(d))
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Remove the grant of `port`, or every grant of the sandbox.
    pub async fn delete_grants(
        &self,
        sandbox_id: &str,
        port: Option<u16>,
    ) -> Result<(), StoreError> {
        let sandbox_id = sandbox_id.to_string();
        self.call(move |c| {
            match port {
                Some(port) => c.execute(
                    "DELETE FROM service_grants WHERE sandbox_id = ?1 AND port = ?2",
                    params![sandbox_id, port],
                )?,
                None => c.execute(
                    "DELETE FROM service_grants WHERE sandbox_id = ?1",
                    [sandbox_id],
                )?,
            };
            Ok(())
        })
        .await
    }
}

/// The first free slot at or after the cursor, going round the ring of `slots`, and the
/// cursor moved past it: a freed slot is taken again only once every other has been.
fn next_free_slot(tx: &rusqlite::Transaction, slots: u32) -> Result<u32, StoreError> {
    let cursor: u32 = tx.query_row("SELECT next FROM service_slot_cursor", [], |r| r.get(0))?;
    let taken = |slot: u32| -> Result<bool, StoreError> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM service_origins WHERE slot = ?1",
                [slot],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    // A full ring is reported as such; each probe is one primary-key lookup.
    for step in 0..slots {
        let slot = (cursor % slots + step) % slots;
        if !taken(slot)? {
            tx.execute(
                "UPDATE service_slot_cursor SET next = ?1",
                [(slot + 1) % slots],
            )?;
            return Ok(slot);
        }
    }
    Err(StoreError::Full("service origins"))
}

/// What goes with a deleted sandbox (called inside [`Store::delete_sandbox`]'s step).
pub(super) fn forget_sandbox(c: &rusqlite::Connection, sandbox_id: &str) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM service_grants WHERE sandbox_id = ?1",
        [sandbox_id],
    )?;
    c.execute(
        "DELETE FROM service_origins WHERE sandbox_id = ?1",
        [sandbox_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::Sandbox;
    use crate::server::ttl::TtlClock;

    async fn sandbox(store: &Store, id: &str) {
        let sb = Sandbox {
            id: id.into(),
            name: format!("sb-{id}"),
            ..Default::default()
        };
        store.insert_sandbox(&sb).await.unwrap();
    }

    #[tokio::test]
    async fn a_deleted_sandboxs_origin_is_not_handed_to_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path, TtlClock::new(60)).unwrap();
        sandbox(&store, "a").await;
        let a = store.origin_or_allocate("a", "8000", 4).await.unwrap();
        assert_eq!(
            store.origin_or_allocate("a", "8000", 4).await.unwrap(),
            a,
            "the same sandbox and port keep their origin"
        );
        assert!(store.delete_sandbox("a").await.unwrap());
        sandbox(&store, "b").await;
        let b = store.origin_or_allocate("b", "8000", 4).await.unwrap();
        assert_ne!(b.slot, a.slot);
        // The cursor survives a restart.
        drop(store);
        let store = Store::open(&path, TtlClock::new(60)).unwrap();
        let b2 = store.origin_or_allocate("b", "dl", 4).await.unwrap();
        assert!(![a.slot, b.slot].contains(&b2.slot), "{b2:?}");
        // Round the ring: the freed slot comes back only once the others are used.
        let b3 = store.origin_or_allocate("b", "9000", 4).await.unwrap();
        let again = store.origin_or_allocate("b", "9001", 4).await.unwrap();
        assert_eq!(again.slot, a.slot, "{b3:?}");
        assert!(matches!(
            store.origin_or_allocate("b", "9002", 4).await,
            Err(StoreError::Full(_))
        ));
    }
}
