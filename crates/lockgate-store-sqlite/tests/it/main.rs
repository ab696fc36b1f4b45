//! Integration tests of the SQLite store: the shared conformance suite, durability across reopen
//! and `kill -9`, group commit, failure isolation and shutdown.

mod conformance;
// The crash test sends SIGKILL, which only Unix has.
mod checkpoint;
#[cfg(unix)]
mod crash;
mod durability;
mod group_commit;

use std::time::{Duration, Instant};

use lockgate_store::{Collection, Mutation, Record};
use lockgate_store_sqlite::{SqliteStore, DB_FILE_NAME};
use rusqlite::Connection;
use tempfile::TempDir;

/// A fresh store in its own temporary directory; keep the directory alive as long as the store.
pub fn fresh_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("store opens");
    (dir, store)
}

/// A put of a small record.
pub fn put(collection: Collection, key: &str) -> Mutation {
    Mutation::Put(Record::new(
        collection,
        key,
        serde_json::json!({ "key": key }),
    ))
}

/// A second connection to the store's database that holds the write lock until dropped or
/// released, so that commits queue up behind it and form one group once it lets go.
pub struct WriteLock {
    conn: Connection,
}

impl WriteLock {
    /// Takes the database's write lock from outside the store.
    pub fn take(dir: &TempDir) -> WriteLock {
        let conn = Connection::open(dir.path().join(DB_FILE_NAME)).expect("second connection");
        conn.execute_batch("BEGIN IMMEDIATE")
            .expect("the write lock is free");
        WriteLock { conn }
    }

    /// Runs SQL inside the held transaction (e.g. to break the schema on purpose).
    pub fn execute(&self, sql: &str) {
        self.conn
            .execute_batch(sql)
            .expect("SQL runs under the lock");
    }

    /// Commits whatever ran under the lock and lets the store's writer proceed.
    pub fn release(self) {
        self.conn.execute_batch("COMMIT").expect("lock releases");
    }
}

/// Waits until `pending` commits are queued at the store's writer. The writer is stuck behind a
/// [`WriteLock`], so this only waits for the callers' tasks to run; the deadline is far above
/// that and well below the writer's five-second busy timeout.
pub async fn wait_for_pending(store: &SqliteStore, pending: u64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while store.stats().pending < pending {
        assert!(
            Instant::now() < deadline,
            "only {} of {pending} commits reached the writer",
            store.stats().pending
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
