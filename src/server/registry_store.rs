//! Stored registries (name, URL, credentials) in the `registries` table of the state
//! database. The password is kept in clear there: the database lives in the state
//! directory, which is mode 0700 and owned by the server's user, like the API key file
//! next to it. Records never reach an API response or a log (they are not `Debug`).

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::store::{Store, StoreError, doc_where, docs, is_unique_violation};

impl Store {
    /// Insert or replace (by id) a registry; `NameTaken` when another one has the name.
    pub async fn put_registry(&self, reg: &RegistryRecord) -> Result<(), StoreError> {
        let doc = serde_json::to_string(reg)?;
        let (id, name) = (reg.id.clone(), reg.name.clone());
        self.call(move |c| {
            match c.execute(
                "INSERT INTO registries (id, name, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
                params![id, name, doc],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::NameTaken {
                    kind: "registry",
                    name,
                }),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Look a registry up by `name` or `id` (column chosen by the caller).
    pub async fn registry_where(
        &self,
        column: RegistryKey,
        value: &str,
    ) -> Result<Option<RegistryRecord>, StoreError> {
        let column = match column {
            RegistryKey::Id => "id",
            RegistryKey::Name => "name",
        };
        let value = value.to_string();
        self.read(move |c| doc_where(c, "registries", column, &value))
            .await
    }

    /// Every registry, newest first (ties broken by id, so the order is stable).
    pub async fn registries(&self) -> Result<Vec<RegistryRecord>, StoreError> {
        let mut out: Vec<RegistryRecord> = self.read(|c| docs(c, "registries", None)).await?;
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub async fn delete_registry(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(move |c| Ok(c.execute("DELETE FROM registries WHERE id = ?1", [id])? > 0))
            .await
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
