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
    /// The origin of `target` of `sandbox_id`, allocated in the lowest free slot (port 0)
    /// when it has none yet.
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
            // The lowest slot not in use: slots of deleted sandboxes are handed out again.
            let mut stmt = tx.prepare("SELECT slot FROM service_origins ORDER BY slot")?;
            let used = stmt
                .query_map([], |r| r.get::<_, u32>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            let slot = used
                .iter()
                .enumerate()
                .find(|(i, s)| *i as u32 != **s)
                .map_or(used.len() as u32, |(i, _)| i as u32);
            if slot >= slots {
                return Err(StoreError::Full("service origins"));
            }
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
