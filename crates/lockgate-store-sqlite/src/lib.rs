//! The SQLite backend of the Lockgate store: one database file, one writer thread doing group
//! commit, and a small pool of read connections.
//!
//! # Layout
//! `<data_dir>/lockgate.db` (plus SQLite's `-wal` and `-shm` files beside it), with one table per
//! [`Collection`], created by the migrations in `migrations.rs`.
//!
//! # Durability and throughput
//! [`Store::commit`] returns `Ok` only after the transaction holding its mutations has been
//! committed with `synchronous=FULL` in WAL mode, i.e. after the write-ahead log was fsynced. To
//! get many durable commits per second out of a disk that takes milliseconds per fsync, every
//! commit goes to one writer thread, which applies all commits queued at that moment in one
//! transaction (one fsync) and then answers all their callers ("group commit", see `writer.rs`).
//!
//! # Deferred collections
//! Pipelines, jobs and timers (the records that find things without loading a pipeline) are
//! made durable as one appended log row in the caller's transaction and written to their
//! tables later, many commits at a time (`deferred.rs`); a read that needs one of them first
//! waits for that write, unless the waiting mutations decide the row on their own (a put or a
//! delete, then relabels). [`SqliteStore::open`] writes what a crash left in the log.
//!
//! # Write-ahead log
//! Checkpoints run off the commit path (`checkpoint.rs`): a PASSIVE one on its own thread
//! shortly after commits, and, when the WAL file has passed [`StoreOptions::wal_limit_bytes`],
//! a RESTART one on the writer thread between two groups, so that the file stays near the
//! limit whatever the write rate and however the reads overlap. [`SqliteStore::wal_stats`]
//! counts them.
//!
//! # Runtimes
//! [`SqliteStore::open`], [`SqliteStore::open_with`], [`SqliteStore::close`],
//! [`SqliteStore::stats`] and [`SqliteStore::wal_stats`] are plain blocking functions and work
//! without any async runtime, so CLI commands can open the store directly.
//! The [`Store`] methods must be awaited inside a Tokio runtime (a current-thread runtime is
//! enough): reads run on Tokio's blocking pool. `commit` itself only waits on a channel, but
//! callers should not rely on that.

mod checkpoint;
mod connection;
mod deferred;
mod migrations;
mod reader;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::Connection;

use lockgate_store::{Collection, Mutation, Record, Scan, Store, StoreError};

use crate::checkpoint::{Checkpointer, Checkpoints};
use crate::deferred::Lookup;
use crate::reader::ReadPool;
use crate::writer::{Op, Writer};

/// The database file's name inside the data directory.
pub const DB_FILE_NAME: &str = "lockgate.db";

/// The WAL file size [`StoreOptions::default`] keeps to: 64 MiB.
pub const DEFAULT_WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How a store is run; [`SqliteStore::open`] takes the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The size, in bytes, past which the write-ahead log file is checkpointed in full and
    /// rewritten from its start (a RESTART checkpoint between two group commits, which waits
    /// for readers of older snapshots), and back to which the file is cut when it is
    /// rewritten. The file passes it by at most one group commit's pages. Smaller: less disk
    /// and a faster restart after a crash, more often a short pause for writers. Default
    /// [`DEFAULT_WAL_LIMIT_BYTES`].
    pub wal_limit_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wal_limit_bytes: DEFAULT_WAL_LIMIT_BYTES,
        }
    }
}

/// A [`Store`] kept in a SQLite database.
///
/// Cloning is cheap and every clone shares the same writer thread and read connections. The
/// writer finishes its queued work and stops when [`SqliteStore::close`] is called or the last
/// clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Declared after `writer`: on drop the writer finishes first, then the last checkpoint.
    checkpointer: Checkpointer,
    /// Shared with the writer thread (RESTART past the limit) and the checkpoint thread.
    checkpoints: Arc<Checkpoints>,
}

/// Counters describing the writer's work since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitStats {
    /// Commits acknowledged with `Ok` (empty commits, which never reach the writer, excluded).
    pub commits: u64,
    /// Commits answered with an error.
    pub failed_commits: u64,
    /// Write transactions committed; each is one fsync of the write-ahead log. `commits` divided
    /// by this is the average group size.
    pub transactions: u64,
    /// Commits queued for the writer and not answered yet.
    pub pending: u64,
    /// Flushes of deferred mutations (pipelines, jobs, timers) to their tables; each is one
    /// transaction without an fsync of its own.
    pub flushes: u64,
    /// Deferred mutations of acknowledged commits waiting for the next flush.
    pub deferred: u64,
}

/// Counters describing the write-ahead log and its checkpoints since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// PASSIVE checkpoints run after commits (they copy what they can and never wait).
    pub checkpoints: u64,
    /// RESTART checkpoints run because the WAL file had passed [`StoreOptions::wal_limit_bytes`].
    pub forced_checkpoints: u64,
    /// Forced checkpoints that could not finish, because a reader held an older snapshot past
    /// the busy timeout (or SQLite failed); each is tried again after the next group commit.
    pub blocked_checkpoints: u64,
    /// The WAL file's size after the last group commit, in bytes.
    pub wal_bytes: u64,
    /// The largest `wal_bytes` since the store was opened.
    pub wal_peak_bytes: u64,
    /// The limit the store runs with.
    pub wal_limit_bytes: u64,
}

impl SqliteStore {
    /// Opens the store in `data_dir`, creating the directory and the database if needed and
    /// bringing the schema up to date, and starts the writer thread, with the default
    /// [`StoreOptions`].
    ///
    /// Blocking; needs no async runtime. Fails with [`StoreError::Backend`] if the directory or
    /// database cannot be created or opened, if SQLite refuses WAL mode, or if the database was
    /// written by a newer release with a schema this one does not know.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, StoreOptions::default())
    }

    /// As [`SqliteStore::open`], with `options`.
    pub fn open_with(data_dir: &Path, options: StoreOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Backend(format!(
                "creating data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE_NAME);
        let mut conn = connection::open_writer(&path, options.wal_limit_bytes)?;
        migrations::migrate(&mut conn)?;
        let replayed = writer::replay_log(&conn)?;
        if replayed > 0 {
            tracing::info!(
                mutations = replayed,
                "wrote the deferred mutations the store left in its log when it stopped"
            );
        }
        connection::sync_dir(data_dir)?;
        let checkpoints = Arc::new(Checkpoints::open(&path, options.wal_limit_bytes)?);
        let writer = Writer::start(conn, Arc::clone(&checkpoints))?;
        let checkpointer =
            Checkpointer::start(Arc::clone(&checkpoints), Arc::clone(writer.counters()))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                readers: Arc::new(ReadPool::new(path.clone())),
                path,
                writer,
                checkpointer,
                checkpoints,
            }),
        })
    }

    /// The path of the database file.
    pub fn db_path(&self) -> &Path {
        &self.inner.path
    }

    /// Stops taking commits: commits already queued are applied and answered, later ones (from
    /// any clone) fail with [`StoreError::Closed`]. Blocks until the writer thread has finished,
    /// which takes at most one group commit. Reads keep working. Calling it again does nothing.
    ///
    /// Fails only if the writer thread panicked.
    pub fn close(&self) -> Result<(), StoreError> {
        let closed = self.inner.writer.close();
        self.inner.checkpointer.stop();
        closed
    }

    /// Whether [`SqliteStore::close`] has been called on this store or any clone of it; from then
    /// on commits fail with [`StoreError::Closed`].
    pub fn is_closed(&self) -> bool {
        self.inner.writer.is_closed()
    }

    /// A snapshot of the writer's counters.
    pub fn stats(&self) -> CommitStats {
        let counters = self.inner.writer.counters();
        CommitStats {
            commits: counters.commits.load(Ordering::Relaxed),
            failed_commits: counters.failed_commits.load(Ordering::Relaxed),
            transactions: counters.transactions.load(Ordering::Relaxed),
            pending: counters.pending.load(Ordering::Relaxed),
            flushes: counters.flushes.load(Ordering::Relaxed),
            deferred: self.inner.writer.pending().ops() as u64,
        }
    }

    /// A snapshot of the WAL's size and checkpoint counters.
    pub fn wal_stats(&self) -> WalStats {
        self.inner.checkpoints.stats()
    }

    /// Waits, if `needed`, until every deferred mutation is in its table, so that a read of a
    /// deferred collection sees every acknowledged commit.
    async fn settle(&self, needed: bool) -> Result<(), StoreError> {
        if needed {
            self.inner.writer.flush().await?;
        }
        Ok(())
    }

    /// The row of `key` as waiting deferred mutations decide it (`Some`), or `None` when the
    /// table holds what to read, after a flush if the waiting mutations needed one.
    async fn waiting_row(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<Option<Record>>, StoreError> {
        match self.inner.writer.pending().lookup(collection, key) {
            Lookup::InTable => Ok(None),
            Lookup::Known(record) => Ok(Some(record)),
            Lookup::AfterFlush => self.inner.writer.flush().await.map(|()| None),
        }
    }

    /// Whether a read of `collection` anywhere must wait for a flush first.
    fn holds_any(&self, collection: Collection) -> bool {
        self.inner.writer.pending().holds_any(collection)
    }

    /// Runs a read on a pooled connection on Tokio's blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Backend("SqliteStore reads must run inside a Tokio runtime".into())
        })?;
        let readers = Arc::clone(&self.inner.readers);
        runtime
            .spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("stats", &self.stats())
            .field("wal", &self.wal_stats())
            .finish()
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn commit(&self, mutations: Vec<Mutation>) -> Result<(), StoreError> {
        if mutations.is_empty() {
            // Nothing to make durable; do not make other callers wait for it.
            return Ok(());
        }
        let ops = mutations.into_iter().map(Op::from_mutation).collect();
        self.inner.writer.commit(ops).await
    }

    async fn load(&self, collection: Collection) -> Result<Vec<Record>, StoreError> {
        self.settle(self.holds_any(collection)).await?;
        self.read(move |conn| reader::load(conn, collection)).await
    }

    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Record>, StoreError> {
        if let Some(record) = self.waiting_row(collection, key).await? {
            return Ok(record);
        }
        let key = key.to_owned();
        self.read(move |conn| reader::get(conn, collection, &key))
            .await
    }

    async fn list_children(
        &self,
        collection: Collection,
        parent: &str,
    ) -> Result<Vec<Record>, StoreError> {
        self.settle(self.holds_any(collection)).await?;
        let parent = parent.to_owned();
        self.read(move |conn| reader::list_children(conn, collection, &parent))
            .await
    }

    async fn due(
        &self,
        collection: Collection,
        due_at: i64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.settle(self.holds_any(collection)).await?;
        self.read(move |conn| reader::due(conn, collection, due_at, limit))
            .await
    }

    async fn scan(&self, scan: Scan) -> Result<Vec<Record>, StoreError> {
        self.settle(self.holds_any(scan.collection)).await?;
        self.read(move |conn| reader::scan(conn, &scan)).await
    }

    async fn get_and_scan(
        &self,
        collection: Collection,
        key: &str,
        scan: Scan,
    ) -> Result<(Option<Record>, Vec<Record>), StoreError> {
        self.settle(self.holds_any(scan.collection)).await?;
        if let Some(record) = self.waiting_row(collection, key).await? {
            return Ok((record, self.scan(scan).await?));
        }
        let key = key.to_owned();
        self.read(move |conn| reader::get_and_scan(conn, collection, &key, &scan))
            .await
    }

    async fn count(
        &self,
        collection: Collection,
        parent: Option<&str>,
        label: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.settle(self.holds_any(collection)).await?;
        let parent = parent.map(str::to_owned);
        let label = label.map(str::to_owned);
        self.read(move |conn| reader::count(conn, collection, parent.as_deref(), label.as_deref()))
            .await
    }
}

/// Wraps a driver error with what was being done; the driver's types never leave this crate.
pub(crate) fn backend_error(context: &str, error: impl fmt::Display) -> StoreError {
    StoreError::Backend(format!("{context}: {error}"))
}

/// As [`backend_error`], but SQLite's "database or disk is full" (`SQLITE_FULL`, which SQLite
/// reports for `ENOSPC` too) becomes [`StoreError::Full`], so that clients can be told why.
pub(crate) fn driver_error(context: &str, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(format!("{context}: {error}")),
        _ => backend_error(context, error),
    }
}
