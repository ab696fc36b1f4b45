//! WAL checkpoints happen on their own thread while the store is open, and closing the store
//! leaves an empty WAL.

use std::time::{Duration, Instant};

use lockgate_store::{Collection, Store};
use lockgate_store_sqlite::DB_FILE_NAME;

use crate::{fresh_store, put};

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
