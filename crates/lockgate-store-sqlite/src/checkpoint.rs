//! WAL checkpoints on their own thread, off the commit path.
//!
//! SQLite's automatic checkpoint runs inside whichever `COMMIT` pushes the WAL past its
//! threshold, so about one group commit in a hundred also copied the WAL into the database file
//! and fsynced it, and every caller in that group waited for it. The writer therefore turns the
//! automatic checkpoint off and this thread runs a PASSIVE checkpoint (which never blocks the
//! writer or readers) shortly after transactions were committed. Durability does not depend on
//! it: a commit is durable once the WAL is fsynced. On close a final TRUNCATE checkpoint leaves
//! the WAL empty.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use lockgate_store::StoreError;

use crate::backend_error;
use crate::writer::Counters;

/// How long the checkpointer waits between looks at the transaction counter.
const INTERVAL: Duration = Duration::from_millis(200);

/// The checkpoint thread; stops (after a final checkpoint) on [`Checkpointer::stop`] or drop.
pub(crate) struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Opens the checkpointer's own connection to `path` and starts its thread.
    pub(crate) fn start(path: &Path, counters: Arc<Counters>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|e| {
            backend_error(&format!("opening {} for checkpoints", path.display()), e)
        })?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| backend_error("setting busy_timeout", e))?;
        conn.pragma_update(None, "checkpoint_fullfsync", true)
            .map_err(|e| backend_error("setting checkpoint_fullfsync", e))?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lockgate-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &stopped, &counters))
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

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>, counters: &Counters) {
    let mut checkpointed = counters.transactions.load(Ordering::Relaxed);
    // Only a timeout means "keep going": `stop` drops the sender, and nothing is ever sent.
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        let now = counters.transactions.load(Ordering::Relaxed);
        if now != checkpointed {
            checkpoint(conn, "PASSIVE");
            checkpointed = now;
        }
    }
    checkpoint(conn, "TRUNCATE");
}

fn checkpoint(conn: &Connection, mode: &str) {
    let result = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    });
    match result {
        Ok((busy, wal_frames, done)) => {
            tracing::trace!(mode, busy, wal_frames, done, "WAL checkpoint");
        }
        Err(e) => {
            tracing::warn!(mode, error = %e, "WAL checkpoint failed; it is tried again after the next commit")
        }
    }
}
