//! WAL checkpoints: PASSIVE ones on their own thread, off the commit path, and a RESTART one
//! between group commits whenever the WAL file has passed its size limit.
//!
//! SQLite's automatic checkpoint runs inside whichever `COMMIT` pushes the WAL past its
//! threshold, so about one group commit in a hundred also copied the WAL into the database file
//! and fsynced it, and every caller in that group waited for it. The writer therefore turns the
//! automatic checkpoint off and the checkpoint thread runs a PASSIVE checkpoint (which never
//! blocks the writer or readers) shortly after transactions were committed.
//!
//! SQLite writes the WAL from its start again only when a write transaction begins while every
//! frame has been copied back and no reader still reads an older snapshot out of it. A PASSIVE
//! checkpoint every [`INTERVAL`] lags a sustained write load by up to an interval's worth of
//! frames, so that moment rarely comes. Once the log in use (the frames since the WAL last
//! started over, as the last checkpoint counted them; the file itself does not shrink) passes a
//! quarter of the limit, the writer therefore nudges the checkpoint thread after every group
//! commit: a PASSIVE checkpoint then copies just that group's frames, usually before the next
//! group begins, and the next group starts the WAL over.
//!
//! Under sustained writes with overlapping reads even that moment may not come, and the file
//! grew to gigabytes. So after each group commit the writer thread also looks at
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use lockgate_store::StoreError;

use crate::writer::Counters;
use crate::{backend_error, WalStats};

/// How long the checkpoint thread waits between looks at the transaction counter, unless the
/// writer nudges it.
const INTERVAL: Duration = Duration::from_millis(200);

/// Past this share of its limit (one part in this many), the WAL is checkpointed after every
/// group commit, so that it starts over long before it reaches the limit.
const NUDGE_FROM: u64 = 4;

/// The header SQLite writes before each page in the WAL.
const WAL_FRAME_HEADER: u64 = 24;

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
    /// The bytes of log in use when the last checkpoint ran: frames since the WAL last started
    /// over, each a page and its header.
    log_bytes: AtomicU64,
    /// The database's page size plus a WAL frame's header.
    frame_bytes: u64,
    /// What the checkpoint thread is asked to do next.
    signal: Mutex<Signal>,
    signalled: Condvar,
}

/// Requests to the checkpoint thread.
#[derive(Default)]
struct Signal {
    /// Checkpoint now: a group commit added frames to a WAL past [`NUDGE_FROM`].
    nudged: bool,
    /// Run a last checkpoint and end.
    stop: bool,
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
        let page_size: u64 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(|e| backend_error("reading the page size", e))?;
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
            log_bytes: AtomicU64::new(0),
            frame_bytes: page_size + WAL_FRAME_HEADER,
            signal: Mutex::new(Signal::default()),
            signalled: Condvar::new(),
        })
    }

    /// Called by the writer thread after each group commit, before it takes the next group:
    /// records the WAL file's size, nudges the checkpoint thread once it is past a quarter of
    /// the limit and, if it is past the limit, runs a RESTART checkpoint.
    pub(crate) fn after_commit(&self) {
        let size = self.wal_size();
        self.wal_bytes.store(size, Ordering::Relaxed);
        self.wal_peak_bytes.fetch_max(size, Ordering::Relaxed);
        if self.log_bytes.load(Ordering::Relaxed) > self.limit / NUDGE_FROM {
            self.signal().nudged = true;
            self.signalled.notify_one();
        }
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

    fn signal(&self) -> MutexGuard<'_, Signal> {
        self.signal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to [`INTERVAL`] for a nudge or a stop; returns (nudged, stop) and clears the
    /// nudge.
    fn wait(&self) -> (bool, bool) {
        let signal = self.signal();
        let (mut signal, _) = self
            .signalled
            .wait_timeout_while(signal, INTERVAL, |s| !s.nudged && !s.stop)
            .unwrap_or_else(PoisonError::into_inner);
        let nudged = std::mem::take(&mut signal.nudged);
        (nudged, signal.stop)
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
                let frames = u64::try_from(wal_frames).unwrap_or(0);
                self.log_bytes
                    .store(frames * self.frame_bytes, Ordering::Relaxed);
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
    checkpoints: Arc<Checkpoints>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the thread that runs PASSIVE checkpoints after commits the writer counts.
    pub(crate) fn start(
        checkpoints: Arc<Checkpoints>,
        counters: Arc<Counters>,
    ) -> Result<Self, StoreError> {
        let shared = Arc::clone(&checkpoints);
        let thread = std::thread::Builder::new()
            .name("lockgate-sqlite-checkpoint".into())
            .spawn(move || run(&shared, &counters))
            .map_err(|e| StoreError::Backend(format!("starting the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            checkpoints,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs a last checkpoint and waits for the thread to end.
    pub(crate) fn stop(&self) {
        self.checkpoints.signal().stop = true;
        self.checkpoints.signalled.notify_one();
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

fn run(checkpoints: &Checkpoints, counters: &Counters) {
    let mut checkpointed = counters.transactions.load(Ordering::Relaxed);
    loop {
        let (nudged, stop) = checkpoints.wait();
        if stop {
            break;
        }
        let now = counters.transactions.load(Ordering::Relaxed);
        if nudged || now != checkpointed {
            checkpoints.passive();
            checkpointed = now;
        }
    }
    checkpoints.truncate();
}
