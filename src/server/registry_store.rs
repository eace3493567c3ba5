//! Stored registries (name, URL, credentials) in the `registries` table of the state
//! database. The password is kept in clear there: the database lives in the state
//! directory, which is mode 0700 and owned by the server's user, like the API key file
//! next to it. Records never reach an API response or a log (they are not `Debug`).

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::store::{Store, StoreError, is_unique_violation};

impl Store {
    /// Insert or replace (by id) a registry; `NameTaken` when another one has the name.
    pub fn put_registry(&self, reg: &RegistryRecord) -> Result<(), StoreError> {
        let doc = serde_json::to_string(reg)?;
        self.with(|c| {
            match c.execute(
                "INSERT INTO registries (id, name, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
                params![reg.id, reg.name, doc],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::NameTaken {
                    kind: "registry",
                    name: reg.name.clone(),
                }),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Look a registry up by `name` or `id` (column chosen by the caller).
    pub fn registry_where(
        &self,
        column: RegistryKey,
        value: &str,
    ) -> Result<Option<RegistryRecord>, StoreError> {
        let column = match column {
            RegistryKey::Id => "id",
            RegistryKey::Name => "name",
        };
        self.with(|c| {
            let doc: Option<String> = c
                .query_row(
                    &format!("SELECT doc FROM registries WHERE {column} = ?1"),
                    [value],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
        })
    }

    /// Every registry, newest first (ties broken by id, so the order is stable).
    pub fn registries(&self) -> Result<Vec<RegistryRecord>, StoreError> {
        let mut out: Vec<RegistryRecord> = self.all_docs("registries")?;
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn delete_registry(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM registries WHERE id = ?1", [id])? > 0))
    }
}

/// Which column identifies a registry in a lookup.
#[derive(Debug, Clone, Copy)]
pub enum RegistryKey {
    Id,
    Name,
}

/// A stored registry, credentials included.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RegistryRecord {
    pub id: String,
    pub name: String,
    pub url: String,
    pub auth_type: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub aws_role_arn: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}
