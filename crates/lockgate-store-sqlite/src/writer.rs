//! The group-commit writer: one thread owns the write connection and turns many callers' commits
//! into one transaction and one fsync.
//!
//! A caller turns its mutations into [`Op`]s (bodies are JSON text already, encoded on the caller's
//! thread, not the writer's), sends them with a oneshot reply sender, and waits. The writer thread
//! blocks for the first queued request, then takes whatever else is already queued (up to
//! [`MAX_GROUP`]), and applies the whole group in one `BEGIN IMMEDIATE … COMMIT`. While that
//! transaction's fsync runs, new requests queue up and form the next group, so the number of
//! fsyncs per second stays bounded by the disk while the number of commits per second grows with
//! the number of concurrent callers.
//!
//! Invariants:
//! - A caller is answered only after the `COMMIT` containing its mutations has returned, so an
//!   `Ok` always means "fsynced".
//! - One caller's failing commit fails only that caller: the group runs as one plain
//!   transaction, and if a statement fails, it is rolled back and run again with each caller's
//!   mutations inside their own `SAVEPOINT`, so the failing one is rolled back alone and the
//!   other callers in the group still commit.
//! - If anything fails at the group level (`BEGIN`, a savepoint, `COMMIT`), the transaction is
//!   rolled back and every caller in the group gets the error; nobody is told `Ok` for work that
//!   might not be on disk.
//! - Callers' commits apply in the order they reached the queue, and each caller's mutations in
//!   the order given.
//! - Between groups the writer keeps the WAL file within its limit (`checkpoint.rs`): past it,
//!   the next group waits for a RESTART checkpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use lockgate_store::{Collection, Mutation, StoreError};

use crate::checkpoint::Checkpoints;
use crate::deferred::{self, Pending};
use crate::driver_error;

/// The most commits applied in one transaction. Large enough that a burst of callers shares one
/// fsync; small enough that one transaction never holds the write lock (and the callers at the
/// front of the queue) for long.
pub(crate) const MAX_GROUP: usize = 1024;

/// A whole row, ready for SQL: the body is already JSON text.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) collection: Collection,
    pub(crate) key: String,
    pub(crate) parent: Option<String>,
    pub(crate) due_at: Option<i64>,
    pub(crate) label: Option<String>,
    pub(crate) position: i64,
    pub(crate) body: String,
}

impl Row {
    /// Runs `sql` with the row's columns as `?1` to `?6`: key, parent, due time, label,
    /// position, body.
    fn execute(&self, conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
        conn.prepare_cached(sql)?.execute((
            &self.key,
            &self.parent,
            self.due_at,
            &self.label,
            self.position,
            &self.body,
        ))
    }

    /// Rewrites the body (and due time) of the stored row if its parent, label and position
    /// are already the row's; `false` when there is no such row. Most rewrites are of this
    /// kind (an execution moving on, a job changing status), and an `UPDATE` that sets no
    /// indexed column changes only the table's page, where an upsert setting every column also
    /// rewrites the row's entry in each of the table's indexes: one page written instead of
    /// four for an execution.
    fn rewrite_body(&self, conn: &Connection, sql: &Statements) -> rusqlite::Result<bool> {
        Ok(self.execute(conn, &sql.of(self.collection).rewrite_body)? > 0)
    }

    fn of(record: lockgate_store::Record) -> Row {
        Row {
            collection: record.collection,
            key: record.key,
            parent: record.parent,
            due_at: record.due_at,
            label: record.label,
            position: record.position,
            body: record.body.into_string(),
        }
    }
}

/// One mutation, ready for SQL: the body is already JSON text.
#[derive(Debug)]
pub(crate) enum Op {
    /// Insert or replace a row.
    Put(Row),
    /// Replace a row only if it exists.
    Update(Row),
    /// Set a row's label and position, if it exists.
    Relabel {
        collection: Collection,
        key: String,
        label: Option<String>,
        position: i64,
    },
    /// Delete one row by key.
    Delete { collection: Collection, key: String },
    /// Delete every row with this parent.
    DeleteChildren {
        collection: Collection,
        parent: String,
    },
}

impl Op {
    /// The statement a mutation makes; a body is already JSON text.
    pub(crate) fn from_mutation(mutation: Mutation) -> Op {
        match mutation {
            Mutation::Put(record) => Op::Put(Row::of(record)),
            Mutation::Update(record) => Op::Update(Row::of(record)),
            Mutation::Relabel {
                collection,
                key,
                label,
                position,
            } => Op::Relabel {
                collection,
                key,
                label,
                position,
            },
            Mutation::Delete { collection, key } => Op::Delete { collection, key },
            Mutation::DeleteChildren { collection, parent } => {
                Op::DeleteChildren { collection, parent }
            }
        }
    }

    /// The collection the mutation writes to.
    pub(crate) fn collection(&self) -> Collection {
        match self {
            Op::Put(row) | Op::Update(row) => row.collection,
            Op::Relabel { collection, .. }
            | Op::Delete { collection, .. }
            | Op::DeleteChildren { collection, .. } => *collection,
        }
    }

    /// The one key the mutation writes, or `None` if it writes rows by their parent.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Op::Put(row) | Op::Update(row) => Some(&row.key),
            Op::Relabel { key, .. } | Op::Delete { key, .. } => Some(key),
            Op::DeleteChildren { .. } => None,
        }
    }

    fn apply(&self, conn: &Connection, sql: &Statements) -> rusqlite::Result<()> {
        match self {
            Op::Put(row) => {
                if !row.rewrite_body(conn, sql)? {
                    row.execute(conn, &sql.of(row.collection).upsert)?;
                }
            }
            Op::Update(row) => {
                if !row.rewrite_body(conn, sql)? {
                    row.execute(conn, &sql.of(row.collection).update)?;
                }
            }
            Op::Relabel {
                collection,
                key,
                label,
                position,
            } => {
                conn.prepare_cached(&sql.of(*collection).relabel)?
                    .execute((key, label, position))?;
            }
            Op::Delete { collection, key } => {
                conn.prepare_cached(&sql.of(*collection).delete)?
                    .execute([key])?;
            }
            Op::DeleteChildren { collection, parent } => {
                conn.prepare_cached(&sql.of(*collection).delete_children)?
                    .execute([parent])?;
            }
        }
        Ok(())
    }
}

/// The text of every statement the writer runs, per collection, written once when the writer
/// starts rather than once per mutation (the statement cache then finds each by its text).
struct Statements {
    /// Indexed by the collection's place in [`Collection::ALL`].
    collections: Vec<(Collection, CollectionStatements)>,
}

/// The statements of one collection's table; `?1` to `?6` are a [`Row`]'s columns.
struct CollectionStatements {
    /// [`Row::rewrite_body`].
    rewrite_body: String,
    /// Insert, or replace every column of the row with the same key.
    upsert: String,
    /// Replace every column of the row with the same key, if there is one.
    update: String,
    /// Set label (`?2`) and position (`?3`) of the row with key `?1`.
    relabel: String,
    /// Delete the row with key `?1`.
    delete: String,
    /// Delete every row with parent `?1`.
    delete_children: String,
}

impl Statements {
    fn new() -> Statements {
        let collections = Collection::ALL
            .iter()
            .map(|&collection| {
                let table = collection.as_str();
                let statements = CollectionStatements {
                    rewrite_body: format!(
                        "UPDATE {table} SET due_at = ?3, body = ?6 \
                         WHERE key = ?1 AND parent IS ?2 AND label IS ?4 AND position = ?5"
                    ),
                    upsert: format!(
                        "INSERT INTO {table} (key, parent, due_at, label, position, body) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                         ON CONFLICT (key) DO UPDATE SET \
                         parent = excluded.parent, due_at = excluded.due_at, \
                         label = excluded.label, position = excluded.position, \
                         body = excluded.body"
                    ),
                    update: format!(
                        "UPDATE {table} SET parent = ?2, due_at = ?3, label = ?4, position = ?5, \
                         body = ?6 WHERE key = ?1"
                    ),
                    relabel: format!("UPDATE {table} SET label = ?2, position = ?3 WHERE key = ?1"),
                    delete: format!("DELETE FROM {table} WHERE key = ?1"),
                    delete_children: format!("DELETE FROM {table} WHERE parent = ?1"),
                };
                (collection, statements)
            })
            .collect();
        Statements { collections }
    }

    fn of(&self, collection: Collection) -> &CollectionStatements {
        // `ALL` lists the collections in declaration order, so a collection's discriminant is
        // its place; the assertion keeps that true if the order ever changes.
        let (listed, statements) = &self.collections[collection as usize];
        debug_assert_eq!(*listed, collection);
        statements
    }
}

/// One caller's commit waiting for the writer.
struct Request {
    /// Mutations written to their tables in the group's transaction.
    ops: Vec<Op>,
    /// Mutations of deferred collections, logged in the group's transaction (`deferred.rs`).
    deferred: Option<Deferred>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

impl Request {
    /// A commit of `ops`, split into those written now and those deferred.
    fn new(ops: Vec<Op>, reply: oneshot::Sender<Result<(), StoreError>>) -> Request {
        let (later, now): (Vec<Op>, Vec<Op>) = ops
            .into_iter()
            .partition(|op| deferred::is_deferred(op.collection()));
        let deferred = (!later.is_empty()).then(|| Deferred {
            log: deferred::encode(&later),
            ops: later,
        });
        Request {
            ops: now,
            deferred,
            reply,
        }
    }

    /// Runs the commit's statements inside the open transaction.
    fn apply(&self, conn: &Connection, sql: &Statements) -> rusqlite::Result<()> {
        self.ops.iter().try_for_each(|op| op.apply(conn, sql))?;
        match &self.deferred {
            Some(d) => deferred::append(conn, &d.log),
            None => Ok(()),
        }
    }
}

/// One commit's deferred mutations and the log row that makes them durable.
struct Deferred {
    ops: Vec<Op>,
    /// [`deferred::encode`] of `ops`, made on the caller's thread.
    log: String,
}

/// What the writer thread is asked to do.
enum Message {
    /// Make a commit durable.
    Commit(Request),
    /// Write every deferred mutation to its table, then answer (a reader needs them).
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// Counters the writer keeps, read by [`crate::SqliteStore::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Commits acknowledged with `Ok`.
    pub(crate) commits: AtomicU64,
    /// Commits answered with an error.
    pub(crate) failed_commits: AtomicU64,
    /// Transactions committed, i.e. WAL fsyncs.
    pub(crate) transactions: AtomicU64,
    /// Commits sent to the writer and not answered yet.
    pub(crate) pending: AtomicU64,
    /// Flushes of deferred mutations committed.
    pub(crate) flushes: AtomicU64,
}

/// The handle callers use to reach the writer thread.
pub(crate) struct Writer {
    /// `None` once closed; taking it disconnects the channel, which tells the thread to finish.
    sender: RwLock<Option<mpsc::Sender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    /// What waits for a flush, shared with the store's reads.
    pending: Arc<Pending>,
}

impl Writer {
    /// Starts the writer thread, which takes ownership of the (already migrated) connection and
    /// keeps the WAL within its limit through `checkpoints` between groups.
    pub(crate) fn start(
        conn: Connection,
        checkpoints: Arc<Checkpoints>,
    ) -> Result<Writer, StoreError> {
        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let pending = Arc::new(Pending::default());
        let thread_counters = Arc::clone(&counters);
        let thread_pending = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("lockgate-sqlite-writer".into())
            .spawn(move || {
                run(
                    conn,
                    receiver,
                    &thread_counters,
                    &checkpoints,
                    &thread_pending,
                )
            })
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;
        Ok(Writer {
            sender: RwLock::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            counters,
            pending,
        })
    }

    /// What waits for a flush.
    pub(crate) fn pending(&self) -> &Pending {
        &self.pending
    }

    /// Asks the writer to write every deferred mutation to its table and waits until it has.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let sender = self.sender.read().unwrap_or_else(PoisonError::into_inner);
            let Some(sender) = sender.as_ref() else {
                // Closing flushed what was waiting; if that failed, the log replays at the
                // next open.
                return Err(StoreError::Closed);
            };
            if sender.send(Message::Flush(reply)).is_err() {
                return Err(StoreError::Closed);
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the store's writer thread stopped without answering".into(),
            ))
        })
    }

    /// Queues a commit and waits until it is durable (or has failed).
    pub(crate) async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Request::new(ops, reply);
        {
            // The guard is dropped before the await below, so the future stays `Send`.
            let sender = self.sender.read().unwrap_or_else(PoisonError::into_inner);
            let Some(sender) = sender.as_ref() else {
                return Err(StoreError::Closed);
            };
            self.counters.pending.fetch_add(1, Ordering::Relaxed);
            if sender.send(Message::Commit(request)).is_err() {
                // The thread is gone (it only exits when the channel is closed, or by a bug).
                self.counters.pending.fetch_sub(1, Ordering::Relaxed);
                return Err(StoreError::Closed);
            }
        }
        // Dropping this future does not withdraw the commit: it is already queued and will be
        // applied; only the answer is lost.
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the store's writer thread stopped without answering".into(),
            ))
        })
    }

    /// Whether [`Writer::close`] has been called (the thread may still be finishing).
    pub(crate) fn is_closed(&self) -> bool {
        self.sender
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// The writer's counters.
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Stops taking commits, lets the thread finish everything already queued, and waits for it.
    pub(crate) fn close(&self) -> Result<(), StoreError> {
        drop(
            self.sender
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match thread {
            Some(thread) => thread
                .join()
                .map_err(|_| StoreError::Backend("the store's writer thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "closing the SQLite store");
        }
    }
}

/// The writer thread's loop: runs until every sender is gone and the queue is empty.
fn run(
    conn: Connection,
    receiver: mpsc::Receiver<Message>,
    counters: &Counters,
    checkpoints: &Checkpoints,
    pending: &Pending,
) {
    let statements = Statements::new();
    // Deferred mutations of acknowledged commits, in commit order, not yet in their tables.
    let mut backlog: Vec<Op> = Vec::new();
    // The size of the backlog's log rows, a measure of what a flush will write.
    let mut backlog_bytes = 0_usize;
    // Cleared when a flush fails, so that a failing disk is not retried every idle moment.
    let mut flush_when_idle = true;
    let flush =
        |backlog: &mut Vec<Op>| flush_backlog(&conn, &statements, backlog, pending, counters);
    loop {
        // `recv` keeps returning queued requests after the channel is disconnected and only
        // fails once the queue is empty, so closing never drops a commit that was already sent.
        let first = if backlog.is_empty() || !flush_when_idle {
            match receiver.recv() {
                Ok(message) => message,
                Err(_) => break,
            }
        } else {
            match receiver.recv_timeout(IDLE_FLUSH) {
                Ok(message) => message,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    flush_when_idle = flush(&mut backlog).is_ok();
                    if backlog.is_empty() {
                        backlog_bytes = 0;
                    }
                    checkpoints.after_commit();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut group = Vec::with_capacity(16);
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Commit(request) => group.push(request),
                Message::Flush(reply) => flushes.push(reply),
            }
            next = if group.len() < MAX_GROUP {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        if !group.is_empty() {
            let results = write_group(&conn, &statements, &group, counters);
            for (request, result) in group.into_iter().zip(results) {
                let counter = if result.is_ok() {
                    &counters.commits
                } else {
                    &counters.failed_commits
                };
                counter.fetch_add(1, Ordering::Relaxed);
                counters.pending.fetch_sub(1, Ordering::Relaxed);
                if let (Ok(()), Some(deferred)) = (&result, request.deferred) {
                    // Before the answer: from then on a read must find them, flushed or waiting.
                    pending.record(&deferred.ops);
                    backlog_bytes += deferred.log.len();
                    backlog.extend(deferred.ops);
                    flush_when_idle = true;
                }
                // The caller may have stopped waiting; its commit is applied all the same.
                let _ = request.reply.send(result);
            }
        }
        // After the answers, so that a checkpoint delays the next group, never the callers of
        // the one just committed; and before a flush, so that the WAL passes its limit by one
        // transaction at most, not by a group and a flush.
        checkpoints.after_commit();
        if !flushes.is_empty()
            || backlog.len() >= deferred::FLUSH_AT_OPS
            || backlog_bytes >= deferred::FLUSH_AT_BYTES
        {
            let result = flush(&mut backlog);
            flush_when_idle = result.is_ok();
            if backlog.is_empty() {
                backlog_bytes = 0;
            }
            for reply in flushes {
                let _ = reply.send(result.clone());
            }
            checkpoints.after_commit();
        }
    }
    // Not needed for durability (the log is replayed at the next open), but a store closed
    // cleanly then opens without replaying anything.
    if flush(&mut backlog).is_err() {
        tracing::warn!("deferred mutations stay in the log and are written at the next open");
    }
    if let Err((_, e)) = conn.close() {
        tracing::error!(error = %e, "closing the SQLite write connection");
    }
}

/// How long the writer waits for another commit before it flushes the deferred mutations.
/// Under load commits keep coming and the backlog is flushed when it reaches
/// [`deferred::FLUSH_AT_OPS`]; when they stop, the tables catch up at once.
const IDLE_FLUSH: std::time::Duration = std::time::Duration::from_millis(5);

/// Writes the backlog to its tables ([`deferred::flush`]) and, once that is committed, forgets
/// it: the log is empty and no read needs to wait.
fn flush_backlog(
    conn: &Connection,
    sql: &Statements,
    backlog: &mut Vec<Op>,
    pending: &Pending,
    counters: &Counters,
) -> Result<(), StoreError> {
    if backlog.is_empty() {
        return Ok(());
    }
    if let Err(error) = deferred::flush(conn, backlog, |op| op.apply(conn, sql)) {
        tracing::error!(%error, mutations = backlog.len(), "flushing deferred mutations failed");
        return Err(error);
    }
    backlog.clear();
    pending.clear();
    counters.flushes.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Writes the deferred mutations a store left in its log when it stopped (see `deferred.rs`);
/// called when the store opens, before the writer starts. Returns how many there were.
pub(crate) fn replay_log(conn: &Connection) -> Result<usize, StoreError> {
    let ops = deferred::read_log(conn)?;
    if ops.is_empty() {
        return Ok(0);
    }
    let sql = Statements::new();
    deferred::flush(conn, &ops, |op| op.apply(conn, &sql))?;
    Ok(ops.len())
}

/// Applies a group of commits in one transaction and returns each caller's outcome, in order.
fn write_group(
    conn: &Connection,
    sql: &Statements,
    group: &[Request],
    counters: &Counters,
) -> Vec<Result<(), StoreError>> {
    match try_write_group(conn, sql, group) {
        Ok(results) => {
            counters.transactions.fetch_add(1, Ordering::Relaxed);
            results
        }
        Err(error) => {
            if !conn.is_autocommit() {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "rolling back a failed group commit");
                }
            }
            tracing::error!(%error, commits = group.len(), "group commit failed");
            group.iter().map(|_| Err(error.clone())).collect()
        }
    }
}

/// Runs one statement without parameters.
fn step(conn: &Connection, sql: &str, what: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(|e| driver_error(what, e))
}

/// The body of [`write_group`]; an `Err` is a group-level failure that fails every caller.
///
/// A caller's commit almost never fails on its own (the statements are upserts, updates and
/// deletes by key; what fails is the disk, for everybody), so the group first runs as one plain
/// transaction. Only if a statement fails is that transaction rolled back and the group run
/// again with a savepoint per caller, which sorts the failing commits from the others. The
/// outcome is the same either way; the plain run saves SQLite two statements per caller and a
/// copy of every page a caller changes into the savepoint's journal.
fn try_write_group(
    conn: &Connection,
    sql: &Statements,
    group: &[Request],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    step(conn, "BEGIN IMMEDIATE", "starting the write transaction")?;
    let applied = group
        .iter()
        .try_for_each(|request| request.apply(conn, sql));
    if applied.is_ok() {
        step(conn, "COMMIT", "committing the write transaction")?;
        return Ok(group.iter().map(|_| Ok(())).collect());
    }
    if !conn.is_autocommit() {
        step(
            conn,
            "ROLLBACK",
            "rolling back before retrying commit by commit",
        )?;
    }
    try_write_each(conn, sql, group)
}

/// [`try_write_group`] with a savepoint per caller: a caller whose statements fail is rolled
/// back alone and told so; the others commit.
fn try_write_each(
    conn: &Connection,
    sql: &Statements,
    group: &[Request],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let step = |sql: &str, what: &str| step(conn, sql, what);
    step("BEGIN IMMEDIATE", "starting the write transaction")?;
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        step("SAVEPOINT lockgate_commit", "opening a savepoint")?;
        match request.apply(conn, sql) {
            Ok(()) => {
                step("RELEASE lockgate_commit", "releasing a savepoint")?;
                results.push(Ok(()));
            }
            Err(e) => {
                let error = driver_error("applying a commit", e);
                // Some errors (disk full, I/O) make SQLite roll back the whole transaction on
                // its own: then there is no savepoint left to roll back to, and the error is the
                // whole group's (a full disk stays a full disk for every caller).
                if conn.is_autocommit() {
                    return Err(error);
                }
                step(
                    "ROLLBACK TO lockgate_commit",
                    "rolling back a failed commit's savepoint",
                )?;
                step("RELEASE lockgate_commit", "releasing a savepoint")?;
                results.push(Err(error));
            }
        }
        // Carrying on outside a transaction would run the next commits on their own and report
        // the earlier ones as committed, so treat it as a group failure.
        if conn.is_autocommit() {
            return Err(StoreError::Backend(
                "SQLite ended the write transaction early".into(),
            ));
        }
    }
    step("COMMIT", "committing the write transaction")?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use lockgate_store::Record;

    use super::*;

    fn put(key: &str, bytes: usize) -> Request {
        let record = Record::new(
            Collection::Pipeline,
            key,
            serde_json::json!({ "padding": "x".repeat(bytes) }),
        );
        Request {
            ops: vec![Op::from_mutation(Mutation::Put(record))],
            deferred: None,
            // The tests read the results `write_group` returns, not the replies.
            reply: oneshot::channel().0,
        }
    }

    /// A migrated write connection to a fresh database (kept while the directory lives).
    fn writer_connection() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::connection::open_writer(
            &dir.path().join("lockgate.db"),
            crate::DEFAULT_WAL_LIMIT_BYTES,
        )
        .unwrap();
        crate::migrations::migrate(&mut conn).unwrap();
        (dir, conn)
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM pipelines", [], |r| r.get(0))
            .unwrap()
    }

    /// SQLite answers `SQLITE_FULL` both for a full disk (`ENOSPC`) and for a database at its
    /// `max_page_count`; the second lets a test fill the "disk" without root.
    #[test]
    fn a_full_disk_fails_the_commit_as_full_writes_nothing_and_later_commits_succeed() {
        let (_dir, conn) = writer_connection();
        let counters = Counters::default();
        assert!(write_group(&conn, &Statements::new(), &[put("small", 10)], &counters)[0].is_ok());
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();

        let results = write_group(
            &conn,
            &Statements::new(),
            &[put("big", 64 * 1024)],
            &counters,
        );
        match &results[0] {
            Err(StoreError::Full(reason)) => {
                assert!(reason.contains("database or disk is full"), "{reason}")
            }
            other => panic!("expected StoreError::Full, got {other:?}"),
        }
        assert_eq!(rows(&conn), 1, "nothing of the failed commit was written");

        // Space is freed: writes work again.
        conn.pragma_update(None, "max_page_count", pages + 1000)
            .unwrap();
        assert!(write_group(
            &conn,
            &Statements::new(),
            &[put("big", 64 * 1024)],
            &counters
        )[0]
        .is_ok());
        assert_eq!(rows(&conn), 2);
    }

    /// A group runs as one plain transaction; when one caller's statements fail, the group is
    /// run again commit by commit, so only that caller fails and the others are written.
    #[test]
    fn one_failing_commit_in_a_group_fails_alone() {
        let (_dir, conn) = writer_connection();
        let counters = Counters::default();
        assert!(write_group(&conn, &Statements::new(), &[put("first", 10)], &counters)[0].is_ok());
        // A statement that fails on its own, leaving the transaction open.
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON pipelines WHEN NEW.key = 'refused' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .unwrap();

        let group = [put("a", 10), put("refused", 10), put("b", 10)];
        let results = write_group(&conn, &Statements::new(), &group, &counters);
        assert!(results[0].is_ok(), "{:?}", results[0]);
        match &results[1] {
            Err(e) => assert!(e.to_string().contains("refused by the test"), "{e}"),
            Ok(()) => panic!("the refused commit succeeded"),
        }
        assert!(results[2].is_ok(), "{:?}", results[2]);
        let keys: Vec<String> = conn
            .prepare("SELECT key FROM pipelines ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, ["a", "b", "first"]);
        assert_eq!(counters.transactions.load(Ordering::Relaxed), 2);
    }
}
