//! WAL checkpoints happen on their own thread while the store is open, the WAL file stays
//! within its limit whatever the write rate, and closing the store leaves an empty WAL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockgate_store::{Collection, Mutation, Record, Store};
use lockgate_store_sqlite::{SqliteStore, StoreOptions, DB_FILE_NAME};
use rusqlite::Connection;

use crate::{fresh_store, put};

/// A fresh store whose WAL is kept to `limit` bytes, and the path of its WAL file.
fn store_with_wal_limit(limit: u64) -> (tempfile::TempDir, SqliteStore, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_with(
        dir.path(),
        StoreOptions {
            wal_limit_bytes: limit,
        },
    )
    .expect("store opens");
    let wal = dir.path().join(format!("{DB_FILE_NAME}-wal"));
    (dir, store, wal)
}

fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test]
async fn committed_data_reaches_the_database_file_without_a_commit_doing_the_checkpoint() {
    let (dir, store) = fresh_store();
    let db = dir.path().join(DB_FILE_NAME);
    let before = size(&db);
    for n in 0..200 {
        store
            .commit(vec![put(Collection::Execution, &format!("e{n:04}"))])
            .await
            .expect("commit");
    }
    // The checkpoint thread copies the WAL into the database file within a fraction of a
    // second; the deadline only guards against it never happening.
    let deadline = Instant::now() + Duration::from_secs(5);
    while size(&db) <= before {
        assert!(
            Instant::now() < deadline,
            "no checkpoint grew {}",
            db.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn closing_the_store_leaves_an_empty_wal_and_every_record() {
    let (dir, store) = fresh_store();
    for n in 0..50 {
        store
            .commit(vec![put(Collection::Job, &format!("j{n:04}"))])
            .await
            .expect("commit");
    }
    store.close().expect("close");
    let wal = dir.path().join(format!("{DB_FILE_NAME}-wal"));
    assert_eq!(size(&wal), 0, "the WAL is truncated on close");
    let reopened = lockgate_store_sqlite::SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(
        reopened.load(Collection::Job).await.expect("load").len(),
        50
    );
}

#[test]
fn a_store_opened_without_options_keeps_its_wal_to_64_mib() {
    let (_dir, store) = fresh_store();
    assert_eq!(store.wal_stats().wal_limit_bytes, 64 * 1024 * 1024);
    assert_eq!(
        StoreOptions::default().wal_limit_bytes,
        lockgate_store_sqlite::DEFAULT_WAL_LIMIT_BYTES
    );
}

/// 20,000 puts of 4 KiB bodies from concurrent tasks (so they form group commits), while a
/// reader runs short read transactions back to back, so that there is hardly a moment without
/// a reader in the WAL: the file must stay within its limit plus one group commit's pages
/// (kept there by the checkpoints after each group, or failing those by forced RESTARTs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_file_stays_within_its_limit_under_sustained_writes_and_reads() {
    const LIMIT: u64 = 4 * 1024 * 1024;
    const TASKS: usize = 4;
    const COMMITS_PER_TASK: usize = 500;
    const PUTS_PER_COMMIT: usize = 10;
    const KEYS: usize = 2_000;
    // One group holds at most one commit per task: TASKS × PUTS_PER_COMMIT records of two
    // pages each (a 4 KiB body overflows a 4 KiB page), plus index pages; 4 KiB pages plus a
    // 24-byte frame header each. Twice that, for index pages and slack.
    const MARGIN: u64 = 2 * (TASKS * PUTS_PER_COMMIT * 2 * (4096 + 24)) as u64;

    let (dir, store, wal) = store_with_wal_limit(LIMIT);
    let writing = Arc::new(AtomicBool::new(true));

    let reader = {
        let writing = Arc::clone(&writing);
        let db = dir.path().join(DB_FILE_NAME);
        let wal = wal.clone();
        std::thread::spawn(move || {
            let conn = Connection::open(db).expect("reader connection");
            conn.busy_timeout(Duration::from_secs(5))
                .expect("busy timeout");
            let (mut reads, mut largest) = (0_u64, 0_u64);
            while writing.load(Ordering::SeqCst) {
                // Two statements in one transaction: one snapshot held across both.
                conn.execute_batch("BEGIN").expect("begin");
                let rows: i64 = conn
                    .query_row("SELECT COUNT(*) FROM pipelines", [], |r| r.get(0))
                    .expect("count");
                let key = format!("wal/{:04}", reads % KEYS as u64);
                conn.query_row(
                    "SELECT COUNT(*) FROM pipelines WHERE key = ?1",
                    [key],
                    |r| r.get::<_, i64>(0),
                )
                .expect("lookup");
                conn.execute_batch("COMMIT").expect("commit");
                assert!(rows <= KEYS as i64);
                largest = largest.max(size(&wal));
                reads += 1;
            }
            (reads, largest)
        })
    };

    let body = serde_json::json!({ "declaration": "x".repeat(4096) });
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            let body = body.clone();
            let wal = wal.clone();
            tokio::spawn(async move {
                let mut largest = 0_u64;
                for commit in 0..COMMITS_PER_TASK {
                    let puts = (0..PUTS_PER_COMMIT)
                        .map(|i| {
                            let n = (task * COMMITS_PER_TASK + commit) * PUTS_PER_COMMIT + i;
                            let key = format!("wal/{:04}", n % KEYS);
                            Mutation::Put(Record::new(Collection::Pipeline, key, body.clone()))
                        })
                        .collect();
                    store.commit(puts).await.expect("commit");
                    // The WAL only grows inside commits, so just after one is where it peaks.
                    largest = largest.max(size(&wal));
                }
                largest
            })
        })
        .collect();
    let mut largest = 0;
    for writer in writers {
        largest = largest.max(writer.await.expect("writer task"));
    }
    writing.store(false, Ordering::SeqCst);
    let (reads, read_largest) = reader.join().expect("reader thread");
    largest = largest.max(read_largest);

    let stats = store.wal_stats();
    assert!(reads > 0, "the reader ran while the writers wrote");
    assert!(
        stats.checkpoints > 0,
        "80 MB of bodies were written without a checkpoint? {stats:?}"
    );
    assert!(
        largest <= LIMIT + MARGIN,
        "the WAL file reached {largest} bytes; limit {LIMIT} + margin {MARGIN} ({stats:?})"
    );
    assert!(
        stats.wal_peak_bytes <= LIMIT + MARGIN,
        "the store saw the WAL at {} bytes ({stats:?})",
        stats.wal_peak_bytes
    );
    assert_eq!(
        store.load(Collection::Pipeline).await.expect("load").len(),
        KEYS,
        "every record is there"
    );
}

/// A single commit larger than the limit: the writer runs a RESTART checkpoint right after it,
/// and the next commit writes the WAL from its start and cuts the file back to the limit.
#[tokio::test]
async fn a_commit_past_the_limit_is_followed_by_a_restart_that_cuts_the_file_back() {
    const LIMIT: u64 = 1024 * 1024;
    let (_dir, store, wal) = store_with_wal_limit(LIMIT);
    let body = serde_json::json!({ "declaration": "x".repeat(4096) });
    // About 2.4 MB of pages in one transaction (executions: written in the commit itself, where
    // a deferred collection would be written again by a flush, a second transaction).
    let puts = (0..300)
        .map(|n| {
            Mutation::Put(Record::new(
                Collection::Execution,
                format!("big/{n:04}"),
                body.clone(),
            ))
        })
        .collect();
    store.commit(puts).await.expect("the big commit");
    // The writer checks the WAL after answering a group and before taking the next one, so
    // once the next commit is answered, the check after the big one has run.
    store
        .commit(vec![put(Collection::Execution, "small")])
        .await
        .expect("a small commit");
    let stats = store.wal_stats();
    assert!(stats.wal_peak_bytes > LIMIT, "{stats:?}");
    assert_eq!(stats.forced_checkpoints, 1, "{stats:?}");
    assert_eq!(stats.blocked_checkpoints, 0, "{stats:?}");
    assert!(
        size(&wal) <= LIMIT,
        "the WAL file is still {} bytes",
        size(&wal)
    );
    assert_eq!(
        store.load(Collection::Execution).await.expect("load").len(),
        301
    );
}
