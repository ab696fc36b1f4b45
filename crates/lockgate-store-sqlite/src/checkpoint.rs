//! WAL checkpoints: PASSIVE ones on their own thread, off the commit path, and a RESTART one
//! between group commits whenever the WAL file has passed its size limit.
//!
//! SQLite's automatic checkpoint runs inside whichever `COMMIT` pushes the WAL past its
//! threshold, so about one group commit in a hundred also copied the WAL into the database file
//! and fsynced it, and every caller in that group waited for it. The writer therefore turns the
//! automatic checkpoint off and the checkpoint thread runs a PASSIVE checkpoint (which never
//! blocks the writer or readers) shortly after transactions were committed.
//!
//! PASSIVE checkpoints alone do not keep the WAL file small. SQLite writes the WAL from its
//! start again only once every frame has been copied back and no reader still reads an older
//! snapshot out of it; under sustained writes with overlapping reads that moment may never
//! come, and the file grew to gigabytes. So after each group commit the writer thread looks at
//! the file's size ([`Checkpoints::after_commit`]); past the limit it runs a RESTART checkpoint,
//! which waits (up to the busy timeout) for the readers of older snapshots to finish, copies
//! every frame back, and leaves the WAL to be rewritten from its start by the next commit. That
//! commit also cuts the file back to the limit (`journal_size_limit`, set on the writer's
//! connection). Commits queued meanwhile wait: the limit is kept by slowing writers down, never
//! by acknowledging anything less durably. The file can pass the limit by at most one group
//! commit's pages, unless a reader holds one snapshot for longer than the busy timeout.
//!
//! Durability never depends on checkpoints: a commit is durable once the WAL is fsynced. On
//! close a final TRUNCATE checkpoint leaves the WAL empty.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use lockgate_store::StoreError;

use crate::writer::Counters;
use crate::{backend_error, WalStats};

/// How long the checkpoint thread waits between looks at the transaction counter.
const INTERVAL: Duration = Duration::from_millis(200);

/// How long a RESTART checkpoint waits for readers of older snapshots (and for another
/// process's writer) before it gives up until the next group commit.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The checkpoint connection, the WAL file's limit and what has been done with them; shared
/// by the checkpoint thread (PASSIVE) and the writer thread (RESTART past the limit).
pub(crate) struct Checkpoints {
    /// One connection for both kinds of checkpoint: SQLite refuses a second checkpoint while
    /// one runs instead of waiting for it, so the mutex makes the RESTART wait for a PASSIVE
    /// in progress rather than fail.
    conn: Mutex<Connection>,
    wal_path: PathBuf,
    limit: u64,
    /// PASSIVE checkpoints run.
    passive: AtomicU64,
    /// RESTART checkpoints run because the WAL had passed the limit.
    forced: AtomicU64,
    /// RESTART checkpoints that could not finish.
    blocked: AtomicU64,
    /// The WAL file's size after the last group commit.
    wal_bytes: AtomicU64,
    /// The largest `wal_bytes` seen.
    wal_peak_bytes: AtomicU64,
}

impl Checkpoints {
    /// Opens the checkpoint connection to the database at `db_path`, whose WAL file is to be kept
    /// near `limit` bytes.
    pub(crate) fn open(db_path: &Path, limit: u64) -> Result<Checkpoints, StoreError> {
        let conn = Connection::open(db_path).map_err(|e| {
            backend_error(&format!("opening {} for checkpoints", db_path.display()), e)
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| backend_error("setting busy_timeout", e))?;
        conn.pragma_update(None, "checkpoint_fullfsync", true)
            .map_err(|e| backend_error("setting checkpoint_fullfsync", e))?;
        let mut wal_path = db_path.as_os_str().to_owned();
        wal_path.push("-wal");
        Ok(Checkpoints {
            conn: Mutex::new(conn),
            wal_path: PathBuf::from(wal_path),
            limit,
            passive: AtomicU64::new(0),
            forced: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            wal_bytes: AtomicU64::new(0),
            wal_peak_bytes: AtomicU64::new(0),
        })
    }

    /// Called by the writer thread after each group commit, before it takes the next group:
    /// records the WAL file's size and, if it is past the limit, runs a RESTART checkpoint.
    pub(crate) fn after_commit(&self) {
        let size = self.wal_size();
        self.wal_bytes.store(size, Ordering::Relaxed);
        self.wal_peak_bytes.fetch_max(size, Ordering::Relaxed);
        if size <= self.limit {
            return;
        }
        self.forced.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            wal_bytes = size,
            limit = self.limit,
            "the WAL file passed its limit; running a RESTART checkpoint"
        );
        match self.run("RESTART") {
            Some(outcome) if !outcome.busy => {}
            Some(_) => {
                self.blocked.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    wal_bytes = size,
                    limit = self.limit,
                    "a reader kept the WAL from being restarted; trying again after the next commit"
                );
            }
            None => {
                self.blocked.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Copies what it can of the WAL into the database file without waiting for anyone.
    fn passive(&self) {
        self.passive.fetch_add(1, Ordering::Relaxed);
        self.run("PASSIVE");
    }

    /// Copies the whole WAL back and empties the file; for closing, when nobody writes.
    fn truncate(&self) {
        self.run("TRUNCATE");
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> WalStats {
        WalStats {
            checkpoints: self.passive.load(Ordering::Relaxed),
            forced_checkpoints: self.forced.load(Ordering::Relaxed),
            blocked_checkpoints: self.blocked.load(Ordering::Relaxed),
            wal_bytes: self.wal_bytes.load(Ordering::Relaxed),
            wal_peak_bytes: self.wal_peak_bytes.load(Ordering::Relaxed),
            wal_limit_bytes: self.limit,
        }
    }

    fn wal_size(&self) -> u64 {
        // No file (not created yet, or removed by a clean close) is an empty WAL.
        std::fs::metadata(&self.wal_path).map_or(0, |m| m.len())
    }

    /// Runs one checkpoint; `None` if SQLite failed (logged).
    fn run(&self, mode: &str) -> Option<Outcome> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let result = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        });
        match result {
            Ok((busy, wal_frames, copied)) => {
                tracing::trace!(mode, busy, wal_frames, copied, "WAL checkpoint");
                Some(Outcome { busy: busy != 0 })
            }
            Err(e) => {
                tracing::warn!(mode, error = %e, "WAL checkpoint failed; it is tried again after the next commit");
                None
            }
        }
    }
}

/// What a checkpoint reported.
struct Outcome {
    /// It could not finish: a reader or another writer was in the way past the busy timeout
    /// (RESTART, TRUNCATE), or another connection was checkpointing.
    busy: bool,
}

/// The checkpoint thread; stops (after a final checkpoint) on [`Checkpointer::stop`] or drop.
pub(crate) struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the thread that runs PASSIVE checkpoints after commits the writer counts.
    pub(crate) fn start(
        checkpoints: Arc<Checkpoints>,
        counters: Arc<Counters>,
    ) -> Result<Self, StoreError> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lockgate-sqlite-checkpoint".into())
            .spawn(move || run(&checkpoints, &stopped, &counters))
            .map_err(|e| StoreError::Backend(format!("starting the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs a last checkpoint and waits for the thread to end.
    pub(crate) fn stop(&self) {
        drop(
            self.stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the SQLite checkpoint thread panicked");
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(checkpoints: &Checkpoints, stopped: &mpsc::Receiver<()>, counters: &Counters) {
    let mut checkpointed = counters.transactions.load(Ordering::Relaxed);
    // Only a timeout means "keep going": `stop` drops the sender, and nothing is ever sent.
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        let now = counters.transactions.load(Ordering::Relaxed);
        if now != checkpointed {
            checkpoints.passive();
            checkpointed = now;
        }
    }
    checkpoints.truncate();
}
