//! Durable state: snapshots, sandboxes and registries in SQLite.
//!
//! Two threads own the database connections: one writes, one reads. [`Store`] is a cheap
//! handle whose async methods send a job to one of them and await its reply, so no async
//! worker ever waits on SQLite or on an fsync, and reads never queue behind a write's fsync
//! (WAL lets a reader go on while the writer commits). The writer runs jobs one at a time,
//! which makes each job atomic with respect to every other change:
//! [`Store::modify_sandbox`] reads, changes and writes a record in one job. A write's reply
//! comes after its commit, so a read sent after it sees it.
//!
//! Each row keeps a few indexed columns (id, name, the sandbox's next deadline) and the whole
//! record as a JSON document, so adding a field never needs a migration. Every write is
//! committed (WAL, `synchronous = FULL`) before the caller acknowledges the change to a client.
//!
//! - `schema`: tables, indexes and the numbered migrations (`PRAGMA user_version`)
//! - `sandboxes`: sandbox records, looked up by id or name, and the reaper's due query
//! - `snapshots`: snapshot records and tags
//! - `service`: service URL origins and grants (removed with their sandbox)
//! - `registries` (in `registry_store`): stored registry credentials

mod sandboxes;
mod schema;
mod service;
mod snapshots;

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use service::OriginRecord;
pub use snapshots::SnapshotRecord;

use super::ttl::TtlClock;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a {kind} named '{name}' already exists")]
    NameTaken { kind: &'static str, name: String },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("corrupt record in the database: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The store's thread has ended (it only does when the server is going down).
    #[error("the state database is closed")]
    Closed,
    /// Every one of a bounded set of slots is taken.
    #[error("no free {0} left")]
    Full(&'static str),
    #[error("starting the state database's thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A unit of work for one of the store's threads.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Shared handle to the database (cheap to clone). The store's threads end once the last
/// handle is dropped and the jobs already sent are done.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Job>,
    reader: mpsc::Sender<Job>,
    /// Turns a sandbox's TTLs into the deadline the reaper's index is keyed on.
    clock: TtlClock,
}

impl Store {
    /// Open (creating or migrating) the database at `path` and start the store's threads.
    pub fn open(path: &Path, clock: TtlClock) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        schema::migrate(&mut conn)?;
        sandboxes::refresh_deadlines(&mut conn, &clock)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Store {
            writer: serve("store-writer", conn)?,
            reader: serve("store-reader", reader)?,
            clock,
        })
    }

    /// Run `job` on the writer's thread and wait for its result. The job runs to its end
    /// even if the caller stops waiting (a client hung up), so a write is never cut in half.
    pub(super) async fn call<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        run(&self.writer, job).await
    }

    /// Run `job`, which only reads, on the reader's thread and wait for its result.
    pub(super) async fn read<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        run(&self.reader, job).await
    }
}

/// How long a statement waits for a lock on the database before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A thread that owns `conn` and runs the jobs sent to it, in order, until every sender
/// is gone.
fn serve(name: &str, mut conn: Connection) -> Result<mpsc::Sender<Job>, StoreError> {
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(job) = queue.recv() {
                // A panicking job (a bug) must not take the store down with it: its open
                // transaction rolls back as it unwinds, its caller sees the reply dropped
                // (`Closed`), and the thread goes on serving the next job.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)))
                    .is_err()
                {
                    tracing::error!("a store job panicked; its transaction was rolled back");
                }
            }
        })?;
    Ok(jobs)
}

async fn run<T, F>(thread: &mpsc::Sender<Job>, job: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, answer) = tokio::sync::oneshot::channel();
    thread
        .send(Box::new(move |conn| {
            let _ = reply.send(job(conn));
        }))
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// The document of the row whose `column` is `value`, if any. `column` is one of ours.
pub(super) fn doc_where<T: serde::de::DeserializeOwned>(
    c: &Connection,
    table: &str,
    column: &str,
    value: &str,
) -> Result<Option<T>, StoreError> {
    let doc: Option<String> = c
        .query_row(
            &format!("SELECT doc FROM {table} WHERE {column} = ?1"),
            [value],
            |r| r.get(0),
        )
        .optional()?;
    Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
}

/// Every document of `table`, or those `filter` (an SQL condition on `?1`) selects.
pub(super) fn docs<T: serde::de::DeserializeOwned>(
    c: &Connection,
    table: &str,
    filter: Option<(&str, &dyn rusqlite::ToSql)>,
) -> Result<Vec<T>, StoreError> {
    let (condition, params): (String, Vec<&dyn rusqlite::ToSql>) = match filter {
        Some((condition, value)) => (format!(" WHERE {condition}"), vec![value]),
        None => (String::new(), vec![]),
    };
    let mut stmt = c.prepare(&format!("SELECT doc FROM {table}{condition}"))?;
    let docs = stmt
        .query_map(params.as_slice(), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(docs
        .iter()
        .map(|d| serde_json::from_str(d))
        .collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}
