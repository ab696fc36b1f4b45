//! Opening and configuring SQLite connections: the one writer and the pooled readers.
//!
//! Durability settings live here and nowhere else. The writer runs in WAL mode with
//! `synchronous=FULL`, so every committed transaction is fsynced to the write-ahead log before
//! `COMMIT` returns; together with the writer answering callers only after `COMMIT`, this is what
//! makes an acknowledged commit survive `kill -9` and power loss.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use lockgate_store::StoreError;

use crate::backend_error;

/// How long a connection waits for a lock held by another connection (for example a CLI command
/// running beside the server, or a checkpoint) before it reports the database as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Enough cached statements for every (collection, statement kind) pair with room to spare; the
/// default of 16 would evict and re-prepare statements on every group commit.
const STATEMENT_CACHE: usize = 128;

/// Opens (creating if needed) the database file for writing and applies durability settings;
/// when the write-ahead log is rewritten from its start, this connection cuts the file back to
/// `wal_limit_bytes`.
pub(crate) fn open_writer(path: &Path, wal_limit_bytes: u64) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| backend_error(&format!("opening {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| backend_error("setting busy_timeout", e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| backend_error("switching to WAL journal mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Without WAL, readers would block the writer and the durability reasoning above would
        // not hold as written; refuse rather than run in a mode nobody tested.
        return Err(StoreError::Backend(format!(
            "SQLite refused WAL journal mode for {} (got {mode})",
            path.display()
        )));
    }
    configure_durability(&conn)?;
    // Checkpoints run on their own thread (checkpoint.rs), not inside a group commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(|e| backend_error("turning off automatic checkpoints", e))?;
    // The writer is the connection that starts the WAL over after a complete checkpoint, and
    // SQLite truncates the file at that moment only to the limit of the connection doing it.
    let limit = i64::try_from(wal_limit_bytes).unwrap_or(i64::MAX);
    conn.pragma_update(None, "journal_size_limit", limit)
        .map_err(|e| backend_error("setting journal_size_limit", e))?;
    // Each caller's mutations run in a savepoint (writer.rs), so SQLite keeps a statement
    // journal of the pages a commit changes. With the default temp_store it spills that journal
    // to a temporary file past 64 KiB and, once spilled, never truncates it within the group:
    // every group commit then paid a write system call per changed page. In memory it is
    // truncated when each savepoint is released. It is never needed for crash recovery (the
    // write-ahead log is), so this changes nothing about durability.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|e| backend_error("setting temp_store=MEMORY", e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Sets the per-connection pragmas that make a returned `COMMIT` durable.
fn configure_durability(conn: &Connection) -> Result<(), StoreError> {
    // FULL (not NORMAL): in WAL mode NORMAL skips the fsync at each commit, so a power cut could
    // lose commits that were already acknowledged.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| backend_error("setting synchronous=FULL", e))?;
    // On macOS plain fsync does not flush the drive's cache; these make SQLite use F_FULLFSYNC
    // there. They have no effect on other systems.
    conn.pragma_update(None, "fullfsync", true)
        .map_err(|e| backend_error("setting fullfsync", e))?;
    conn.pragma_update(None, "checkpoint_fullfsync", true)
        .map_err(|e| backend_error("setting checkpoint_fullfsync", e))?;
    Ok(())
}

/// Opens a connection for reads only; the database must already exist.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    // Opened read-write but with `query_only`, because a read-only connection to a WAL database
    // needs extra conditions on the -shm file that a read-write one does not.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| backend_error(&format!("opening {} for reading", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| backend_error("setting busy_timeout", e))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| backend_error("setting query_only", e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Fsyncs the data directory so that a freshly created database file's directory entry survives
/// a power cut. SQLite syncs the directory for the WAL file it creates, but not for the main
/// database file.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Backend(format!("syncing {}: {e}", dir.display())))?;
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files elsewhere; NTFS journals directory entries itself.
        let _ = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_runs_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_writer(&dir.path().join("t.db"), crate::DEFAULT_WAL_LIMIT_BYTES)
            .expect("writer opens");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal_mode reads");
        let synchronous: i64 = conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .expect("synchronous reads");
        assert_eq!(mode, "wal");
        // 2 is FULL; 1 would be NORMAL, which loses acknowledged commits on power loss in WAL mode.
        assert_eq!(synchronous, 2);
    }

    #[test]
    fn the_writer_cuts_a_restarted_wal_back_to_the_limit_it_was_given() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_writer(&dir.path().join("t.db"), 3 * 1024 * 1024).expect("writer opens");
        let limit: i64 = conn
            .pragma_query_value(None, "journal_size_limit", |row| row.get(0))
            .expect("journal_size_limit reads");
        assert_eq!(limit, 3 * 1024 * 1024);
    }

    #[test]
    fn a_reader_cannot_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let writer = open_writer(&path, crate::DEFAULT_WAL_LIMIT_BYTES).expect("writer opens");
        writer
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("table creates");
        let reader = open_reader(&path).expect("reader opens");
        assert!(reader.execute_batch("INSERT INTO t VALUES (1)").is_err());
    }
}
