//! The database's tables and their migrations.
//!
//! The schema's version is SQLite's `user_version`: 0 is the first layout (three tables of
//! id, name and JSON document); each later step in [`MIGRATIONS`] moves a database one
//! version up inside a transaction, so a database of any earlier version opens and is
//! brought up to date, and a crash half-way leaves it at the version it had.

use rusqlite::Connection;

use super::StoreError;

/// Version 0: what every database starts from.
const BASE: &str = "
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

/// Step `i` takes a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the reaper's index. `due_at` is the sandbox's next deadline (idle stop or delete
    // after stop) in milliseconds since the epoch, NULL when it has none; filled in when the
    // store opens (`sandboxes::refresh_deadlines`) and on every write.
    "ALTER TABLE sandboxes ADD COLUMN due_at INTEGER;
     CREATE INDEX sandboxes_due_at ON sandboxes (due_at) WHERE due_at IS NOT NULL;",
    // 2: service URLs. `service_origins` are the loopback addresses given to a sandbox's
    // ports and downloads (`slot` indexes 127.77.0.0/16, `port` is the listener's port);
    // `service_grants` the login grants and the last token minted per port (JSON documents
    // of the API's grant list).
    "CREATE TABLE service_origins (
         slot INTEGER PRIMARY KEY,
         sandbox_id TEXT NOT NULL,
         target TEXT NOT NULL,
         port INTEGER NOT NULL,
         UNIQUE (sandbox_id, target)
     );
     CREATE TABLE service_grants (
         sandbox_id TEXT NOT NULL,
         port INTEGER NOT NULL,
         doc TEXT NOT NULL,
         PRIMARY KEY (sandbox_id, port)
     );",
    // 3: where the next service origin is looked for. Slots are handed out round the
    // ring from here, so the address of a deleted sandbox goes to a new one only after
    // every other slot has been used: a browser keeps cookies, storage and service
    // workers per origin, and a new sandbox must not inherit a dead one's.
    "CREATE TABLE service_slot_cursor (
         id INTEGER PRIMARY KEY CHECK (id = 0),
         next INTEGER NOT NULL
     );
     INSERT INTO service_slot_cursor (id, next)
         SELECT 0, COALESCE(MAX(slot) + 1, 0) FROM service_origins;",
    // 4: workspace secrets. The value is sealed (`server::secrets::sealer`) under a key kept
    // outside the database; `configs` is the JSON list of hosts it may be sent to.
    "CREATE TABLE secrets (
         key TEXT PRIMARY KEY,
         nonce BLOB NOT NULL,
         ciphertext BLOB NOT NULL,
         configs TEXT NOT NULL,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL
     );",
];

/// Bring the database to the newest version.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(BASE)?;
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (from, step) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_version_database_is_migrated_and_keeps_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(BASE).unwrap();
        conn.execute(
            "INSERT INTO sandboxes (id, name, doc) VALUES ('1', 'a', '{}')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let due: Option<i64> = conn
            .query_row("SELECT due_at FROM sandboxes WHERE id = '1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(due, None);
    }
}
