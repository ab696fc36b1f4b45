//! Durability and lifecycle: data survives closing and reopening, the store opens from plain
//! synchronous code, unreadable rows are reported as corrupt, and closing finishes queued work.

use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use lockgate_store_sqlite::{SqliteStore, DB_FILE_NAME};
use rusqlite::Connection;
use serde_json::json;

use crate::{fresh_store, put, wait_for_pending, WriteLock};

fn sample_records() -> Vec<Record> {
    (0..50)
        .map(|i| {
            Record::new(
                Collection::Execution,
                format!("execution-{i:02}"),
                json!({"i": i}),
            )
            .with_parent("pipeline")
        })
        .chain((0..5).map(|i| {
            Record::new(Collection::Timer, format!("timer-{i}"), json!({"i": i})).with_due_at(i)
        }))
        .collect()
}

#[tokio::test]
async fn commits_survive_dropping_and_reopening_the_store() {
    let (dir, store) = fresh_store();
    let records = sample_records();
    for record in &records {
        store
            .commit(vec![Mutation::Put(record.clone())])
            .await
            .expect("commit succeeds");
    }
    let clone = store.clone();
    drop(store);
    drop(clone);

    let reopened = SqliteStore::open(dir.path()).expect("store reopens");
    let mut loaded = reopened
        .load(Collection::Execution)
        .await
        .expect("load succeeds");
    loaded.extend(reopened.due_timers(i64::MAX, 100).await.expect("timers"));
    assert_eq!(loaded, records);
}

#[tokio::test]
async fn commits_survive_closing_and_reopening_while_the_closed_store_is_still_alive() {
    let (dir, store) = fresh_store();
    store
        .commit(vec![put(Collection::User, "alice")])
        .await
        .expect("commit succeeds");
    store.close().expect("store closes");

    let reopened = SqliteStore::open(dir.path()).expect("store reopens beside the closed one");
    assert!(reopened
        .get(Collection::User, "alice")
        .await
        .expect("get succeeds")
        .is_some());
}

#[test]
fn a_store_opened_without_a_runtime_serves_a_runtime_started_later() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("nested").join("data");
    let store = SqliteStore::open(&data_dir).expect("open creates missing directories");
    assert_eq!(store.db_path(), data_dir.join(DB_FILE_NAME));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime builds");
    let record = runtime.block_on(async {
        store
            .commit(vec![put(Collection::Pipeline, "deploy")])
            .await
            .expect("commit succeeds");
        store
            .get(Collection::Pipeline, "deploy")
            .await
            .expect("get succeeds")
    });
    assert!(record.is_some());
    store.close().expect("store closes");
}

#[test]
fn reads_outside_a_tokio_runtime_fail_instead_of_panicking() {
    let (_dir, store) = fresh_store();
    // A bare executor that is not Tokio: poll the future by hand until it finishes.
    let result = poll_to_completion(store.get(Collection::Pipeline, "deploy"));
    assert!(matches!(result, Err(StoreError::Backend(ref m)) if m.contains("Tokio runtime")));
}

fn poll_to_completion<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}

#[tokio::test]
async fn an_unreadable_body_is_reported_as_corrupt() {
    let (dir, store) = fresh_store();
    store
        .commit(vec![put(Collection::Job, "good")])
        .await
        .expect("commit succeeds");
    let raw = Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw connection");
    raw.execute(
        "INSERT INTO jobs (key, parent, due_at, body) VALUES ('broken', 'p', NULL, '{not json')",
        [],
    )
    .expect("raw insert");

    let err = store
        .get(Collection::Job, "broken")
        .await
        .expect_err("an unreadable body is an error");
    assert!(
        matches!(err, StoreError::Corrupt { collection: "jobs", ref key, .. } if key == "broken"),
        "{err:?}"
    );
    assert!(matches!(
        store.load(Collection::Job).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(
        store
            .get(Collection::Job, "good")
            .await
            .expect("other rows still read")
            .is_some(),
        "one corrupt row does not break reads of others"
    );
}

#[tokio::test]
async fn after_close_commits_fail_as_closed_on_every_clone_and_reads_still_work() {
    let (_dir, store) = fresh_store();
    let clone = store.clone();
    store
        .commit(vec![put(Collection::Pipeline, "before")])
        .await
        .expect("commit before close succeeds");
    store.close().expect("store closes");
    store.close().expect("closing twice is harmless");

    for handle in [&store, &clone] {
        assert!(matches!(
            handle
                .commit(vec![put(Collection::Pipeline, "after")])
                .await,
            Err(StoreError::Closed)
        ));
    }
    assert!(store
        .get(Collection::Pipeline, "before")
        .await
        .expect("reads work after close")
        .is_some());
    assert_eq!(
        store
            .get(Collection::Pipeline, "after")
            .await
            .expect("reads work after close"),
        None,
        "a refused commit changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finishes_the_commits_already_queued() {
    let (dir, store) = fresh_store();
    let lock = WriteLock::take(&dir);
    let commits: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .commit(vec![put(Collection::Job, &format!("queued-{i:02}"))])
                    .await
            })
        })
        .collect();
    wait_for_pending(&store, 50).await;

    // close blocks until the writer has drained the queue, which needs the lock released.
    let closing = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.close())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !store.is_closed() {
        assert!(
            std::time::Instant::now() < deadline,
            "close never took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(matches!(
        store.commit(vec![put(Collection::Job, "late")]).await,
        Err(StoreError::Closed)
    ));
    lock.release();
    closing
        .await
        .expect("close task joins")
        .expect("store closes");

    for commit in commits {
        commit
            .await
            .expect("task joins")
            .expect("a commit queued before close succeeds");
    }
    assert_eq!(store.stats().commits, 50);
    assert_eq!(
        store.load(Collection::Job).await.expect("load works").len(),
        50
    );
}

/// Deferred mutations (pipelines, jobs, timers) that a store acknowledged but had not written to
/// their tables when it died are in the `deferred_ops` log; the next open writes them, in order,
/// and empties the log. The row here is written by hand in the log's format, as a store killed
/// between commit and flush leaves it.
#[tokio::test]
async fn deferred_mutations_left_in_the_log_are_written_when_the_store_opens() {
    let (dir, store) = fresh_store();
    store
        .commit(vec![put(Collection::Timer, "disarmed")])
        .await
        .expect("commit succeeds");
    store.close().expect("close");
    drop(store);
    let raw = Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw connection");
    let empty: i64 = raw
        .query_row("SELECT COUNT(*) FROM deferred_ops", [], |r| r.get(0))
        .expect("count");
    assert_eq!(empty, 0, "a store closed cleanly leaves nothing in the log");
    raw.execute(
        r#"INSERT INTO deferred_ops (ops) VALUES
           ('[{"op":"put","c":"timers","k":"armed","p":"pipe","d":42,"n":0,"b":"{\"due\":42}"},
              {"op":"delete","c":"timers","k":"disarmed"}]'),
           ('[{"op":"put","c":"pipelines","k":"pipe","l":"InProgress","n":1,"b":"{}"},
              {"op":"relabel","c":"pipelines","k":"pipe","l":"Succeeded","n":0}]')"#,
        [],
    )
    .expect("raw insert");
    drop(raw);

    let store = SqliteStore::open(dir.path()).expect("store reopens");
    let armed = store
        .get(Collection::Timer, "armed")
        .await
        .expect("get")
        .expect("the logged put was written");
    assert_eq!(
        (armed.due_at, armed.parent.as_deref()),
        (Some(42), Some("pipe"))
    );
    assert_eq!(armed.body.value(), json!({"due": 42}));
    assert!(store
        .get(Collection::Timer, "disarmed")
        .await
        .expect("get")
        .is_none());
    let pipe = store
        .get(Collection::Pipeline, "pipe")
        .await
        .expect("get")
        .expect("the logged pipeline was written");
    assert_eq!(
        (pipe.label.as_deref(), pipe.position),
        (Some("Succeeded"), 0),
        "the later relabel was applied after the put"
    );
    let raw = Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw connection");
    let left: i64 = raw
        .query_row("SELECT COUNT(*) FROM deferred_ops", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0, "the log is empty once written");
}

/// A read of a deferred collection sees a commit acknowledged just before it, whether or not the
/// writer has written it to its table yet: by key, by label, by due time and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_deferred_mutations_as_soon_as_they_are_acknowledged() {
    let (_dir, store) = fresh_store();
    for round in 0..50 {
        let key = format!("pipeline-{round}");
        store
            .commit(vec![
                Mutation::Put(
                    Record::new(Collection::Pipeline, key.clone(), json!({"round": round}))
                        .with_label("waiting"),
                ),
                Mutation::Put(
                    Record::new(Collection::Timer, key.clone(), json!({})).with_due_at(round),
                ),
            ])
            .await
            .expect("commit succeeds");
        assert!(store
            .get(Collection::Pipeline, &key)
            .await
            .expect("get")
            .is_some());
        let waiting = store
            .scan(lockgate_store::Scan::new(Collection::Pipeline, 1000).label("waiting"))
            .await
            .expect("scan");
        assert_eq!(waiting.len(), round as usize + 1);
        let due = store
            .due(Collection::Timer, round, 1000)
            .await
            .expect("due");
        assert_eq!(due.len(), round as usize + 1);
        assert_eq!(
            store
                .count(Collection::Timer, None, None)
                .await
                .expect("count"),
            round as u64 + 1
        );
        assert_eq!(store.stats().deferred, 0, "a read left nothing waiting");
    }
    assert!(store.stats().flushes >= 1);
}
