//! The `secrets` table: one row per key with its sealed value (nonce and ciphertext, never
//! the value itself), its configs as JSON and its times.

use rusqlite::{OptionalExtension, params};

use super::sealer::Sealed;
use crate::api::secrets::SecretConfig;
use crate::server::store::{Store, StoreError};

/// A stored secret. Deliberately not `Debug`: nothing may print one.
#[derive(Clone)]
pub struct SecretRow {
    pub key: String,
    pub sealed: Sealed,
    pub configs: Vec<SecretConfig>,
    pub created_at: String,
    pub updated_at: String,
}

impl Store {
    /// Insert or replace the secret `row.key`.
    pub async fn put_secret(&self, row: SecretRow) -> Result<(), StoreError> {
        let configs = serde_json::to_string(&row.configs)?;
        self.call(move |c| {
            c.execute(
                "INSERT INTO secrets (key, nonce, ciphertext, configs, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(key) DO UPDATE SET nonce = excluded.nonce,
                     ciphertext = excluded.ciphertext, configs = excluded.configs,
                     updated_at = excluded.updated_at",
                params![
                    row.key,
                    row.sealed.nonce,
                    row.sealed.ciphertext,
                    configs,
                    row.created_at,
                    row.updated_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn secret(&self, key: &str) -> Result<Option<SecretRow>, StoreError> {
        let key = key.to_string();
        self.read(move |c| {
            c.query_row(&format!("{SELECT} WHERE key = ?1"), [key], row_of)
                .optional()?
                .transpose()
        })
        .await
    }

    /// Every secret, by key.
    pub async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!("{SELECT} ORDER BY key"))?;
            let rows = stmt.query_map([], row_of)?;
            rows.map(|r| r?).collect()
        })
        .await
    }

    /// Remove `key`; whether it was there.
    pub async fn delete_secret(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.call(move |c| Ok(c.execute("DELETE FROM secrets WHERE key = ?1", [key])? > 0))
            .await
    }
}

const SELECT: &str = "SELECT key, nonce, ciphertext, configs, created_at, updated_at FROM secrets";

/// A row as a record; the configs' JSON is parsed (a corrupt one is an error of its own).
fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SecretRow, StoreError>> {
    let configs: String = r.get(3)?;
    let configs = match serde_json::from_str(&configs) {
        Ok(configs) => configs,
        Err(e) => return Ok(Err(e.into())),
    };
    Ok(Ok(SecretRow {
        key: r.get(0)?,
        sealed: Sealed {
            nonce: r.get(1)?,
            ciphertext: r.get(2)?,
        },
        configs,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    }))
}
