//! The database schema as an ordered list of migrations, tracked with SQLite's `user_version`.
//!
//! Migration `i` (counting from zero) brings a database from `user_version = i` to `i + 1`.
//! Migrations are append-only: once released, a migration's text never changes, and a schema
//! change is a new entry at the end. A database whose `user_version` is beyond this list was
//! written by a newer Lockgate and is refused rather than guessed at.

use rusqlite::{Connection, TransactionBehavior};

use lockgate_store::StoreError;

use crate::backend_error;

/// Every migration, oldest first.
///
/// Each collection gets its own table named after `Collection::as_str()`, with the same four
/// columns, so that the reader and writer can build their SQL from the collection name alone.
/// Tables are `STRICT` so that SQLite refuses a value of the wrong type instead of storing it.
/// Rows keep their rowid (no `WITHOUT ROWID`) because bodies can be several kilobytes, which is
/// where SQLite advises against clustering rows by their primary key.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: one table per collection; children are listed by (parent, key) and timers by due time.
    "
    CREATE TABLE pipelines (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX pipelines_parent ON pipelines (parent, key);

    CREATE TABLE pipeline_versions (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX pipeline_versions_parent ON pipeline_versions (parent, key);

    CREATE TABLE executions (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX executions_parent ON executions (parent, key);

    CREATE TABLE jobs (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX jobs_parent ON jobs (parent, key);

    CREATE TABLE timers (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX timers_parent ON timers (parent, key);
    CREATE INDEX timers_due_at ON timers (due_at, key);

    CREATE TABLE users (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX users_parent ON users (parent, key);

    CREATE TABLE action_types (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX action_types_parent ON action_types (parent, key);

    CREATE TABLE tags (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX tags_parent ON tags (parent, key);
    ",
    // 2: console sessions (expiring) and the notification outbox (next attempt time).
    "
    CREATE TABLE sessions (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX sessions_parent ON sessions (parent, key);
    CREATE INDEX sessions_due_at ON sessions (due_at, key);

    CREATE TABLE outbox (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX outbox_parent ON outbox (parent, key);
    CREATE INDEX outbox_due_at ON outbox (due_at, key);
    ",
    // 3: every table gains an indexed label and position (`Store::scan`), and the meta table.
    // Indexes serve the scans Lockgate makes: a pipeline's executions newest first and its
    // active ones; pipelines by (position, key) and by label; jobs by label.
    "
    ALTER TABLE pipelines ADD COLUMN label TEXT;
    ALTER TABLE pipelines ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pipeline_versions ADD COLUMN label TEXT;
    ALTER TABLE pipeline_versions ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE executions ADD COLUMN label TEXT;
    ALTER TABLE executions ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN label TEXT;
    ALTER TABLE jobs ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE timers ADD COLUMN label TEXT;
    ALTER TABLE timers ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN label TEXT;
    ALTER TABLE users ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE action_types ADD COLUMN label TEXT;
    ALTER TABLE action_types ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tags ADD COLUMN label TEXT;
    ALTER TABLE tags ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN label TEXT;
    ALTER TABLE sessions ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN label TEXT;
    ALTER TABLE outbox ADD COLUMN position INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE meta (
        key TEXT NOT NULL PRIMARY KEY, parent TEXT, due_at INTEGER, body TEXT NOT NULL,
        label TEXT, position INTEGER NOT NULL DEFAULT 0
    ) STRICT;

    CREATE INDEX executions_position ON executions (parent, position, key);
    CREATE INDEX executions_label ON executions (parent, label, position, key);
    CREATE INDEX pipelines_position ON pipelines (position, key);
    CREATE INDEX pipelines_label ON pipelines (label, position, key);
    CREATE INDEX jobs_label ON jobs (label, position, key);
    ",
    // 4: the log of deferred mutations (`deferred.rs`): one row per commit, oldest first.
    "
    CREATE TABLE deferred_ops (seq INTEGER PRIMARY KEY, ops TEXT NOT NULL) STRICT;
    ",
];

/// Brings the database up to the newest schema, one migration per transaction.
///
/// Each step re-reads `user_version` inside its own `BEGIN IMMEDIATE` transaction, so two
/// processes opening the same fresh database at once cannot both apply the same migration.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let newest = MIGRATIONS.len();
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| backend_error("starting a schema migration", e))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| backend_error("reading the schema version", e))?;
        let current = usize::try_from(version).map_err(|_| {
            StoreError::Backend(format!(
                "the database has a negative schema version {version}"
            ))
        })?;
        if current > newest {
            return Err(StoreError::Backend(format!(
                "the database has schema version {current}, but this Lockgate only knows up to \
                 {newest}; it was written by a newer release"
            )));
        }
        let Some(sql) = MIGRATIONS.get(current) else {
            // Up to date; the transaction rolls back on drop, which is harmless since it wrote nothing.
            return Ok(());
        };
        tx.execute_batch(sql)
            .map_err(|e| backend_error(&format!("applying schema migration {}", current + 1), e))?;
        tx.pragma_update(None, "user_version", current + 1)
            .map_err(|e| backend_error("recording the schema version", e))?;
        tx.commit()
            .map_err(|e| backend_error("committing a schema migration", e))?;
        tracing::info!(version = current + 1, "applied store schema migration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockgate_store::Collection;

    fn migrated() -> Connection {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        migrate(&mut conn).expect("migrations apply to an empty database");
        conn
    }

    #[test]
    fn every_collection_has_a_table_with_the_six_columns() {
        let conn = migrated();
        for collection in Collection::ALL {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{}') ORDER BY cid",
                    collection.as_str()
                ))
                .expect("table_info query prepares");
            let columns: Vec<String> = stmt
                .query_map([], |row| row.get(0))
                .expect("table_info query runs")
                .collect::<Result<_, _>>()
                .expect("column names read");
            assert_eq!(
                columns,
                ["key", "parent", "due_at", "body", "label", "position"],
                "table for {collection}"
            );
        }
    }

    #[test]
    fn the_timers_table_is_indexed_by_due_time() {
        let conn = migrated();
        let indexed: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_index_list('timers') l \
                 JOIN pragma_index_info(l.name) i WHERE i.name = 'due_at')",
                [],
                |row| row.get(0),
            )
            .expect("index query runs");
        assert!(indexed);
    }

    #[test]
    fn migrating_twice_leaves_the_newest_version_and_changes_nothing() {
        let mut conn = migrated();
        migrate(&mut conn).expect("a second migration run is a no-op");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version reads");
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_database_from_a_newer_release_is_refused() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        conn.pragma_update(None, "user_version", 99)
            .expect("version writes");
        let err = migrate(&mut conn).expect_err("a newer schema is refused");
        assert!(matches!(err, StoreError::Backend(ref m) if m.contains("newer release")));
    }
}
